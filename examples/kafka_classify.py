#!/usr/bin/env python3
"""Kafka in, Kafka out: each message's value (UTF-8 text) classified by ClassifyText, written to the
output topic as JSON ``{"key", "text", "label", "score"}``. Messages that cannot be classified
(empty, not UTF-8, a failed batch) go to the errors topic as JSON ``{"key", "text", "msg"}``: every
message comes out on one of the two topics.

Each output message's Kafka key is its input's place, ``TOPIC/PARTITION/OFFSET`` (``"key"`` in the
JSON holds the input's own key, as UTF-8 text, null for none): the sink writes at least once, so
after a failure some messages come out twice, and a consumer (or a compacted topic) that keeps one
message a key drops the replays. ``--output-key input`` keys them by the input's key instead.

Kafka IO is Beam Java's (cross-language): start its expansion service first
(`python scripts/kafka_io.py start --dir out/kafka-io`, which prints its address; on the Flink job
server, `... start --flink`: docs/flink-and-kafka.md, "Kafka in, Kafka out", says what to start in which order).
Without --max-records the pipeline runs until cancelled; pass `--streaming` (and on Flink
`--checkpointing_interval=MS`) among Beam's options.

Latency first: unless Beam's options say otherwise, the job ends a bundle after 100 ms or 100
messages (`--max_bundle_time_mills`, `--max_bundle_size`; Flink's defaults are 1,000 of each), and
ClassifyText batches within a bundle (no `max_batch_duration_secs`, whose stateful batching waits
for its timer). On the 2-core CPU box at 100 messages/s this took the median latency from 2.6-3.1 s
to 0.5-1.0 s (docs/flink-and-kafka.md); smaller bundles cost some throughput, so pass Flink's
defaults back for a backlog you want drained fastest.

    python examples/kafka_classify.py --bootstrap-servers 127.0.0.1:9092 --kafka-io localhost:8098 \\
        --input-topic texts --output-topic labels --errors-topic label-errors \\
        [--max-records N] [--backend tensorrt ...] -- --runner=PortableRunner --job_endpoint=localhost:8099
"""
from __future__ import annotations

import argparse
import json
import sys
import typing

from beam_tensorrt import ClassifyText
from beam_tensorrt.streaming import with_latency_options

import apache_beam as beam
from apache_beam.io.kafka import ReadFromKafka, WriteToKafka
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.external import ExternalTransform, NamedTupleBasedPayloadBuilder
from apache_beam.typehints.row_type import RowTypeConstraint

MESSAGE = RowTypeConstraint.from_fields([("id", bytes), ("key", typing.Optional[str]), ("text", str)])
KEYED = typing.Tuple[typing.Optional[bytes], bytes]


def as_row(record, output_key: str = "offset"):
    """A Kafka record (with its topic, partition and offset) as a row keyed for the output; a value
    that is not UTF-8 to the errors, with the reason."""
    key, value = record.key, record.value
    place = f"{record.topic}/{record.partition}/{record.offset}".encode()
    out_key = place if output_key == "offset" else key
    shown_key = None if key is None else key.decode("utf-8", "replace")
    try:
        yield beam.Row(id=out_key or b"", key=shown_key, text=(value or b"").decode("utf-8"))
    except UnicodeDecodeError as e:
        text = value.decode("utf-8", "replace")
        yield beam.pvalue.TaggedOutput("undecodable", (out_key, json.dumps(
            {"key": shown_key, "text": text, "msg": f"value is not valid UTF-8 ({e.reason} at byte {e.start})"}).encode()))


# The fields of Kafka reads that every KafkaIO since Beam 2.2x takes. Beam Python's ReadFromKafka
# sends newer ones too, which an older expansion service refuses (the Flink job server's Beam 2.62
# has no setter for `dynamic_read_poll_interval_seconds`): the same URN with only these works with both.
BasicReadConfig = typing.NamedTuple("BasicReadConfig", [
    ("consumer_config", typing.Mapping[str, str]), ("topics", typing.List[str]), ("key_deserializer", str),
    ("value_deserializer", str), ("start_read_time", typing.Optional[int]), ("max_num_records", typing.Optional[int]),
    ("max_read_time", typing.Optional[int]), ("commit_offset_in_finalize", bool), ("timestamp_policy", str)])


def read_messages(consumer_config: dict, topic: str, expansion_service: str, max_records: int = 0):
    """The records of ``topic`` (rows: topic, partition, offset, key and value bytes...), from Beam
    Java's KafkaIO (on Flink its offsets are kept in Flink's checkpoints)."""
    raw = ReadFromKafka.byte_array_deserializer
    return ExternalTransform(ReadFromKafka.URN_WITH_METADATA, NamedTupleBasedPayloadBuilder(BasicReadConfig(
        consumer_config=consumer_config, topics=[topic], key_deserializer=raw, value_deserializer=raw,
        start_read_time=None, max_num_records=max_records or None, max_read_time=None,
        commit_offset_in_finalize=False, timestamp_policy=ReadFromKafka.processing_time_policy)), expansion_service)


def classify_topic(p: beam.Pipeline, args: argparse.Namespace) -> None:
    records = p | "Read" >> read_messages(
        {"bootstrap.servers": args.bootstrap_servers, "auto.offset.reset": "earliest", "group.id": args.group_id},
        args.input_topic, args.kafka_io, args.max_records)
    rows = records | "AsRows" >> beam.FlatMap(as_row, args.output_key).with_output_types(MESSAGE).with_outputs(
        "undecodable", main="rows")
    result = rows.rows | "Classify" >> ClassifyText(
        backend=args.backend, model=args.model, max_batch_size=args.max_batch_size,
        error_handling={"output": "errors"})
    labelled = result["output"] | "AsJson" >> beam.Map(
        lambda r: (r.id or None, json.dumps({"key": r.key, "text": r.text, "label": r.label, "score": r.score}).encode())
    ).with_output_types(KEYED)
    failed = result["errors"] | "ErrorsAsJson" >> beam.Map(
        lambda e: (e.element.id or None, json.dumps({"key": e.element.key, "text": e.element.text, "msg": e.msg}).encode())
    ).with_output_types(KEYED)
    producer = {"bootstrap.servers": args.bootstrap_servers}
    _ = labelled | "Write" >> WriteToKafka(producer_config=producer, topic=args.output_topic,
                                           expansion_service=args.kafka_io)
    _ = ((failed, rows.undecodable | "Typed" >> beam.Map(lambda kv: kv).with_output_types(KEYED))
         | "AllErrors" >> beam.Flatten().with_output_types(KEYED)
         | "WriteErrors" >> WriteToKafka(producer_config=producer, topic=args.errors_topic,
                                         expansion_service=args.kafka_io))


def main(argv: "list[str] | None" = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, beam_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--kafka-io", required=True, help="the Kafka IO expansion service (scripts/kafka_io.py)")
    ap.add_argument("--input-topic", required=True)
    ap.add_argument("--output-topic", required=True)
    ap.add_argument("--errors-topic", required=True)
    ap.add_argument("--group-id", default="beam-tensorrt-classify")
    ap.add_argument("--max-records", type=int, default=0, help="stop after N messages (0: run until cancelled)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--model", default="sentiment-minilm")
    ap.add_argument("--max-batch-size", type=int, default=256)
    ap.add_argument("--output-key", choices=("offset", "input"), default="offset",
                    help="the output messages' Kafka key: the input's TOPIC/PARTITION/OFFSET (default: a replay "
                         "after a failure has the same key) or the input's own key")
    args = ap.parse_args(ours)
    with beam.Pipeline(options=PipelineOptions(with_latency_options(beam_args))) as p:
        classify_topic(p, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
