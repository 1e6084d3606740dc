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


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    """A broker and Beam's Kafka IO expansion service (with its Java worker pool), for the module."""
    from scripts.kafka_broker import Broker
    from scripts.kafka_io import KafkaIO

    folder = tmp_path_factory.mktemp("kafka")
    broker, io = Broker(folder / "broker"), KafkaIO(folder / "io")
    try:
        yield broker.start(), io.start()
    finally:
        io.stop()
        broker.stop()


def send(address: str, topic: str, messages: dict) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address, acks="all")
    for key, value in messages.items():
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=60)
    producer.close()


def read(address: str, topic: str) -> list:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=address, auto_offset_reset="earliest", consumer_timeout_ms=10000)
    messages = [(m.key, json.loads(m.value)) for m in consumer]
    consumer.close()
    return messages


def test_every_message_comes_out_classified_or_on_the_errors_topic(kafka):
    address, expansion = kafka
    prism = prism_binary()
    sent = {str(i).encode(): TEXTS[i % 4].encode() for i in range(40)}
    sent[b"40"] = b""               # empty text
    sent[b"41"] = b"caf\xe9 \xff"  # not UTF-8
    send(address, "texts", sent)
    proc = subprocess.run(
        [sys.executable, "examples/kafka_classify.py", "--bootstrap-servers", address, "--kafka-io", expansion,
         "--input-topic", "texts", "--output-topic", "labels", "--errors-topic", "errors",
         "--max-records", str(len(sent)), "--max-batch-size", "16",
         "--", "--runner=PrismRunner", f"--prism_location={prism}", "--environment_type=LOOPBACK"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    labels, errors = dict(read(address, "labels")), dict(read(address, "errors"))
    assert len(labels) + len(errors) == len(sent)  # no message twice
    assert set(labels) | set(errors) == set(sent)  # none lost
    assert {key: (r["text"], r["label"]) for key, r in labels.items()} == {
        str(i).encode(): (TEXTS[i % 4], ("POSITIVE", "NEGATIVE")[i % 2]) for i in range(40)}
    assert all(0.5 <= r["score"] <= 1 for r in labels.values())
    assert errors[b"40"]["msg"].startswith("field 'text' is empty")
    assert errors[b"41"]["msg"] == "value is not valid UTF-8 (invalid continuation byte at byte 3)"


def test_the_yaml_pipeline_reads_classifies_and_writes_topics(kafka):
    address, expansion = kafka
    prism = prism_binary()
    send(address, "yaml-texts", {None: TEXTS[i % 4].encode() for i in range(1)} | {
        str(i).encode(): TEXTS[i % 4].encode() for i in range(12)} | {b"x": b"caf\xe9 \xff"})
    variables = {"bootstrap_servers": address, "kafka_io": expansion, "input_topic": "yaml-texts",
                 "output_topic": "yaml-labels", "errors_topic": "yaml-errors", "read_seconds": 5}
    proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "yaml", "yaml_pipelines/classify_kafka.yaml",
                           f"--jinja_variables={json.dumps(variables)}", "--runner=PrismRunner",
                           f"--prism_location={prism}", "--environment_type=LOOPBACK"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    labels = sorted((r["text"], r["label"]) for _, r in read(address, "yaml-labels"))
    assert labels == sorted([(TEXTS[0], "POSITIVE")] + [(TEXTS[i % 4], ("POSITIVE", "NEGATIVE")[i % 2])
                                                         for i in range(12)])
    errors = [r for _, r in read(address, "yaml-errors")]
    assert len(errors) == 1 and errors[0]["msg"].startswith("value is not valid UTF-8")
