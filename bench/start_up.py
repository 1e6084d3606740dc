#!/usr/bin/env python3
"""Start-up and shut-down of SDK-worker-like processes sharing one GPU, phase by phase.

A Beam job with N SDK worker processes on one GPU host pays each process's start-up before its
first row and, on the local runner, each process's exit after its last. This script starts N
fresh Python processes at once (what N SDK workers are), each of which opens a session through
the product's own loaders and classifies one batch, and times every phase on the wall clock from
the parent's spawn. N=1 in the same run is the baseline; the table gives N's median and slowest
process and their ratio to N=1.

Phases (seconds each, cumulative times in the JSON):
  python        interpreter start and this script's import
  imports       beam_tensorrt's classifier, tokenizer and backend registry
  artifact      ModelArtifact.load (tokenizer, manifest)
  framework     import tensorrt / import torch
  cuda          the CUDA context (cudaFree(0) / torch.cuda.init)
  session       open_session: TensorRT finds the plan in the engine cache and deserializes it;
                PyTorch loads the weights onto the GPU
  first batch   128 rows through TextClassifier (TensorRT makes its execution context here)
  close         session.close()
  exit          from the child's last line to its exit as the parent sees it (interpreter
                teardown, CUDA context destruction)

    python -m bench.start_up --artifact DIR --backends tensorrt,torch --processes 1,8 \
        [--engine-cache DIR] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

PHASES = ("python", "imports", "artifact", "framework", "cuda", "session", "first batch", "close", "exit")


def child(args) -> None:
    spawned = float(os.environ["START_UP_SPAWNED"])
    marks = {"python": time.time() - spawned}

    def mark(name):
        marks[name] = time.time() - spawned

    from beam_tensorrt.artifact import ModelArtifact
    from beam_tensorrt.backends import BackendOptions, open_session
    from beam_tensorrt.classifier import TextClassifier

    mark("imports")
    artifact = ModelArtifact.load(args.artifact)
    mark("artifact")
    if args.backend == "tensorrt":
        import tensorrt  # noqa: F401

        mark("framework")
        from beam_tensorrt.backends.tensorrt.platform import cuda_check, cudart_module

        cuda_check(cudart_module().cudaFree(0))
    elif args.backend == "torch":
        import torch

        mark("framework")
        torch.cuda.init()
    else:  # onnxruntime on the CPU: checks this script without a GPU
        import onnxruntime  # noqa: F401

        mark("framework")
    mark("cuda")
    device = "cpu" if args.backend == "onnxruntime" else "cuda"
    session = open_session(args.backend, artifact, BackendOptions(engine_cache=args.engine_cache, device=device))
    mark("session")
    TextClassifier(artifact, session, 128).classify(["a first row", "and a second, longer one"] * 64)
    mark("first batch")
    if args.close:
        session.close()
    mark("close")
    print(json.dumps(marks), flush=True)


def run_group(args, backend: str, processes: int) -> list[dict]:
    """Start ``processes`` children at once; their cumulative marks, plus when each exited."""
    spawned = time.time()
    env = dict(os.environ, START_UP_SPAWNED=repr(spawned))
    cmd = [sys.executable, "-m", "bench.start_up", "--artifact", str(args.artifact), "--child", backend]
    if args.engine_cache:
        cmd += ["--engine-cache", args.engine_cache]
    if args.no_close:
        cmd += ["--no-close"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    results: list[dict] = [{} for _ in procs]

    def watch(i, proc):
        for line in proc.stdout:
            if line.startswith("{"):
                results[i] = json.loads(line)
        proc.wait()
        results[i]["exit"] = time.time() - spawned

    threads = [threading.Thread(target=watch, args=(i, p)) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    for t, p in zip(threads, procs):
        t.join()
        if p.returncode != 0:
            raise RuntimeError(f"{backend} child failed:\n{p.stderr.read()[-3000:]}")
    return results


def durations(marks: dict) -> dict:
    """Cumulative marks -> seconds per phase."""
    out, before = {}, 0.0
    for phase in PHASES:
        if phase in marks:
            out[phase] = marks[phase] - before
            before = marks[phase]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", type=Path, required=True)
    ap.add_argument("--backends", default="tensorrt,torch")
    ap.add_argument("--processes", default="1,8")
    ap.add_argument("--engine-cache", default=None)
    ap.add_argument("--no-close", action="store_true", help="children exit with their session open")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.backend, args.close = args.child, not args.no_close
        child(args)
        return 0

    counts = [int(n) for n in args.processes.split(",")]
    report: dict = {"command": "python -m bench.start_up " + " ".join(sys.argv[1:]), "runs": {}}
    for backend in args.backends.split(","):
        run_group(args, backend, 1)  # warm-up: the plan in the engine cache, files in the page cache
        for n in counts:
            report["runs"][f"{backend} x{n}"] = run_group(args, backend, n)
    try:
        from beam_tensorrt.backends.tensorrt.platform import gpu_info

        report["gpu"] = gpu_info()[0]
    except Exception as e:  # noqa: BLE001 (a report without the GPU's name is still a report)
        report["gpu"] = f"unknown ({e})"
    print(f"\nStart-up per process, {report['gpu']}, {os.cpu_count()} CPU cores; seconds, median (slowest)\n")
    names = list(report["runs"])
    print("| phase | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    per = {name: [durations(m) for m in runs] for name, runs in report["runs"].items()}
    for phase in (*PHASES, "total"):
        cells = []
        for name in names:
            values = [sum(d.values()) if phase == "total" else d.get(phase, 0.0) for d in per[name]]
            cells.append(f"{statistics.median(values):.2f} ({max(values):.2f})")
        print(f"| {phase} | " + " | ".join(cells) + " |")
    for backend in args.backends.split(","):
        base = report["runs"].get(f"{backend} x1")
        for n in counts:
            if n == 1 or base is None:
                continue
            slowest = max(m["exit"] for m in report["runs"][f"{backend} x{n}"])
            ready = max(m["first batch"] for m in report["runs"][f"{backend} x{n}"])
            print(f"{backend}: {n} processes ready (first batch done) after {ready:.2f} s, all exited after "
                  f"{slowest:.2f} s; ratio to 1 process: {ready / base[0]['first batch']:.2f}x ready, "
                  f"{slowest / base[0]['exit']:.2f}x exited")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
