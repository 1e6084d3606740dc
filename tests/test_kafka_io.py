"""Kafka in, ClassifyText, Kafka out, for real: a Kafka broker (scripts/kafka_broker.py), Beam Java's
Kafka IO through its expansion service and a Java worker pool (scripts/kafka_io.py), the example
pipeline (examples/kafka_classify.py) on Prism, and both output topics compared with the input topic
message by message."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, prism_binary

pytestmark = pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                                reason="Kafka and Beam's Kafka IO need a JDK and Maven on PATH")

TEXTS = ["A lovely, moving film.", "Dull and far too long.", "I laughed all the way through.",
         "A waste of a good cast."]


def test_every_message_comes_out_classified_or_on_the_errors_topic(tmp_path):
    from kafka import KafkaConsumer, KafkaProducer

    from scripts.kafka_broker import Broker
    from scripts.kafka_io import KafkaIO

    prism = prism_binary()
    broker, io = Broker(tmp_path / "kafka"), KafkaIO(tmp_path / "kafka-io")
    try:
        address = broker.start()
        expansion = io.start()
        sent = {str(i).encode(): TEXTS[i % 4].encode() for i in range(40)}
        sent[b"40"] = b""               # empty text
        sent[b"41"] = b"caf\xe9 \xff"  # not UTF-8
        producer = KafkaProducer(bootstrap_servers=address, acks="all")
        for key, value in sent.items():
            producer.send("texts", key=key, value=value)
        producer.flush(timeout=60)
        producer.close()
        proc = subprocess.run(
            [sys.executable, "examples/kafka_classify.py", "--bootstrap-servers", address, "--kafka-io", expansion,
             "--input-topic", "texts", "--output-topic", "labels", "--errors-topic", "errors",
             "--max-records", str(len(sent)), "--max-batch-size", "16",
             "--", "--runner=PrismRunner", f"--prism_location={prism}", "--environment_type=LOOPBACK"],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]

        def read(topic: str) -> dict:
            consumer = KafkaConsumer(topic, bootstrap_servers=address, auto_offset_reset="earliest",
                                     consumer_timeout_ms=10000)
            out = {}
            for message in consumer:
                assert message.key not in out, f"duplicate message for key {message.key!r} on {topic}"
                out[message.key] = json.loads(message.value)
            consumer.close()
            return out

        labels, errors = read("labels"), read("errors")
    finally:
        io.stop()
        broker.stop()
    assert set(labels) | set(errors) == set(sent) and not set(labels) & set(errors)  # none lost, none twice
    assert {key: (r["text"], r["label"]) for key, r in labels.items()} == {
        str(i).encode(): (TEXTS[i % 4], ("POSITIVE", "NEGATIVE")[i % 2]) for i in range(40)}
    assert all(0.5 <= r["score"] <= 1 for r in labels.values())
    assert errors[b"40"]["msg"].startswith("field 'text' is empty")
    assert errors[b"41"]["msg"] == "value is not valid UTF-8 (invalid continuation byte at byte 3)"
