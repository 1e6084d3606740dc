"""A Flink session cluster of separate processes (JobManager, two TaskManagers, the worker pool, the
job server: ``runners/flink_cluster.py``), a batch job of numbered rows through ClassifyText into
text files, and the short version of ``bench/flink_faults.py``: a TaskManager killed with -9 while
the job runs, every row out exactly once."""
import shutil

import pytest

from bench.flink_faults import batch_trial


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    from beam_tensorrt.runners.flink_cluster import FlinkCluster

    started = FlinkCluster(tmp_path_factory.mktemp("flink") / "cluster", taskmanagers=2).start(timeout=600)
    yield started
    started.stop()


def test_a_taskmanager_killed_mid_job_loses_no_row_and_writes_none_twice(cluster, tmp_path):
    assert cluster.overview()["taskmanagers"] == 2
    trial = batch_trial(cluster, "taskmanager", rows=1000, folder=tmp_path, after=2.0)
    assert trial["hit"] and trial["job_ok"], trial
    assert trial["failures_recovered"] >= 1, trial  # Flink saw the TaskManager go and restarted the job
    assert (trial["rows_out"], trial["lost"], trial["duplicated"]) == (1000, 0, 0), trial
    assert cluster.overview()["taskmanagers"] == 2  # restarted for whatever runs next
