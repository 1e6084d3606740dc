"""Schema'd rows classified a table at a time (Beam's batched DoFns), in real Beam pipelines on the
default model: Parquet row groups reach the model whole, rows one at a time in Beam's batches,
DataFrame batches (Beam's CSV/JSON readers) as Arrow, and nothing lost on the way."""
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.typehints.row_type import RowTypeConstraint

from beam_tensorrt import ClassifyText

OPTIONS = PipelineOptions(["--runner=FnApiRunner"])
TEXTS = ["A lovely, moving film.", "Dull and far too long.", "I laughed all the way through.",
         "A waste of a good cast."]


@pytest.fixture
def table_sizes(monkeypatch) -> list:
    """The number of rows of each table the model classifies."""
    from beam_tensorrt.classify_text_batches import TableModelHandler

    sizes: list = []
    original = TableModelHandler.run_inference

    def run_inference(self, batch, model, inference_args=None):
        sizes.append(batch.num_rows)
        return original(self, batch, model, inference_args)

    monkeypatch.setattr(TableModelHandler, "run_inference", run_inference)
    return sizes


def test_parquet_row_groups_reach_the_model_whole_cut_at_max_batch_size(tmp_path, table_sizes):
    rows = 600
    pq.write_table(pa.table({"id": pa.array(range(rows), pa.int64()), "score_in": pa.array([0.5] * rows),
                             "text": [TEXTS[i % 4] for i in range(rows)]}), tmp_path / "in.parquet", row_group_size=300)
    with beam.Pipeline(options=OPTIONS) as p:
        _ = (p | beam.io.ReadFromParquet(str(tmp_path / "in.parquet"), as_rows=True)
               | ClassifyText(max_batch_size=256)
               | beam.io.WriteToParquet(str(tmp_path / "out"), file_name_suffix=".parquet"))
    assert sorted(table_sizes) == [44, 44, 256, 256]  # two row groups of 300, each cut at 256
    out = pa.concat_tables([pq.read_table(f) for f in sorted(tmp_path.glob("out*.parquet"))]).sort_by("id")
    assert out.column_names == ["id", "score_in", "text", "label", "score"]
    assert out.schema.field("id").type == pa.int64() and out.num_rows == rows
    assert out.column("label").to_pylist()[:4] == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"]


def test_rows_one_at_a_time_are_classified_in_beam_batches(table_sizes):
    row_type = RowTypeConstraint.from_fields([("n", int), ("text", str)])
    with beam.Pipeline(options=OPTIONS) as p:
        out = (p | beam.Create([beam.Row(n=i, text=TEXTS[i % 4]) for i in range(10)]).with_output_types(row_type)
                 | ClassifyText(max_batch_size=4))
        assert_that(out | beam.Map(lambda r: (r.n, r.label)),
                    equal_to([(i, ("POSITIVE", "NEGATIVE")[i % 2]) for i in range(10)]))
    assert sorted(table_sizes) == [2, 4, 4]


def test_schemad_rows_that_cannot_be_classified_come_out_as_rows_with_the_reason(table_sizes):
    row_type = RowTypeConstraint.from_fields([("n", int), ("text", beam.typehints.Optional[str])])
    rows = [beam.Row(n=1, text=TEXTS[0]), beam.Row(n=2, text=None), beam.Row(n=3, text="  "), beam.Row(n=4, text=TEXTS[1])]
    p = beam.Pipeline(options=OPTIONS)
    result = p | beam.Create(rows).with_output_types(row_type) | ClassifyText(error_handling={"output": "bad"})
    assert [n for n, _ in result["bad"].element_type._fields] == ["element", "msg", "stack"]
    assert_that(result["output"] | beam.Map(lambda r: (r.n, r.label)), equal_to([(1, "POSITIVE"), (4, "NEGATIVE")]))
    assert_that(result["bad"] | beam.Map(lambda e: (e.element.n, e.element.text, e.msg)),
                equal_to([(2, None, "field 'text' is null"),
                          (3, "  ", "field 'text' is only whitespace (set allow_empty_text to classify such texts)")]),
                label="errors")
    p.run().wait_until_finish()
    assert table_sizes, "the schema'd rows were classified a table at a time"


def test_dataframe_batches_from_beams_json_reader_are_classified_as_arrow(tmp_path, table_sizes):
    lines = [{"id": i, "body": TEXTS[i % 4] if i != 3 else None} for i in range(8)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with beam.Pipeline(options=OPTIONS) as p:
        result = (p | beam.io.ReadFromJson(str(tmp_path / "in.jsonl"))
                    | ClassifyText(text_field="body", error_handling={"output": "bad"}))
        assert_that(result["output"] | beam.Map(lambda r: (int(r.id), r.label)),
                    equal_to([(i, ("POSITIVE", "NEGATIVE")[i % 2]) for i in range(8) if i != 3]))
        assert_that(result["bad"] | beam.Map(lambda e: (int(e.element.id), e.msg)),
                    equal_to([(3, "field 'body' is null")]), label="errors")
    assert sum(table_sizes) == 7


def test_a_table_whose_inference_fails_sends_each_of_its_rows_to_the_errors(monkeypatch):
    from beam_tensorrt.classifier import TextClassifier

    def broken(self, texts):
        raise RuntimeError("device lost")

    monkeypatch.setattr(TextClassifier, "predict", broken)
    row_type = RowTypeConstraint.from_fields([("n", int), ("text", str)])
    with beam.Pipeline(options=OPTIONS) as p:
        result = (p | beam.Create([beam.Row(n=1, text="good"), beam.Row(n=2, text="bad")]).with_output_types(row_type)
                    | ClassifyText(error_handling={"output": "bad"}))
        assert_that(result["output"], equal_to([]))
        assert_that(result["bad"] | beam.Map(lambda e: (e.element.n, e.msg)),
                    equal_to([(1, "inference failed: RuntimeError('device lost')"),
                              (2, "inference failed: RuntimeError('device lost')")]), label="errors")


def test_which_rows_travel_as_tables():
    from beam_tensorrt.arrow_rows import arrow_schema_of

    flat = RowTypeConstraint.from_fields([("n", int), ("text", str), ("tags", beam.typehints.List[str])])
    nested = RowTypeConstraint.from_fields([("meta", RowTypeConstraint.from_fields([("a", int)])), ("text", str)])
    assert arrow_schema_of(flat).names == ["n", "text", "tags"]
    assert arrow_schema_of(nested) is None  # nested rows keep the row-at-a-time path
    assert ClassifyText().columnar(flat) and not ClassifyText().columnar(nested)
    assert not ClassifyText(max_batch_duration_secs=5).columnar(flat)  # Beam's stateful batching
    assert not ClassifyText().columnar(str)


def test_rows_can_leave_one_element_each_with_every_field(table_sizes):
    row_type = RowTypeConstraint.from_fields([("n", int), ("text", beam.typehints.Optional[str])])
    rows = [beam.Row(n=i, text=TEXTS[i % 4]) for i in range(6)] + [beam.Row(n=6, text=None)]
    classify = ClassifyText(max_batch_size=4, probabilities_field="p", truncated_field="cut",
                            error_handling={"output": "bad"})
    classify.rows_out_one_at_a_time = True  # as the expansion service's ClassifyText
    with beam.Pipeline(options=OPTIONS) as p:
        result = p | beam.Create(rows).with_output_types(row_type) | classify
        assert_that(result["output"] | beam.Map(lambda r: (r.n, r.text, r.label, len(r.p), round(sum(r.p), 4),
                                                           r.score == max(r.p), r.cut)),
                    equal_to([(i, TEXTS[i % 4], ("POSITIVE", "NEGATIVE")[i % 2], 2, 1.0, True, False)
                              for i in range(6)]))
        assert_that(result["bad"] | beam.Map(lambda e: (e.element.n, e.msg)), equal_to([(6, "field 'text' is null")]),
                    label="errors")
    assert sum(table_sizes) == 6
