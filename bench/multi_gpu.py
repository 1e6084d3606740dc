#!/usr/bin/env python3
"""The CLI main job (Parquet -> Parquet) on 1, 2, 4 and 8 GPUs of one host, end to end.

Each run is ``beam-tensorrt classify --gpus 0,...,N-1 --workers W*N`` as a user runs it (a worker
pool prestarted and preloaded for the job, W workers a GPU, each with one GPU in its
``CUDA_VISIBLE_DEVICES``), start-up included, rows out counted against rows in. The baseline is the
one-GPU run of the same invocation in the same run: scaling = rows/s on N GPUs / (N x rows/s on
one). Model loading is timed apart (a fresh process opening the cached plan), and the host's cores
per GPU are printed, since tokenization runs on them.

    python -m bench.multi_gpu --data ../shared/data/sst2 --rows 1000000 [--model DIR] \\
        [--gpus 1,2,4,8] [--workers-per-gpu 8] [--json docs/bench/NAME.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import CLI, count_output, device, phrases, timed, write_json
from bench.user_paths import write_inputs

LOAD = r"""
import json, sys, time
start = time.perf_counter()
from beam_tensorrt.backends import BackendOptions
from beam_tensorrt.classifier import TextClassifier
from beam_tensorrt.models import resolve_model
clf = TextClassifier.open(resolve_model(sys.argv[1]), "tensorrt", BackendOptions(engine_cache=sys.argv[2]))
clf.predict(["warm"])
print(json.dumps({"load_s": time.perf_counter() - start}))
"""


def model_load_seconds(model: str, engine_cache: str, gpu: str) -> float:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu)
    out = subprocess.run([sys.executable, "-c", LOAD, model, engine_cache], env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["load_s"]


def main() -> int:
    from beam_tensorrt.gpus import visible_gpus

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--model", default="sentiment-minilm")
    ap.add_argument("--gpus", default="1,2,4,8", help="GPU counts to run (those above the visible count are skipped)")
    ap.add_argument("--workers-per-gpu", type=int, default=8)
    ap.add_argument("--engine-cache", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    visible = visible_gpus()
    counts = [n for n in (int(c) for c in args.gpus.split(",")) if n <= len(visible)]
    folder = Path(tempfile.mkdtemp(prefix="multi-gpu-"))
    engine_cache = args.engine_cache or str(folder / "engines")
    results: dict = {"rows": args.rows, "model": args.model, "device": device(), "gpus_visible": len(visible),
                     "host_cores": os.cpu_count(), "workers_per_gpu": args.workers_per_gpu, "runs": {}}
    try:
        files = write_inputs(folder, phrases(args.data), args.rows, {"cli-parquet"})
        # Build (or fetch) the plan once, so no run pays for it, then time loading it on each GPU.
        timed(CLI + ["build", "--model", args.model, "--engine-cache", engine_cache])
        results["model_load_s"] = {gpu: model_load_seconds(args.model, engine_cache, gpu)
                                   for gpu in visible[:max(counts, default=1)]}
        for n in counts:
            out = folder / "out"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            cmd = CLI + ["classify", "--input", str(files["parquet"]), "--output", str(out / "out.parquet"),
                         "--model", args.model, "--backend", "tensorrt", "--engine-cache", engine_cache,
                         "--gpus", ",".join(str(i) for i in range(n)), "--workers", str(args.workers_per_gpu * n)]
            print(f"{n} GPU(s): {' '.join(cmd)}", flush=True)
            seconds, log = timed(cmd)
            rows_out = count_output(str(out / "out.parquet"))
            results["runs"][n] = {"seconds": seconds, "rows_per_s": args.rows / seconds, "rows_out": rows_out,
                                  "summary": log.strip().splitlines()[-1]}
            print(f"  {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s, rows out {rows_out:,}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_table(results)
    write_json(args.json, results)
    return 0


def print_table(results: dict) -> None:
    runs = results["runs"]
    one = runs.get(1, {}).get("rows_per_s")
    print(f"\n{results['rows']:,} rows, model {results['model']}, {results['device']} x {results['gpus_visible']}, "
          f"{results['host_cores']} host cores, {results['workers_per_gpu']} workers a GPU")
    print("model loading (plan cached), per GPU: "
          + ", ".join(f"{gpu}: {s:.1f} s" for gpu, s in results.get("model_load_s", {}).items()))
    print(f"{'GPUs':>5}{'seconds':>10}{'rows/s':>12}{'scaling':>9}{'cores/GPU':>11}  rows out")
    for n, r in runs.items():
        scaling = r["rows_per_s"] / (n * one) if one else float("nan")
        print(f"{n:>5}{r['seconds']:>10.1f}{r['rows_per_s']:>12,.0f}{scaling:>9.2f}"
              f"{(results['host_cores'] or 0) / n:>11.1f}  {r['rows_out']:,}")


if __name__ == "__main__":
    sys.exit(main())
