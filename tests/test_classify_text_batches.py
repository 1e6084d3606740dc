"""ClassifyTextBatches in real Beam pipelines (FnApiRunner) on the real default model: Arrow tables in
(from Parquet through ReadFromParquetBatched), tables out, bad rows on the error output."""
import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from beam_tensorrt import ClassifyText
from beam_tensorrt import ClassifyTextBatches
from beam_tensorrt.classify_text_batches import _ToTables, with_predictions
from beam_tensorrt.beam_inference import PredictionResult
from beam_tensorrt.classifier import TextClassifier
from beam_tensorrt.config import ClassifyTextConfig
from beam_tensorrt.errors import ConfigError

OPTIONS = PipelineOptions(["--runner=FnApiRunner"])


def rows_of(tables):
    return tables | "Rows" >> beam.FlatMap(lambda t: t.to_pylist())


def test_parquet_tables_agree_with_classify_text_row_by_row(reviews, tmp_path):
    ids = [r["id"] for r in reviews]
    texts = [r["text"] for r in reviews]
    pq.write_table(pa.table({"id": ids, "text": texts}), tmp_path / "reviews.parquet", row_group_size=5)
    with beam.Pipeline(options=OPTIONS) as p:
        per_row = (p | beam.Create([beam.Row(id=i, text=t) for i, t in zip(ids, texts)])
                     | ClassifyText(max_batch_size=8) | beam.Map(lambda r: (r.id, r.label, r.score)))
        tables = (p | beam.io.ReadFromParquetBatched(str(tmp_path / "*.parquet"))
                    | ClassifyTextBatches(probabilities_field="probs", truncated_field="cut"))
        assert_that(tables | "Schemas" >> beam.Map(lambda t: (t.column_names, str(t.schema.field("score").type))),
                    equal_to([(["id", "text", "label", "score", "probs", "cut"], "double")] * -(-len(ids) // 5)),
                    label="one table out per row group, input columns first")
        batched = rows_of(tables) | "Keyed" >> beam.Map(lambda r: (r["id"], (r["label"], r["score"], r["probs"], r["cut"])))
        assert_that(batched | "Labels" >> beam.Map(lambda kv: (kv[0], kv[1][0])),
                    equal_to([(r["id"], r["expected"]) for r in reviews]), label="labels")
        assert_that(batched | "Probs" >> beam.Map(lambda kv: (len(kv[1][2]), abs(sum(kv[1][2]) - 1) < 1e-6,
                                                                max(kv[1][2]) == kv[1][1], kv[1][3])),
                    equal_to([(2, True, True, False)] * len(reviews)), label="probabilities")
        joined = ({"rows": per_row | "K1" >> beam.Map(lambda t: (t[0], (t[1], t[2]))),
                   "tables": batched | "K2" >> beam.Map(lambda kv: (kv[0], (kv[1][0], kv[1][1])))}
                  | beam.CoGroupByKey())
        assert_that(joined | beam.MapTuple(lambda k, v: (k, v["rows"][0][0] == v["tables"][0][0],
                                                         abs(v["rows"][0][1] - v["tables"][0][1]) < 1e-6)),
                    equal_to([(i, True, True) for i in ids]), label="same as ClassifyText")


def invalid_utf8(texts: list[bytes]) -> pa.Array:
    """A string array holding these bytes as they are (pyarrow checks UTF-8 only when asked)."""
    offsets = np.cumsum([0] + [len(t) for t in texts]).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), len(texts), [None, pa.py_buffer(offsets.tobytes()),
                                                          pa.py_buffer(b"".join(texts))])


def test_bad_rows_leave_their_table_for_the_error_output_with_reason():
    table = pa.table({"n": [1, 2, 3, 4, 5], "text": ["a wonderful, moving film", None, "", " \t", "dull and flat"]})
    other = {
        10: (pa.record_batch({"n": [10], "body": ["fine"]}), "'text' is missing"),
        11: (pa.table({"n": [11], "text": [42]}), "must be a string, got int64"),
        12: (pa.table({"n": [12], "text": ["ok"], "label": ["x"]}), "already has field(s) ['label']"),
        13: ({"n": 13, "text": "a row, not a table"}, "takes pyarrow Tables or RecordBatches, got dict"),
        14: (pa.table({"n": [14, 15], "text": invalid_utf8(["a \xff\xfe film".encode("latin-1"), b"a fine film"])}),
             "is not valid UTF-8 (invalid start byte at byte 2)"),
    }
    reasons = {2: "is null", 3: "is empty", 4: "only whitespace", **{n: why for n, (_, why) in other.items()}}
    kept = [(1, "POSITIVE"), (5, "NEGATIVE"), (15, "POSITIVE")]
    with beam.Pipeline(options=OPTIONS) as p:
        result = (p | beam.Create([table, pa.table({"n": [], "text": pa.array([], pa.string())})]
                                  + [t for t, _ in other.values()])
                    | ClassifyTextBatches(error_handling={"output": "bad"}))
        assert set(result) == {"output", "bad"}
        assert_that(rows_of(result["output"]) | beam.Map(lambda r: (r["n"], r["label"])), equal_to(kept))
        assert_that(result["bad"] | beam.Map(lambda e: (e.element["n"], reasons[e.element["n"]] in e.msg)),
                    equal_to([(n, True) for n in reasons]), label="errors")
        assert_that(result["bad"] | beam.Filter(lambda e: e.element["n"] == 14) | beam.Map(lambda e: e.element["text"]),
                    equal_to(["a \ufffd\ufffd film"]), label="repaired text on the error row")


def test_dictionary_encoded_text_and_empty_text_when_allowed():
    texts = pa.array(["a lovely film", "", "a lovely film"]).dictionary_encode()
    with beam.Pipeline(options=OPTIONS) as p:
        out = (p | beam.Create([pa.table({"text": texts})]) | ClassifyTextBatches(allow_empty_text=True))
        assert_that(rows_of(out) | beam.Map(lambda r: (r["text"], r["label"] in ("POSITIVE", "NEGATIVE"))),
                    equal_to([("a lovely film", True), ("", True), ("a lovely film", True)]))


def test_without_error_handling_a_bad_row_fails_the_pipeline_with_the_reason():
    with pytest.raises(Exception, match="field 'text' is null.*set error_handling"):
        with beam.Pipeline(options=OPTIONS) as p:
            _ = p | beam.Create([pa.table({"text": ["fine", None]})]) | ClassifyTextBatches()


def test_a_table_whose_inference_fails_goes_to_the_error_output_row_by_row(monkeypatch):
    def broken(self, texts):
        raise RuntimeError("device lost")

    monkeypatch.setattr(TextClassifier, "predict", broken)
    with beam.Pipeline(options=OPTIONS) as p:
        result = (p | beam.Create([pa.table({"n": [1, 2], "text": ["good", "bad"]})])
                    | ClassifyTextBatches(error_handling={"output": "bad"}))
        assert_that(rows_of(result["output"]), equal_to([]))
        assert_that(result["bad"] | beam.Map(lambda e: (e.element["n"], e.msg, "in broken" in e.stack)),
                    equal_to([(1, "inference failed: RuntimeError('device lost')", True),
                              (2, "inference failed: RuntimeError('device lost')", True)]), label="errors")


def test_rows_that_fail_alone_leave_the_table_and_the_rest_stays_in_order(default_artifact):
    from conftest import FlakyMemorySession

    from beam_tensorrt.backends.onnxruntime import OnnxRuntimeSession

    probe = TextClassifier(default_artifact, OnnxRuntimeSession(default_artifact), 128)
    poison = probe.tokenizer._tok.token_to_id("zebra")
    clf = TextClassifier(default_artifact, FlakyMemorySession(OnnxRuntimeSession(default_artifact), 100, poison), 128)
    table = pa.table({"n": [1, 2, 3, 4], "text": ["a lovely film", "a zebra film", "a dreadful film", "zebra"]})
    config = ClassifyTextConfig()
    classified = with_predictions(table, clf.predict(table.column("text").to_pylist()), config)
    assert sorted(classified.failures) == [1, 3]
    with beam.Pipeline(options=OPTIONS) as p:
        out = (p | beam.Create([PredictionResult(None, classified)])
                 | beam.ParDo(_ToTables(config)).with_outputs("errors", main="tables"))
        assert_that(out.tables | beam.Map(lambda t: t.to_pylist()),
                    equal_to([[{"n": 1, "text": "a lovely film", "label": "POSITIVE",
                                "score": pytest.approx(classified.table.column("score")[0].as_py())},
                               {"n": 3, "text": "a dreadful film", "label": "NEGATIVE",
                                "score": pytest.approx(classified.table.column("score")[2].as_py())}]]))
        assert_that(out.errors | beam.Map(lambda e: (e.element, "out of memory even alone" in e.msg)),
                    equal_to([({"n": 2, "text": "a zebra film"}, True), ({"n": 4, "text": "zebra"}, True)]),
                    label="errors")


@pytest.mark.parametrize("kwargs,field", [({"max_batch_size": 64}, "max_batch_size"),
                                          ({"max_batch_duration_secs": 1}, "max_batch_duration_secs"),
                                          ({"backend": "cuda"}, "backend"), ({"colour": 1}, "colour"),
                                          ({"error_handling": {"out": "x"}}, "error_handling")])
def test_invalid_config_fails_at_construction_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError) as e:
        ClassifyTextBatches(**kwargs)
    assert e.value.field == field


def test_scores_are_the_probability_of_the_label_column():
    probs = np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)
    from beam_tensorrt.classifier import BatchPrediction

    prediction = BatchPrediction(["NEG", "POS"], probs.argmax(1), probs, np.array([False, True]), {})
    out = with_predictions(pa.table({"text": ["a", "b"]}), prediction, ClassifyTextConfig(truncated_field="cut"))
    assert out.table.to_pylist() == [{"text": "a", "label": "POS", "score": pytest.approx(0.8), "cut": False},
                                     {"text": "b", "label": "NEG", "score": pytest.approx(0.9), "cut": True}]


def test_model_refresh_from_a_side_input_swaps_the_artifact(default_artifact, tmp_path):
    """As ClassifyText's test: a ModelMetadata side input naming a new artifact makes the tables
    after it use that model (its labels here)."""
    from conftest import REFRESH_START, model_updates, relabelled_copy, windowed

    renamed = relabelled_copy(default_artifact, tmp_path / "v2")
    table = pa.table({"text": ["a wonderful, moving film", "a dull, lifeless mess"]})
    with beam.Pipeline(options=OPTIONS) as p:
        side = windowed(p | "Updates" >> beam.Create(model_updates(renamed)), "Side")
        tables = windowed(p | "Tables" >> beam.Create([(REFRESH_START + 1, table), (REFRESH_START + 11, table)]),
                          "Main")
        out = tables | ClassifyTextBatches(model_metadata_pcoll=side)
        assert_that(out | beam.Map(lambda t: t.column("label").to_pylist()),
                    equal_to([["POSITIVE", "NEGATIVE"], ["good", "bad"]]))


def test_model_copies_runs_batches_on_the_shared_copy(reviews, models_inferred_with, rows_tokenized_here):
    # Beam shares the model across the machine's SDK processes: each table goes through a proxy to
    # the copy, and the labels are the model's. The rows are tokenized in the SDK process, not in
    # the one process holding the copy.
    table = pa.table({"id": [r["id"] for r in reviews], "text": [r["text"] for r in reviews]})
    with beam.Pipeline(options=OPTIONS) as p:
        out = p | beam.Create([table]) | ClassifyTextBatches(model_copies=1)
        assert_that(rows_of(out) | beam.Map(lambda r: (r["id"], r["label"])),
                    equal_to([(r["id"], r["expected"]) for r in reviews]))
    assert models_inferred_with and "TextClassifier" not in models_inferred_with, models_inferred_with
    assert sum(rows_tokenized_here) == len(reviews)


def test_rows_that_fail_alone_leave_a_rows_table_as_they_came(default_artifact):
    # The row path's tables (strings, dicts...): the error output shows the rows as they came.
    from conftest import FlakyMemorySession

    from beam_tensorrt.backends.onnxruntime import OnnxRuntimeSession
    from beam_tensorrt.classify_text_batches import RowsTable

    probe = TextClassifier(default_artifact, OnnxRuntimeSession(default_artifact), 128)
    poison = probe.tokenizer._tok.token_to_id("zebra")
    clf = TextClassifier(default_artifact, FlakyMemorySession(OnnxRuntimeSession(default_artifact), 100, poison), 128)
    rows = ["a lovely film", {"n": 2, "text": "a zebra film"}, {"n": 3, "text": "a dreadful film"}]
    texts = pa.table({"text": ["a lovely film", "a zebra film", "a dreadful film"]})
    config = ClassifyTextConfig()
    classified = with_predictions(texts, clf.predict(texts.column("text").to_pylist()), config)._replace(rows=rows)
    with beam.Pipeline(options=OPTIONS) as p:
        out = (p | beam.Create([PredictionResult(None, classified)])
                 | beam.ParDo(_ToTables(config)).with_outputs("errors", main="tables"))
        assert_that(out.tables | beam.Map(lambda t: (type(t) is RowsTable, t.rows, t.table.column("label").to_pylist())),
                    equal_to([(True, ["a lovely film", {"n": 3, "text": "a dreadful film"}], ["POSITIVE", "NEGATIVE"])]))
        assert_that(out.errors | beam.Map(lambda e: (e.element, "out of memory even alone" in e.msg)),
                    equal_to([({"n": 2, "text": "a zebra film"}, True)]), label="errors")
