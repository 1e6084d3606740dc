#!/usr/bin/env python3
"""Kafka in, Kafka out: each message's value (UTF-8 text) classified by ClassifyText, written to the
output topic under the same key as JSON ``{"text", "label", "score"}``. Messages that cannot be
classified (empty, not UTF-8, a failed batch) go to the errors topic as JSON ``{"text", "msg"}``,
under their key: every message comes out on one of the two topics.

Kafka IO is Beam Java's (cross-language): start its expansion service first
(`python scripts/kafka_io.py start --dir out/kafka-io`, which prints its address).

    python examples/kafka_classify.py --bootstrap-servers 127.0.0.1:9092 --kafka-io localhost:8098 \\
        --input-topic texts --output-topic labels --errors-topic label-errors \\
        [--max-records N] [--backend tensorrt ...] -- --runner=PortableRunner --job_endpoint=localhost:8099
"""
from __future__ import annotations

import argparse
import json
import sys
import typing

from beam_tensorrt import ClassifyText  # first: it keeps Beam's import-time noise out of the output

import apache_beam as beam
from apache_beam.io.kafka import ReadFromKafka, WriteToKafka
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.typehints.row_type import RowTypeConstraint

MESSAGE = RowTypeConstraint.from_fields([("key", typing.Optional[bytes]), ("text", str)])
KEYED = typing.Tuple[typing.Optional[bytes], bytes]


def as_row(record):
    """A Kafka (key, value) as a row; a value that is not UTF-8 to the errors, with the reason."""
    key, value = record
    try:
        yield beam.Row(key=key, text=(value or b"").decode("utf-8"))
    except UnicodeDecodeError as e:
        text = value.decode("utf-8", "replace")
        yield beam.pvalue.TaggedOutput("undecodable", (key, json.dumps(
            {"text": text, "msg": f"value is not valid UTF-8 ({e.reason} at byte {e.start})"}).encode()))


def classify_topic(p: beam.Pipeline, args: argparse.Namespace) -> None:
    read = {"max_num_records": args.max_records} if args.max_records else {}
    records = p | "Read" >> ReadFromKafka(
        consumer_config={"bootstrap.servers": args.bootstrap_servers, "auto.offset.reset": "earliest",
                         "group.id": args.group_id},
        topics=[args.input_topic], expansion_service=args.kafka_io, **read)
    rows = records | "AsRows" >> beam.FlatMap(as_row).with_output_types(MESSAGE).with_outputs(
        "undecodable", main="rows")
    result = rows.rows | "Classify" >> ClassifyText(
        backend=args.backend, model=args.model, max_batch_size=args.max_batch_size,
        error_handling={"output": "errors"})
    labelled = result["output"] | "AsJson" >> beam.Map(
        lambda r: (r.key, json.dumps({"text": r.text, "label": r.label, "score": r.score}).encode())
    ).with_output_types(KEYED)
    failed = result["errors"] | "ErrorsAsJson" >> beam.Map(
        lambda e: (e.element.key, json.dumps({"text": e.element.text, "msg": e.msg}).encode())
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
    args = ap.parse_args(ours)
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        classify_topic(p, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
