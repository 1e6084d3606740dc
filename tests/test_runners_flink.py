"""Pipelines on a real Flink (Beam's Flink job server, embedded Flink, parallelism 2): ClassifyText in
Python with two SDK worker processes, a Beam YAML pipeline through `type: remote`, the Java
SentimentPipeline, and a worker pool whose workers cannot start. Every row checked; every job under a
hard timeout. The job server comes from Maven Central (`beam-tensorrt flink-job-server`'s code)."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, ROOT
from service_fixture import start_service

pytestmark = pytest.mark.slow
TEXTS = [f"a fine, warm film, number {i}" if i % 2 else f"a dreadful, dull film, number {i}" for i in range(400)]
JOB_TIMEOUT = 180


@pytest.fixture(scope="module")
def flink():
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    from beam_tensorrt.runners.flink import FlinkJobServer

    server = FlinkJobServer(job_port=0, parallelism=2)
    endpoint = server.start(timeout=600)  # the first use resolves ~160 MB of jars with Maven
    yield endpoint
    server.stop()


def worker_pool(tmp_path, *args):
    """A `beam-tensorrt worker-pool` subprocess; returns (process, address)."""
    proc = subprocess.Popen([sys.executable, "-m", "beam_tensorrt.cli", "worker-pool", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=open(tmp_path / "pool.log", "w"), text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ""
    found = re.search(r"listening on [\d.]+:(\d+)", line)
    assert found, line + (tmp_path / "pool.log").read_text()
    return proc, f"127.0.0.1:{found.group(1)}"


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def run_python_pipeline(script: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=JOB_TIMEOUT, cwd=ROOT)


CLASSIFY = r"""
import json, os, sys, uuid
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from beam_tensorrt import ClassifyText
job, pool, out = sys.argv[1:4]
texts = json.loads(sys.argv[4])

class WriteRows(beam.DoFn):
    # One file per bundle, written by the SDK worker that classified its rows. Unlike WriteToText
    # (which adds stages of its own) this keeps the pipeline at the two stages counted below.
    def start_bundle(self):
        self.rows = []
    def process(self, r):
        self.rows.append(json.dumps([r.text, r.label, os.getpid()]))
    def finish_bundle(self):
        if self.rows:
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(f"{out}-{uuid.uuid4().hex}", "w") as f:
                f.write("\n".join(self.rows) + "\n")

# Flink gives each stage's subtask an SDK worker in the order the subtasks open, round robin over
# sdk_worker_parallelism workers. Two stages (Create's reshuffle before ClassifyText) at parallelism 2
# open at most four subtasks: with four workers each subtask has its own, so ClassifyText's two
# subtasks run in two processes whatever the order. With two workers that depended on the order.
options = PipelineOptions(["--runner=PortableRunner", f"--job_endpoint={job}", "--parallelism=2",
                           "--environment_type=EXTERNAL", f"--environment_config={pool}",
                           "--sdk_worker_parallelism=4", "--environment_cache_millis=60000"])
with beam.Pipeline(options=options) as p:
    p | beam.Create(texts) | ClassifyText(max_batch_size=16) | beam.ParDo(WriteRows())
"""


def read_lines(prefix: Path) -> list:
    return [json.loads(line) for path in sorted(prefix.parent.glob(prefix.name + "*"))
            for line in path.read_text().splitlines()]


def test_classify_text_on_flink_with_two_sdk_workers(flink, tmp_path):
    pool, address = worker_pool(tmp_path)
    try:
        proc = run_python_pipeline(CLASSIFY, flink, address, str(tmp_path / "out" / "labels"), json.dumps(TEXTS))
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        assert stop(pool) == 0
    rows = read_lines(tmp_path / "out" / "labels")
    assert sorted(t for t, _, _ in rows) == sorted(TEXTS)  # every row once
    assert all(label == ("POSITIVE" if "fine" in text else "NEGATIVE") for text, label, _ in rows)
    workers = {pid for _, _, pid in rows}
    assert len(workers) >= 2, workers  # the rows were split over two SDK worker processes


def test_a_worker_pool_that_cannot_start_workers_fails_the_job_with_the_reason(flink, tmp_path):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'No module named apache_beam (a broken worker interpreter)' >&2\nexit 3\n")
    os.chmod(broken, 0o755)
    pool, address = worker_pool(tmp_path, "--python", str(broken))
    try:
        proc = run_python_pipeline(CLASSIFY, flink, address, str(tmp_path / "out"), json.dumps(TEXTS[:4]))
    finally:
        assert stop(pool) == 0
    assert proc.returncode != 0
    assert "exited with code 3 while starting" in proc.stderr and "No module named apache_beam" in proc.stderr


def test_yaml_pipeline_through_the_service_on_flink(flink, tmp_path):
    service = start_service(tmp_path)
    try:
        variables = {"input": str(EXAMPLES / "texts.txt"), "output": str(tmp_path / "out"), "address": service.address}
        proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "yaml",
                               str(ROOT / "yaml_pipelines" / "classify_remote.yaml"),
                               f"--jinja_variables={json.dumps(variables)}", "--runner=PortableRunner",
                               f"--job_endpoint={flink}", "--parallelism=2", "--environment_type=LOOPBACK"],
                              capture_output=True, text=True, timeout=JOB_TIMEOUT, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        assert service.stop() == 0
    rows = read_lines(tmp_path / "out")
    assert sorted(r["label"] for r in rows) == ["NEGATIVE", "NEGATIVE", "POSITIVE", "POSITIVE"]


def test_java_sentiment_pipeline_on_flink(flink, tmp_path):
    """Parallelism 2 from the job server's default (the Java SDK has no Flink options to set it)."""
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS[:40]) + "\n", encoding="utf-8")
    out, errors = tmp_path / "out" / "labels.jsonl", tmp_path / "out" / "errors.jsonl"
    env = dict(os.environ, BEAM_TENSORRT_BIN=str(Path(sys.executable).parent), JOB_ENDPOINT=flink)
    proc = subprocess.run(["bash", str(ROOT / "java_examples" / "run_local.sh"), str(texts), str(out), str(errors)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["text"] for r in rows) == sorted(TEXTS[:40])
    assert all(r["label"] == ("POSITIVE" if "fine" in r["text"] else "NEGATIVE") for r in rows)


def test_the_java_example_runs_without_maven_given_its_classpath(flink, tmp_path):
    """JAVA_EXAMPLE_CLASSPATH (what bench/stage_java.sh stages for a machine without Maven): the
    example runs with `java -cp`; an `mvn` first on PATH that fails shows Maven is not asked."""
    java_examples = ROOT / "java_examples"
    listed = tmp_path / "classpath.txt"
    subprocess.run(["mvn", "-q", "-B", "compile", "dependency:build-classpath", f"-Dmdep.outputFile={listed}"],
                   cwd=java_examples, check=True, capture_output=True, timeout=600)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mvn").write_text("#!/bin/sh\necho 'mvn was called' >&2\nexit 97\n")
    (fake / "mvn").chmod(0o755)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS[:10]) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "labels.jsonl"
    env = dict(os.environ, BEAM_TENSORRT_BIN=str(Path(sys.executable).parent), JOB_ENDPOINT=flink,
               PATH=f"{fake}{os.pathsep}{os.environ['PATH']}",
               JAVA_EXAMPLE_CLASSPATH=f"{java_examples / 'target' / 'classes'}{os.pathsep}{listed.read_text().strip()}")
    proc = subprocess.run(["bash", str(java_examples / "run_local.sh"), str(texts), str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "mvn was called" not in proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["text"] for r in rows) == sorted(TEXTS[:10])


def test_the_java_example_says_when_it_has_no_beam_tensorrt_to_start(tmp_path):
    """A machine without the .venv (and no beam-tensorrt on PATH): a clear error at once, not a
    Java-side timeout waiting for a service that never started."""
    env = dict(os.environ, BEAM_TENSORRT_BIN=str(tmp_path / "nothing"), PATH="/usr/bin:/bin")
    proc = subprocess.run(["bash", str(ROOT / "java_examples" / "run_local.sh"), str(ROOT / "examples" / "texts.txt"),
                           str(tmp_path / "out.jsonl")], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no beam-tensorrt in" in proc.stderr, proc.stderr


def test_the_job_servers_jars_can_be_named_instead_of_resolved(monkeypatch, tmp_path):
    """BEAM_TENSORRT_FLINK_CLASSPATH (machines without Maven): used as given, every jar checked."""
    from beam_tensorrt.runners.flink import CLASSPATH_ENV, classpath

    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for jar in jars:
        jar.write_bytes(b"PK")
    monkeypatch.setenv(CLASSPATH_ENV, os.pathsep.join(map(str, jars)))
    assert classpath() == os.pathsep.join(map(str, jars))
    monkeypatch.setenv(CLASSPATH_ENV, os.pathsep.join([str(jars[0]), str(tmp_path / "gone.jar")]))
    with pytest.raises(FileNotFoundError, match="gone.jar"):
        classpath()
