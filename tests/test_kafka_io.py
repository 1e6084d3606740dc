"""Kafka in, ClassifyText, Kafka out, for real: a Kafka broker (scripts/kafka_broker.py), Beam Java's
Kafka IO through its expansion service and a Java worker pool (scripts/kafka_io.py), the example
pipeline (examples/kafka_classify.py) and the YAML pipeline on Prism, their output topics compared
with the input topic message by message; then the broker killed with kill -9 keeps every message."""
import json
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, prism_binary

pytestmark = pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                                reason="Kafka and Beam's Kafka IO need a JDK and Maven on PATH")

TEXTS = ["A lovely, moving film.", "Dull and far too long.", "I laughed all the way through.",
         "A waste of a good cast."]


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"scripts/{name}.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def refused(address: str) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(address.rsplit(":", 1)[1]))) != 0


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    """A broker and Beam's Kafka IO expansion service (with its Java worker pool), started by the
    project's scripts as a user starts them; the broker's folder too."""
    folder = tmp_path_factory.mktemp("kafka")
    broker, io = str(folder / "broker"), str(folder / "io")
    try:
        started = script("kafka_broker", "start", "--dir", broker)
        assert started.returncode == 0, started.stderr
        address = started.stdout.split("listening on ")[1].split()[0]
        again = script("kafka_broker", "start", "--dir", broker)
        assert again.returncode == 2 and "already running" in again.stderr
        expansion = script("kafka_io", "start", "--dir", io)
        assert expansion.returncode == 0, expansion.stderr
        yield address, expansion.stdout.split("listening on ")[1].split()[0], broker
    finally:
        assert script("kafka_io", "stop", "--dir", io).returncode == 0
        assert script("kafka_broker", "stop", "--dir", broker).returncode == 0
    assert refused(address)


def send(address: str, topic: str, messages: dict) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address, acks="all")
    for key, value in messages.items():
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=60)
    producer.close()


def read(address: str, topic: str, decode=json.loads) -> list:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=address, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    messages = [(m.key, decode(m.value)) for m in consumer]
    consumer.close()
    return messages


SENT = {str(i).encode(): TEXTS[i % 4].encode() for i in range(40)}
SENT[b"40"] = b""               # empty text
SENT[b"41"] = b"caf\xe9 \xff"  # not UTF-8
SENT[b"42"] = None              # no value (a tombstone)
YAML_SENT = {None: TEXTS[0].encode()} | {str(i).encode(): TEXTS[i % 4].encode() for i in range(12)} | {
    b"x": b"caf\xe9 \xff"}


@pytest.fixture(scope="module")
def outputs(kafka):
    """The example pipeline and the YAML pipeline run at once on Prism (each mostly waits on JVMs and
    the runner), each on its own topics; their output topics as read back."""
    address, expansion, _ = kafka
    prism = [f"--prism_location={prism_binary()}", "--runner=PrismRunner", "--environment_type=LOOPBACK"]
    send(address, "texts", SENT)
    send(address, "yaml-texts", YAML_SENT)
    variables = {"bootstrap_servers": address, "kafka_io": expansion, "input_topic": "yaml-texts",
                 "output_topic": "yaml-labels", "errors_topic": "yaml-errors", "read_seconds": 5}
    commands = {
        "python": [sys.executable, "examples/kafka_classify.py", "--bootstrap-servers", address, "--kafka-io",
                   expansion, "--input-topic", "texts", "--output-topic", "labels", "--errors-topic", "errors",
                   "--max-records", str(len(SENT)), "--max-batch-size", "16", "--", *prism],
        "yaml": [sys.executable, "-m", "beam_tensorrt.cli", "yaml", "yaml_pipelines/classify_kafka.yaml",
                 f"--jinja_variables={json.dumps(variables)}", *prism],
    }
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, cmd in commands.items()}
    results = {name: proc.communicate(timeout=600) + (proc.returncode,) for name, proc in procs.items()}
    topics = {topic: read(address, topic) for topic in ("labels", "errors", "yaml-labels", "yaml-errors")}
    return results, topics


def by_input_key(messages: list) -> dict:
    """Output messages by their input's key (the JSON's "key"), as sent."""
    return {(r["key"].encode() if r["key"] is not None else None): r for _, r in messages}


def test_every_message_comes_out_classified_or_on_the_errors_topic(outputs):
    results, topics = outputs
    _, stderr, code = results["python"]
    assert code == 0, stderr[-4000:]
    labels, errors = by_input_key(topics["labels"]), by_input_key(topics["errors"])
    assert len(labels) + len(errors) == len(topics["labels"]) + len(topics["errors"]) == len(SENT)  # none twice
    assert set(labels) | set(errors) == set(SENT)  # none lost
    # Keyed by the input's place: offsets 0..N-1 of the one partition, in the order sent, so that a
    # replay after a failure has the key of the message it repeats.
    placed = dict(topics["labels"] + topics["errors"])
    assert set(placed) == {f"texts/0/{offset}".encode() for offset in range(len(SENT))}
    sent_order = list(SENT)
    assert all(placed[f"texts/0/{i}".encode()]["key"] == sent_order[i].decode() for i in range(len(SENT)))
    assert errors[b"42"]["msg"].startswith("field 'text' is empty")
    assert {key: (r["text"], r["label"]) for key, r in labels.items()} == {
        str(i).encode(): (TEXTS[i % 4], ("POSITIVE", "NEGATIVE")[i % 2]) for i in range(40)}
    assert all(0.5 <= r["score"] <= 1 for r in labels.values())
    assert errors[b"40"]["msg"].startswith("field 'text' is empty")
    assert errors[b"41"]["msg"] == "value is not valid UTF-8 (invalid continuation byte at byte 3)"


def test_the_yaml_pipeline_reads_classifies_and_writes_topics(outputs):
    results, topics = outputs
    _, stderr, code = results["yaml"]
    assert code == 0, stderr[-4000:]
    labels = sorted((r["text"], r["label"]) for _, r in topics["yaml-labels"])
    assert labels == sorted([(TEXTS[0], "POSITIVE")] + [(TEXTS[i % 4], ("POSITIVE", "NEGATIVE")[i % 2])
                                                         for i in range(12)])
    errors = [r for _, r in topics["yaml-errors"]]
    assert len(errors) == 1 and errors[0]["msg"].startswith("value is not valid UTF-8")


def test_the_broker_keeps_acknowledged_messages_through_kill_9(kafka, outputs):
    address, _, broker = kafka  # after the pipelines: their input topic holds every message sent
    assert script("kafka_broker", "kill", "--dir", broker).returncode == 0  # kill -9, as in a crash
    assert refused(address)
    restarted = script("kafka_broker", "start", "--dir", broker)  # the same folder: port, topics, messages
    assert restarted.returncode == 0 and f"listening on {address} " in restarted.stdout, restarted.stderr
    assert read(address, "texts", decode=lambda value: value) == list(SENT.items())
