"""scripts/kafka_broker.py: a real single-node Kafka broker (Apache Kafka's jars, KRaft) that the
streaming tests and examples run against; it keeps acknowledged messages through a kill -9."""
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                                reason="the Kafka broker needs a JDK and Maven on PATH")


def produce(address: str, topic: str, n: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address, acks="all", linger_ms=5)
    for i in range(n):
        producer.send(topic, value=f"text {i}".encode(), key=str(i).encode())
    producer.flush(timeout=60)
    producer.close()


def consume(address: str, topic: str, n: int) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=address, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20000)
    values = []
    for message in consumer:
        values.append(message.value)
        if len(values) == n:
            break
    consumer.close()
    return values


def broker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/kafka_broker.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def refused(address: str) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(address.rsplit(":", 1)[1]))) != 0


def test_the_script_runs_a_broker_that_keeps_acknowledged_messages_through_kill_9(tmp_path):
    folder = str(tmp_path / "kafka")
    start = broker("start", "--dir", folder)
    assert start.returncode == 0, start.stderr
    address = start.stdout.split("listening on ")[1].split()[0]
    try:
        again = broker("start", "--dir", folder)
        assert again.returncode == 2 and "already running" in again.stderr
        produce(address, "texts", 2000)
        assert broker("kill", "--dir", folder).returncode == 0  # kill -9, as in a crash
        assert refused(address)
        restart = broker("start", "--dir", folder)  # the same folder: the same port, topics and messages
        assert restart.returncode == 0 and f"listening on {address} " in restart.stdout, restart.stderr
        assert consume(address, "texts", 2000) == [f"text {i}".encode() for i in range(2000)]
    finally:
        stop = broker("stop", "--dir", folder)
    assert stop.returncode == 0, stop.stderr
    assert refused(address)
