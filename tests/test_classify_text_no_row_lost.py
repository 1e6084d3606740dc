"""No row lost: arbitrary rows through ClassifyText come out exactly once, classified or on the error
output with a reason; over-long text is truncated and marked; a batch that runs out of memory is
retried in halves and a row that still fails goes to the error output."""
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beam_tensorrt import ClassifyText

OPTIONS = PipelineOptions(["--runner=FnApiRunner"])

# Text Beam's coders can carry (lone surrogates cannot cross a Beam stage boundary at all).
texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=60),
    st.sampled_from(["", " ", "\t\n", "🙂🎬🍿", "日本語と English と Ελληνικά", "word " * 2000, "x" * (1 << 20)]),
)
# Integers Beam's coders can carry: beyond 64 bits Create itself cannot encode the row (CI drew one).
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
values = st.one_of(texts, st.none(), int64s, st.floats(allow_nan=False), st.booleans(), st.lists(int64s, max_size=3))
rows = st.lists(st.one_of(st.builds(lambda v: {"text": v}, values), st.just({})), min_size=1, max_size=25)


def every(what: str, predicate):
    """An ``assert_that`` matcher that raises when some element fails ``predicate``."""
    def check(elements):
        failing = [e for e in elements if not predicate(e)]
        if failing:
            raise BeamAssertException(f"not every {what}: {failing[:3]!r}")
    return check


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows)
@example([{"text": 2**63 - 1}, {"text": -(2**63)}, {"text": [2**63 - 1]}])
@example([{"text": "word " * 2000}, {"text": "a short one"}, {}])
# Rows rejected by the table checks (blank, null) before and between classified ones: each row keeps its id.
@example([{"text": ""}, {"text": "a good film"}, {"text": None}, {"text": " "}, {"text": "a bad film"}])  # surely truncated: the check below runs
def test_every_row_comes_out_exactly_once(inputs):
    tagged = [dict(r, id=i) for i, r in enumerate(inputs)]
    # More words than max_seq_len (128) tokens can hold: surely cut (one huge "word" is a single [UNK]).
    long_ids = {r["id"] for r in tagged if isinstance(r.get("text"), str) and len(r["text"].split()) > 130}
    with beam.Pipeline(options=OPTIONS) as p:
        result = (p | beam.Create(tagged)
                    | ClassifyText(min_batch_size=8, max_batch_size=8, truncated_field="truncated",
                                   error_handling={"output": "errors"}))
        good = result["output"]
        bad = result["errors"] | "Bad" >> beam.Map(lambda e: (e.element["id"], e.msg))
        out_ids = (good | "GoodIds" >> beam.Map(lambda r: r.id), bad | "BadIds" >> beam.Map(lambda t: t[0])) | beam.Flatten()
        # equal_to compares multisets: a lost or a duplicated row fails it
        assert_that(out_ids, equal_to([r["id"] for r in tagged]))
        # Beam ignores a matcher's return value: these raise.
        assert_that(bad, every("error has a reason", lambda e: bool(e[1])), label="every error has a reason")
        assert_that(good | "Long" >> beam.Filter(lambda r: r.id in long_ids) | "Flag" >> beam.Map(lambda r: r.truncated),
                    every("long text is marked truncated", bool), label="long texts are marked truncated")


