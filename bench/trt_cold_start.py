#!/usr/bin/env python3
"""TensorRT cold start: how long a fresh worker waits before its first row, in four situations.

Each situation is a fresh Python process (what a new Beam worker is) that opens a TensorRT session
through the engine cache and runs one batch; times count from the parent's spawn of the process,
so interpreter start and imports are included.

  cold build      empty engine cache: the plan is built with no timing cache
  warm build      plans deleted, the timing cache kept beside them: a new plan (a new model
                  version, say) built from the recorded kernel timings
  cached plan     the plan is in this machine's cache
  shared plan     another machine (empty local cache) finds the plan in the shared engine cache

    python -m bench.trt_cold_start --artifact DIR [--max-seq-len 128] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(artifact: str, shared: str, max_seq_len: int) -> None:
    """Open a session, run one batch, print timings (seconds since the parent spawned us)."""
    spawned = float(os.environ["COLD_START_SPAWNED"])
    from beam_tensorrt.artifact import ModelArtifact
    from beam_tensorrt.backends import BackendOptions, open_session
    from beam_tensorrt.classifier import TextClassifier

    imported = time.time() - spawned
    loaded = ModelArtifact.load(artifact)
    session = open_session("tensorrt", loaded, BackendOptions(max_seq_len=max_seq_len, engine_cache=shared))
    ready = time.time() - spawned
    TextClassifier(loaded, session, max_seq_len).classify(["a first row", "and a second, longer one"] * 64)
    first = time.time() - spawned
    print(json.dumps({"imports_s": imported, "ready_s": ready, "first_batch_s": first}))


def run_child(args, local: Path, shared: Path) -> dict:
    env = dict(os.environ, BEAM_TENSORRT_CACHE=str(local), COLD_START_SPAWNED=repr(time.time()))
    proc = subprocess.run([sys.executable, "-m", "bench.trt_cold_start", "--artifact", str(args.artifact),
                           "--max-seq-len", str(args.max_seq_len), "--child", str(shared)],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    metas = [json.loads(p.read_text()) for p in (local / "engines").glob("*.plan.json")]
    if metas:
        result["plan_build_s"] = metas[0]["build_seconds"]
        result["timing_cache_bytes_before"] = metas[0].get("timing_cache_bytes_before", 0)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", type=Path, required=True)
    ap.add_argument("--max-seq-len", type=int, default=128)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(str(args.artifact), args.child, args.max_seq_len)
        return 0

    work = Path(tempfile.mkdtemp(prefix="cold-start-"))
    shared = work / "shared"
    results = {}
    results["cold build"] = run_child(args, work / "machine1", shared)
    for plan in [*(work / "machine1" / "engines").glob("*.plan*"), *shared.glob("*.plan*")]:
        plan.unlink()  # keep timing-*.cache
    results["warm build (timing cache kept)"] = run_child(args, work / "machine1", shared)
    results["cached plan"] = run_child(args, work / "machine1", shared)
    results["shared plan, other machine"] = run_child(args, work / "machine2", shared)

    from beam_tensorrt.backends.tensorrt.platform import gpu_info

    gpu = gpu_info()[0]
    print(f"\nTensorRT cold start, {args.artifact.name}, max_seq_len {args.max_seq_len}, {gpu}\n")
    print(f"| {'situation':<32} | {'imports s':>9} | {'ready s':>8} | {'first batch s':>13} | {'plan build s':>12} |")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 10}|{'-' * 15}|{'-' * 14}|")
    for name, r in results.items():
        build = f"{r['plan_build_s']:12.1f}" if "build" in name else " " * 12
        print(f"| {name:<32} | {r['imports_s']:9.1f} | {r['ready_s']:8.1f} | {r['first_batch_s']:13.1f} | {build} |")
    cold, warm = results["cold build"]["plan_build_s"], results["warm build (timing cache kept)"]["plan_build_s"]
    ratio = warm / cold if cold else None
    print(f"\nwarm build / cold build: {ratio:.2f}x" if ratio is not None else "\n(no build time recorded)")
    if args.json:
        args.json.write_text(json.dumps({"gpu": gpu, "artifact": args.artifact.name, "max_seq_len": args.max_seq_len,
                                         "command": "python -m bench.trt_cold_start " + " ".join(sys.argv[1:]),
                                         "situations": results,
                                         "warm_over_cold_build": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
