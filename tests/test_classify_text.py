"""ClassifyText in real Beam pipelines (FnApiRunner), on the real default model."""
import typing

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.typehints.row_type import RowTypeConstraint

from beam_tensorrt import ClassifyText
from beam_tensorrt.errors import ConfigError
from conftest import REFRESH_START, model_updates, relabelled_copy, windowed

OPTIONS = PipelineOptions(["--runner=FnApiRunner"])
REVIEW_TYPE = RowTypeConstraint.from_fields([("id", str), ("text", str), ("expected", str)])


def review_rows(reviews):
    return [beam.Row(id=r["id"], text=r["text"], expected=r["expected"]) for r in reviews]


def test_plain_sentences_label_by_label(reviews):
    with beam.Pipeline(options=OPTIONS) as p:
        out = (p | beam.Create(review_rows(reviews)).with_output_types(REVIEW_TYPE)
                 | ClassifyText(max_batch_size=8))
        assert_that(out | beam.Map(lambda r: (r.id, r.label)),
                    equal_to([(r["id"], r["expected"]) for r in reviews]))
        assert_that(out | "scores" >> beam.Map(lambda r: 0.5 <= r.score <= 1.0 and r.expected == r.label),
                    equal_to([True] * len(reviews)), label="scores")


def test_output_schema_keeps_input_fields_and_adds_results(reviews):
    p = beam.Pipeline(options=OPTIONS)
    out = (p | beam.Create(review_rows(reviews)).with_output_types(REVIEW_TYPE)
             | ClassifyText(probabilities_field="probabilities", truncated_field="truncated"))
    fields = dict(out.element_type._fields)
    assert list(fields) == ["id", "text", "expected", "label", "score", "probabilities", "truncated"]
    assert fields["label"] is str and fields["score"] is float and fields["truncated"] is bool
    assert fields["probabilities"] == typing.List[float]
    probs = out | beam.Map(lambda r: (len(r.probabilities), abs(sum(r.probabilities) - 1) < 1e-5,
                                       max(r.probabilities) == r.score, r.truncated))
    assert_that(probs, equal_to([(2, True, True, False)] * len(reviews)))
    p.run().wait_until_finish()


def test_bad_rows_go_to_error_output_with_reason():
    good = [{"text": "a wonderful, moving film", "n": 1}]
    bad = [({"n": 4}, "missing"), ({"text": None, "n": 5}, "null"), ({"text": 42, "n": 6}, "must be a string"),
           ({"text": "ok", "label": "x", "n": 8}, "already has"), ({"text": "", "n": 2}, "is empty"),
           ({"text": " \t\n", "n": 3}, "only whitespace")]
    with beam.Pipeline(options=OPTIONS) as p:
        result = (p | beam.Create(good + [b for b, _ in bad])
                    | ClassifyText(error_handling={"output": "bad_rows"}))
        assert set(result) == {"output", "bad_rows"}
        assert_that(result["output"] | beam.Map(lambda r: (r.n, r.label in ("POSITIVE", "NEGATIVE"))),
                    equal_to([(1, True)]))
        reasons = {b["n"]: why for b, why in bad}
        assert_that(result["bad_rows"] | beam.Map(lambda e: (e.element["n"], reasons[e.element["n"]] in e.msg)),
                    equal_to([(n, True) for n in reasons]), label="errors")


def test_empty_text_is_classified_when_allowed():
    with beam.Pipeline(options=OPTIONS) as p:
        out = p | beam.Create(["", "   ", "fine"]) | ClassifyText(allow_empty_text=True)
        assert_that(out | beam.Map(lambda r: r.label in ("POSITIVE", "NEGATIVE")), equal_to([True] * 3))


def test_string_input_and_schema_errors_type():
    p = beam.Pipeline(options=OPTIONS)
    result = (p | beam.Create(["I loved it", "I hated it"])
                | ClassifyText(error_handling={"output": "errors"}))
    assert [n for n, _ in result["output"].element_type._fields] == ["text", "label", "score"]
    assert [n for n, _ in result["errors"].element_type._fields] == ["element", "msg", "stack"]
    assert_that(result["output"] | beam.Map(lambda r: (r.text, r.label)),
                equal_to([("I loved it", "POSITIVE"), ("I hated it", "NEGATIVE")]))
    p.run().wait_until_finish()


def test_without_error_handling_a_bad_row_fails_the_pipeline_with_the_reason():
    with pytest.raises(Exception, match="field 'text' must be a string"):
        with beam.Pipeline(options=OPTIONS) as p:
            _ = p | beam.Create([{"text": "fine"}, {"text": 3}]) | ClassifyText()


def test_a_batch_whose_inference_fails_goes_to_the_error_output_row_by_row(monkeypatch):
    from beam_tensorrt.classifier import TextClassifier

    def broken(self, texts):
        raise RuntimeError("device lost")

    monkeypatch.setattr(TextClassifier, "predict", broken)
    with beam.Pipeline(options=OPTIONS) as p:
        result = (p | beam.Create([{"n": 1, "text": "good"}, {"n": 2, "text": "bad"}])
                    | ClassifyText(max_batch_size=8, error_handling={"output": "bad"}))
        assert_that(result["output"], equal_to([]))
        assert_that(result["bad"] | beam.Map(lambda e: (e.element["n"], e.msg, "in broken" in e.stack)),
                    equal_to([(1, "inference failed: RuntimeError('device lost')", True),
                              (2, "inference failed: RuntimeError('device lost')", True)]), label="errors")


@pytest.mark.parametrize("kwargs, field", [
    ({"modle": "x"}, "modle"),
    ({"backend": "cuda-magic"}, "backend"),
    ({"max_seq_len": "128"}, "max_seq_len"),
    ({"max_seq_len": 4096}, "max_seq_len"),
    ({"max_batch_size": True}, "max_batch_size"),
    ({"min_batch_size": 64, "max_batch_size": 8}, "min_batch_size"),
    ({"model": "/nonexistent/artifact"}, "model"),
    ({"text_field": ""}, "text_field"),
    ({"text_field": "label"}, "text_field"),  # the label would replace a string row's text
    ({"label_field": "x", "score_field": "x"}, "label_field"),
    ({"device": "gpu0"}, "device"),
    ({"model_copies": 0}, "model_copies"),
    ({"allow_empty_text": "yes"}, "allow_empty_text"),
    ({"error_handling": {"outptu": "e"}}, "error_handling"),
])
def test_invalid_config_fails_at_construction_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError) as info:
        ClassifyText(**kwargs)
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_text_field_not_in_schema_fails_at_construction(reviews):
    p = beam.Pipeline(options=OPTIONS)
    rows = p | beam.Create(review_rows(reviews)).with_output_types(REVIEW_TYPE)
    with pytest.raises(ConfigError, match="'text_field'.*'body' is not a field"):
        _ = rows | ClassifyText(text_field="body")
    with pytest.raises(ConfigError, match="'label_field'.*'expected' is already a field"):
        _ = rows | "again" >> ClassifyText(label_field="expected")


def test_artifact_path_model(default_artifact, reviews):
    with beam.Pipeline(options=OPTIONS) as p:
        out = (p | beam.Create(review_rows(reviews)[:4]).with_output_types(REVIEW_TYPE)
                 | ClassifyText(model=str(default_artifact.path), backend="onnxruntime"))
        assert_that(out | beam.Map(lambda r: r.label == r.expected), equal_to([True] * 4))


@pytest.mark.parametrize("copies", [1, 2])  # 2: Beam hands the copies' proxies round robin
def test_model_copies_runs_batches_on_the_shared_copy(reviews, models_inferred_with, rows_tokenized_here, copies):
    # Beam shares the model across the machine's SDK processes: each batch goes through a proxy to
    # the copy, and the labels are the model's. The rows are tokenized in the SDK process, not in
    # the one process holding the copy.
    transform = ClassifyText(max_batch_size=8, model_copies=copies)
    with beam.Pipeline(options=OPTIONS) as p:
        out = p | beam.Create(review_rows(reviews)).with_output_types(REVIEW_TYPE) | transform
        assert_that(out | beam.Map(lambda r: (r.id, r.label)), equal_to([(r["id"], r["expected"]) for r in reviews]))
    assert models_inferred_with and "TextClassifier" not in models_inferred_with, models_inferred_with
    assert sum(rows_tokenized_here) == len(reviews)


def test_model_refresh_from_a_side_input_swaps_the_artifact(default_artifact, tmp_path):
    """Beam's model refresh, as RunInference does it: a ModelMetadata side input naming a new artifact
    makes the rows after it use that model. Windowed batch input on FnApiRunner, as Beam's own test of
    the feature."""
    renamed = relabelled_copy(default_artifact, tmp_path / "v2")
    texts = [(REFRESH_START + 1, "a wonderful, moving film"), (REFRESH_START + 2, "a dull, lifeless mess"),
             (REFRESH_START + 11, "a wonderful, moving film"), (REFRESH_START + 12, "a dull, lifeless mess")]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        side = windowed(p | "Updates" >> beam.Create(model_updates(renamed)), "Side")
        rows = windowed(p | "Texts" >> beam.Create(texts), "Main")
        out = rows | ClassifyText(model_metadata_pcoll=side, max_batch_size=2)
        assert_that(out | beam.Map(lambda r: (r.text[:6], r.label)),
                    equal_to([("a wond", "POSITIVE"), ("a dull", "NEGATIVE"), ("a wond", "good"), ("a dull", "bad")]))


def test_model_watch_pattern_reaches_runinference():
    transform = ClassifyText(model_watch_pattern="gs://bucket/models/*/manifest.json", model_watch_interval_secs=30)
    p = beam.Pipeline(options=OPTIONS)
    _ = p | beam.Create(["x"]) | transform
    inference = next(t.transform for t in p.transforms_stack[0].parts[-1].parts if "RunInference" in t.full_label)
    assert inference._watch_model_pattern == "gs://bucket/models/*/manifest.json"
    assert inference._kwargs == {"interval": 30}
    with pytest.raises(ConfigError, match="either model_watch_pattern or model_metadata_pcoll"):
        ClassifyText(model_watch_pattern="x/*", model_metadata_pcoll=p | "side" >> beam.Create([]))


def test_schemad_rows_are_classified_in_large_tables_by_default(monkeypatch):
    """Without max_batch_size, a Beam batch of schema'd rows reaches the model whole (the default is
    config.TABLE_ROWS, 8,192): with the old default of 64 the 500 rows below took 8 model calls."""
    from beam_tensorrt.classifier import TextClassifier

    calls: list[int] = []
    predict = TextClassifier.predict

    def counted(self, texts):
        calls.append(len(texts))
        return predict(self, texts)

    monkeypatch.setattr(TextClassifier, "predict", counted)
    rows = [beam.Row(n=i, text=f"review number {i}: a lovely film") for i in range(500)]
    with beam.Pipeline(options=OPTIONS) as p:
        out = p | beam.Create(rows) | ClassifyText(backend="onnxruntime")
        assert_that(out | beam.Map(lambda r: r.n), equal_to(list(range(500))))
    assert sum(calls) == 500 and max(calls) > 64, calls


def test_rows_one_at_a_time_become_tables_of_their_texts_and_bad_ones_leave_with_the_reason():
    # Strings, dicts and rows share the table steps: a row whose text cannot be a string column
    # leaves here; null and blank texts are left to the table checks (one place for both paths).
    from beam_tensorrt.classify_text import _RowsToTables
    from beam_tensorrt.classify_text_batches import RowsTable

    rows = ["a fine film", "lone \ud800 surrogate", 3, {"text": None, "n": 1}, beam.Row(text="ok", n=2),
            {"n": 3}, {"text": "x", "label": "y"}, {"text": b"bytes"}]
    out = list(_RowsToTables("text", ["label", "score"], fail_fast=False).process(rows))
    tables = [o for o in out if isinstance(o, RowsTable)]
    errors = {repr(o.value.element): o.value.msg for o in out if not isinstance(o, RowsTable)}
    assert len(tables) == 1 and tables[0].rows == ["a fine film", {"text": None, "n": 1}, beam.Row(text="ok", n=2)]
    assert tables[0].table.column("text").to_pylist() == ["a fine film", None, "ok"]
    assert "not valid Unicode" in errors[repr("lone \ufffd surrogate")]
    assert errors["3"] == "expected a row, a dict or a string, got int"
    assert "field 'text' is missing" in errors[repr({"n": 3})]
    assert "already has field(s) ['label']" in errors[repr({"text": "x", "label": "y"})]
    assert errors[repr({"text": b"bytes"})] == "field 'text' must be a string, got bytes"


def test_streaming_batches_are_bucketed_by_the_length_of_each_rows_text():
    kwargs = ClassifyText(max_batch_duration_secs=1, max_batch_size=32).batching()
    assert kwargs["max_batch_duration_secs"] == 1 and kwargs["max_batch_size"] == 32
    length = kwargs["length_fn"]
    assert [length("abcd"), length({"text": "abcdef"}), length(beam.Row(id=1, text="ab")), length({"id": 1})] == [4, 6, 2, 0]
    assert "length_fn" not in ClassifyText().batching()
