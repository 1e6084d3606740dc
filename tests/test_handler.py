"""TextClassificationModelHandler: Beam's batching knobs and metrics reach RunInference."""
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.typehints.row_type import RowTypeConstraint

from beam_tensorrt import ClassifyText

OPTIONS = PipelineOptions(["--runner=FnApiRunner"])


def test_length_aware_batching_streaming_knobs_reach_beam():
    handler = ClassifyText(max_batch_duration_secs=1, max_batch_size=32).model_handler()
    kwargs = handler.batch_elements_kwargs()
    assert kwargs["max_batch_duration_secs"] == 1 and kwargs["max_batch_size"] == 32
    assert kwargs["length_fn"](("key", "abcd")) == 4 and kwargs["bucket_boundaries"][0] == 32
    assert "length_fn" not in ClassifyText().model_handler().batch_elements_kwargs()


def test_metrics_count_rows_and_the_utf8_bytes_of_their_text():
    # Beam's keyed handler would count the pickled keys (the other fields) too; ours counts the text.
    rows = [beam.Row(id="1", text="good"), beam.Row(id="2", text="café 🙂"), beam.Row(id="3", text="")]
    p = beam.Pipeline(options=OPTIONS)
    _ = (p | beam.Create(rows).with_output_types(RowTypeConstraint.from_fields([("id", str), ("text", str)]))
           | ClassifyText(allow_empty_text=True))
    result = p.run()
    result.wait_until_finish()
    from apache_beam.metrics.metric import MetricsFilter

    metrics = result.metrics().query(MetricsFilter().with_namespace("BeamTensorRT_ClassifyText"))
    counters = {c.key.metric.name: c.committed for c in metrics["counters"]}
    byte_sizes = {d.key.metric.name: d.committed for d in metrics["distributions"]}["inference_request_batch_byte_size"]
    assert counters["num_inferences"] == 3
    assert byte_sizes.sum == sum(len(r.text.encode("utf-8")) for r in rows) == 4 + 10
