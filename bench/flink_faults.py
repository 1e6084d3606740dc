#!/usr/bin/env python3
"""Fault trials on a local Flink session cluster (``beam-tensorrt flink-cluster``): a batch job,
files in and files out, with one part of the cluster killed (kill -9) while it runs.

Each trial runs ClassifyText over N numbered rows (Python SDK, ``--environment_type=EXTERNAL``
against the cluster's worker pool, parallelism 2, TaskManagers' slots spread out) into text files
with Beam's WriteToText, kills one part once the job is RUNNING and has run ``--after`` seconds,
and counts the output: every id must come out exactly once. Faults:

  taskmanager  TaskManager 1 (restarted after the trial)
  worker-pool  the whole SDK worker pool (restarted at once on its port: what a supervisor does)
  sdk-worker   one SDK worker process of the pool
  none         no fault (the baseline)

    python -m bench.flink_faults --trials 10 [--faults taskmanager,worker-pool,sdk-worker] [--rows 2000]
        [--json docs/bench/NAME.json]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scripts.local_services import child_pids

FAULTS = ("none", "taskmanager", "worker-pool", "sdk-worker")

JOB = r"""
import json, sys, time
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from beam_tensorrt import ClassifyText
job, pool, out, rows, delay = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
WORDS = ["a fine film", "a dull plot", "fine acting", "a dull film"]

def slow(row):
    time.sleep(delay)  # keeps the job running long enough to be hit mid-way
    return row

options = PipelineOptions(["--runner=PortableRunner", f"--job_endpoint={job}", "--parallelism=2",
                           "--environment_type=EXTERNAL", f"--environment_config={pool}",
                           "--environment_cache_millis=60000"])
with beam.Pipeline(options=options) as p:
    (p | beam.Create([beam.Row(id=i, text=f"{WORDS[i % 4]} {i}") for i in range(rows)])
       | beam.Reshuffle()
       | beam.Map(slow)
       | ClassifyText(max_batch_size=32)
       | beam.Map(lambda r: json.dumps([r.id, r.label]))
       | beam.io.WriteToText(out))
"""


def wait_running(cluster, timeout: float = 180.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            running = [j for j in cluster.jobs() if j["state"] == "RUNNING"]
        except OSError:
            running = []
        if running:
            return running[0]["jid"]
        time.sleep(0.3)
    return None


def inject(cluster, fault: str, after: float, notes: dict) -> None:
    jid = wait_running(cluster)
    notes["job"] = jid
    if jid is None or fault == "none":
        return
    time.sleep(after)
    notes["fault_at"] = time.monotonic()
    notes["fault_wall"] = time.time()
    if fault == "taskmanager":
        cluster.kill("taskmanager-1")
    elif fault == "worker-pool":
        port = int(cluster.pool_address.rsplit(":", 1)[1])
        workers = child_pids(cluster.processes["worker-pool"].pid)
        cluster.kill("worker-pool")
        for pid in workers:  # a pool killed with -9 leaves its workers; a host going down takes them too
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cluster.restart_pool(port)
    elif fault == "sdk-worker":
        workers = child_pids(cluster.processes["worker-pool"].pid)
        notes["sdk_workers_seen"] = len(workers)
        if workers:
            os.kill(workers[0], signal.SIGKILL)
    notes["fault"] = fault


def exceptions(cluster, jid: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"http://{cluster.rest_address}/jobs/{jid}/exceptions", timeout=5) as r:
        history = json.loads(r.read()).get("exceptionHistory", {}).get("entries", [])
    return len(history)


def batch_trial(cluster, fault: str, rows: int, folder: Path, after: float = 4.0, delay: float = 0.004) -> dict:
    """One batch job with ``fault`` injected; rows in, out, lost and duplicated, and Flink's count of
    failures it recovered from."""
    out = folder / f"out-{fault}-{time.time_ns()}" / "labels"
    notes: dict = {}
    hitter = threading.Thread(target=inject, args=(cluster, fault, after, notes), daemon=True)
    hitter.start()
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", JOB, cluster.job_endpoint, cluster.pool_address, str(out),
                               str(rows), str(delay)], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        proc = subprocess.CompletedProcess(e.cmd, -1, "", f"the job did not end within {e.timeout:g} s")
    seconds = time.monotonic() - start
    hitter.join(timeout=60)
    ids = [json.loads(line)[0] for path in sorted(out.parent.glob("labels*")) for line in path.read_text().splitlines()]
    seen = set(ids)
    result = {"fault": fault, "rows_in": rows, "rows_out": len(ids), "lost": rows - len(seen & set(range(rows))),
              "duplicated": len(ids) - len(seen), "seconds": round(seconds, 1), "job_ok": proc.returncode == 0,
              "failures_recovered": exceptions(cluster, notes["job"]) if notes.get("job") else None,
              "hit": notes.get("fault") == fault or fault == "none"}
    if proc.returncode != 0:
        result["error"] = proc.stderr[-2000:]
    if fault == "taskmanager":
        cluster.start_taskmanager(1)
        cluster.wait_for_taskmanagers(cluster.taskmanagers)
    return result


def main() -> int:
    from bench.common import write_json
    from beam_tensorrt.runners.flink_cluster import FlinkCluster

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10, help="trials per fault")
    ap.add_argument("--faults", default="none,taskmanager,worker-pool,sdk-worker")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--after", type=float, default=4.0, help="seconds of RUNNING before the fault")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        ap.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    folder = Path(tempfile.mkdtemp(prefix="flink-faults-"))
    cluster = FlinkCluster(folder / "cluster").start(say=print)
    trials = []
    try:
        for fault in faults:
            for n in range(args.trials):
                r = batch_trial(cluster, fault, args.rows, folder, args.after)
                trials.append(r)
                print(json.dumps(r), flush=True)
    finally:
        cluster.stop()
    print(f"\n{'fault':<13}{'trials':>7}{'jobs ok':>8}{'hit':>5}{'lost':>6}{'dup':>5}{'recovered':>10}{'s (mean)':>10}")
    for fault in faults:
        rs = [t for t in trials if t["fault"] == fault]
        print(f"{fault:<13}{len(rs):>7}{sum(t['job_ok'] for t in rs):>8}{sum(t['hit'] for t in rs):>5}"
              f"{sum(t['lost'] for t in rs):>6}{sum(t['duplicated'] for t in rs):>5}"
              f"{sum(t['failures_recovered'] or 0 for t in rs):>10}{sum(t['seconds'] for t in rs) / len(rs):>10.1f}")
    write_json(args.json, {"rows": args.rows, "after_s": args.after, "trials": trials})
    return 0


if __name__ == "__main__":
    sys.exit(main())
