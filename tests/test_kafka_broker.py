"""scripts/kafka_broker.py's own logic; the broker itself runs in tests/test_kafka_io.py."""
import uuid

from scripts.kafka_broker import cluster_id


def test_a_cluster_id_never_starts_with_a_dash():
    # 0xF8 first: URL-safe base64 begins with "-", which Kafka's storage tool reads as an option
    # (a CI run drew one). The next draw is taken instead.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x04" + bytes(15))])
    assert cluster_id(lambda: next(draws)) == "BAAAAAAAAAAAAAAAAAAAAA"
    assert not cluster_id().startswith("-")
