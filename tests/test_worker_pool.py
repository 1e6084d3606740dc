"""`beam-tensorrt worker-pool`: workers that cannot start fail the job with the reason; prestarted
and preloaded workers serve jobs."""
import signal

import grpc

PRELOADED = "loaded before the job by the worker pool"


def start_worker(address: str, worker_id: str):
    from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc, endpoints_pb2

    pool = beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolStub(grpc.insecure_channel(address))
    return pool.StartWorker(beam_fn_api_pb2.StartWorkerRequest(
        worker_id=worker_id, control_endpoint=endpoints_pb2.ApiServiceDescriptor(url="127.0.0.1:9")), timeout=60)


def test_worker_pool_reports_a_worker_that_cannot_start(tmp_path):
    """`beam-tensorrt worker-pool`: a worker process that dies on start fails StartWorker with its output,
    so the runner fails the job instead of waiting for a worker that never comes."""
    import os
    import re
    import select
    import subprocess
    import sys

    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'No module named apache_beam (a broken worker interpreter)' >&2\nexit 3\n")
    os.chmod(broken, 0o755)
    for python, should_fail in ((str(broken), True), (sys.executable, False)):
        proc = subprocess.Popen([sys.executable, "-m", "beam_tensorrt.cli", "worker-pool", "--port", "0",
                                 "--python", python, "--start-timeout", "60"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            line = proc.stdout.readline() if ready else ""
            port = re.search(r"listening on [\d.]+:(\d+)", line)
            assert port, line + proc.stderr.read() if proc.poll() is not None else line
            response = start_worker(f"127.0.0.1:{port.group(1)}", "w1")
            if should_fail:
                assert "exited with code 3 while starting" in response.error
                assert "No module named apache_beam" in response.error
            else:
                assert response.error == ""
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


PRESTARTED = r"""
import json, logging, os, sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.environments import ExternalEnvironment
from beam_tensorrt import ClassifyText
logging.getLogger().setLevel(logging.INFO)  # the workers' log lines come back through the runner
address, texts, max_seq_len = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
runner = FnApiRunner(default_environment=ExternalEnvironment(address))
with beam.Pipeline(runner=runner, options=PipelineOptions(["--direct_num_workers=2"])) as p:
    (p | beam.Create(texts) | beam.Reshuffle() | ClassifyText(backend="onnxruntime", max_seq_len=max_seq_len)
       | beam.Map(lambda r: print("ROW", json.dumps([r.text, r.label, os.getpid()]), flush=True)))
"""


def test_worker_pool_hands_jobs_to_workers_it_started_ahead(tmp_path):
    """`beam-tensorrt worker-pool --prestart 2 --warm-cuda --preload CONFIG`: a job's rows are classified by
    processes that were up before it was submitted, with the model they loaded then; once they exit the
    pool starts two more, and a job with another max_seq_len loads its own model."""
    import json
    import re
    import subprocess
    import sys
    import time

    log = tmp_path / "pool.log"
    preload = json.dumps({"model": "sentiment-minilm", "backend": "onnxruntime"})
    # --warm-cuda on a machine without a GPU: the worker says it cannot and goes on.
    pool = subprocess.Popen([sys.executable, "-m", "beam_tensorrt.cli", "worker-pool", "--port", "0", "--prestart", "2",
                             "--warm-cuda", "--preload", preload], stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)

    def ready_pids(count: int) -> list:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pids = [int(p) for p in re.findall(r"SDK worker process (\d+) ready", log.read_text())]
            if len(pids) >= count:
                return pids
            assert pool.poll() is None, log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"fewer than {count} workers ready:\n{log.read_text()}")

    texts = [f"a fine, warm film, number {i}" if i % 2 else f"a dreadful, dull film, number {i}" for i in range(64)]

    def job(max_seq_len: int) -> tuple:
        before = len(log.read_text())
        proc = subprocess.run([sys.executable, "-c", PRESTARTED, address, json.dumps(texts), str(max_seq_len)],
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = [json.loads(line.split("ROW ", 1)[1]) for line in log.read_text()[before:].splitlines() if "ROW [" in line]
        assert sorted(t for t, _, _ in rows) == sorted(texts)
        assert all(label == ("POSITIVE" if "fine" in text else "NEGATIVE") for text, label, _ in rows)
        return {pid for _, _, pid in rows}, proc.stderr

    try:
        port = re.search(r"listening on [\d.]+:(\d+)", pool.stdout.readline())
        assert port, log.read_text()
        address = f"127.0.0.1:{port.group(1)}"
        ahead = ready_pids(2)
        pids, job_log = job(128)
        assert pids <= set(ahead)  # classified by the workers started ahead
        assert PRELOADED in job_log, job_log[-3000:]
        topped_up = ready_pids(4)[2:]
        assert not set(topped_up) & set(ahead)
        pids, job_log = job(64)  # another max_seq_len: not the preloaded model
        assert pids <= set(topped_up)
        assert PRELOADED not in job_log and "loaded sentiment-minilm on backend onnxruntime" in job_log, job_log[-3000:]
    finally:
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=30) == 0


def _environ_of(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_worker_processes_share_the_hosts_cores_for_the_tokenizer(monkeypatch):
    """Each of N prestarted workers gets cores // N tokenizer threads (which turns on the Python
    WordPiece path where that is few); a RAYON_NUM_THREADS of the user's reaches them as it is."""
    import os

    from beam_tensorrt.worker_pool.servicer import CheckedWorkerPoolServicer

    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    for given, expected in ((None, str(max(1, (os.cpu_count() or 1) // 2))), ("3", "3")):
        if given:
            monkeypatch.setenv("RAYON_NUM_THREADS", given)
        servicer = CheckedWorkerPoolServicer(use_process=True, prestart=2)
        try:
            pids = [worker.process.pid for worker in servicer._waiting]
            assert len(pids) == 2
            assert [_environ_of(pid).get("RAYON_NUM_THREADS") for pid in pids] == [expected, expected]
        finally:
            servicer.close()
