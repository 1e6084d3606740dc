"""A Flink session cluster of separate processes (JobManager, two TaskManagers, the worker pool, the
job server: ``runners/flink_cluster.py``, with Beam's KafkaIO on its classpath), and the short
versions of the fault benchmarks, a TaskManager killed with -9 in each: a batch job of numbered rows
through ClassifyText into text files (``bench/flink_faults.py``: every row out exactly once), and a
streaming job from a Kafka topic to Kafka topics with checkpoints (``bench/kafka_faults.py``: every
message out, none lost)."""
import shutil
import sys

import pytest

from bench.flink_faults import batch_trial
from bench.kafka_faults import Plan, kafka_trial
from conftest import ROOT


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    sys.path.insert(0, str(ROOT / "scripts"))
    from kafka_io import jars

    from beam_tensorrt.runners.flink_cluster import FlinkCluster

    started = FlinkCluster(tmp_path_factory.mktemp("flink") / "cluster", taskmanagers=2,
                           extra_classpath=jars(flink=True)).start(timeout=600)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    """A broker and Beam 2.62's Kafka IO expansion service: (broker address, expansion address)."""
    from kafka_broker import Broker
    from kafka_io import KafkaIO

    folder = tmp_path_factory.mktemp("kafka")
    broker, io = Broker(folder / "broker"), KafkaIO(folder / "io", flink=True)
    try:
        yield broker.start(), io.start()
    finally:
        io.stop()
        broker.stop()


def test_a_taskmanager_killed_mid_job_loses_no_row_and_writes_none_twice(cluster, tmp_path):
    assert cluster.overview()["taskmanagers"] == 2
    trial = batch_trial(cluster, "taskmanager", rows=1000, folder=tmp_path, after=2.0)
    assert trial["hit"] and trial["job_ok"], trial
    assert trial["failures_recovered"] >= 1, trial  # Flink saw the TaskManager go and restarted the job
    assert (trial["rows_out"], trial["lost"], trial["duplicated"]) == (1000, 0, 0), trial
    assert cluster.overview()["taskmanagers"] == 2  # restarted for whatever runs next
    # TaskManagers work (BLOB caches) in the cluster's own folder, not in /tmp beside other clusters'
    assert {p.name for p in (cluster.folder / "work").iterdir()} >= {"tm_taskmanager-1", "tm_taskmanager-2"}


def test_a_taskmanager_killed_mid_stream_loses_no_message(cluster, kafka, tmp_path):
    broker, expansion = kafka
    trial = kafka_trial(cluster, broker, expansion, "taskmanager", 0, Plan(messages=300, rate=50, after=3,
                                                                           checkpoint_ms=1000), tmp_path)
    assert trial["warm_up_s"] is not None and trial["hit"], trial
    assert trial["failures_recovered"] >= 1, trial  # the job restarted from its checkpoint
    assert trial["lost"] == 0 and trial["out"] >= 300, trial  # duplicates may come (at-least-once writes)
    # ... but each under the Kafka key of the message it repeats (its input's place): a consumer that
    # keeps one message a key sees every message once.
    assert trial["duplicated_after_key_dedup"] == 0, trial
    assert cluster.overview()["taskmanagers"] == 2
