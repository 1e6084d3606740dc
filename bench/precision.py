#!/usr/bin/env python3
"""fp16, int8 and fp8 TensorRT plans side by side, from one run, on one GPU.

For each precision: the plan built as users build it (``beam-tensorrt build --precision P
--calibration-texts FILE``, timed, with the guard's figures from the plan's metadata); the
backend alone on the groups ClassifyText forms (``user_paths.backend_alone``); accuracy on the
project's held-out SST-2 sentences (``scripts/sst2.py``'s honest split: no phrase of them in training
or calibration), label agreement with fp16 on SST-2 dev; and, with ``--cli-rows``, the CLI main job
(Parquet -> Parquet) end to end. Ratios are to fp16 measured in the same run. Calibration texts
are SST-2 train phrases of the honest split's training side only.

    python -m bench.precision --data ../shared/data/sst2 [--model DIR] [--precisions fp16,int8,fp8] \\
        [--cli-rows 1000000] [--min-agreement 0.99] [--json docs/bench/NAME.json]

A random-weight model (bench/random_bert.py, for the BERT-base shape) has no meaningful labels: pass
``--min-agreement 0`` so its plans are built to be timed, and read its accuracy columns as noise.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import CLI, count_output, device, phrases, timed, write_json
from bench.user_paths import backend_alone, write_inputs


def sst2_sets(data: Path):
    """(calibration phrases, held-out sentences with labels, dev phrases)."""
    from scripts.sst2 import honest_split, read_tsv

    dev = read_tsv(data / "dev.tsv")
    train, val, test = honest_split(dict(read_tsv(data / "train.tsv") + dev), 600, 600)
    return [t for t, _ in train], val + test, [t for t, _ in dev]


def build(model: str, precision: str, texts_file: Path, engine_cache: str, min_agreement: float) -> dict:
    cmd = CLI + ["build", "--model", model, "--precision", precision, "--engine-cache", engine_cache]
    if precision in ("int8", "fp8"):
        cmd += ["--calibration-texts", str(texts_file), "--min-agreement", str(min_agreement)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    # The command prints the plan's metadata (indented JSON), then the plan's path.
    meta = json.loads(re.search(r"^\{$.*?^\}$", done.stdout, re.MULTILINE | re.DOTALL).group(0))
    return {"command_s": round(seconds, 1), "build_s": meta["build_seconds"], "guard": (meta.get("calibration") or {})
            .get("guard"), "calibration_texts": (meta.get("calibration") or {}).get("texts")}


def labels_of(model: str, precision: str, engine_cache: str, texts: list[str]):
    from beam_tensorrt.backends import BackendOptions
    from beam_tensorrt.classifier import TextClassifier
    from beam_tensorrt.models import resolve_model

    clf = TextClassifier.open(resolve_model(model), "tensorrt", BackendOptions(engine_cache=engine_cache,
                                                                               precision=precision))
    try:
        logits, _, _ = clf.logits(texts)
    finally:
        clf.close()
    return logits.argmax(axis=1)


def main() -> int:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="SST-2 folder (train.tsv, dev.tsv)")
    ap.add_argument("--model", default="sentiment-minilm")
    ap.add_argument("--precisions", default="fp16,int8,fp8")
    ap.add_argument("--baseline-rows", type=int, default=300_000, help="rows for the backend alone")
    ap.add_argument("--cli-rows", type=int, default=0, help="also run the CLI Parquet -> Parquet on this many rows")
    ap.add_argument("--calibration-rows", type=int, default=5000, help="SST-2 train phrases given to calibration")
    ap.add_argument("--min-agreement", type=float, default=0.99)
    ap.add_argument("--engine-cache", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    precisions = [p for p in args.precisions.split(",") if p]
    train = phrases(args.data)
    calibration, held_out, dev = sst2_sets(args.data)
    held_texts, gold = [t for t, _ in held_out], np.array([y for _, y in held_out])
    folder = Path(tempfile.mkdtemp(prefix="precision-"))
    engine_cache = args.engine_cache or str(folder / "engines")
    texts_file = folder / "calibration.txt"
    # Spread over the whole train file, not its first lines.
    step = max(1, len(calibration) // args.calibration_rows)
    texts_file.write_text("\n".join(calibration[::step][:args.calibration_rows]) + "\n")
    results: dict = {"model": args.model, "device": device(), "dev_rows": len(dev), "held_out_rows": len(held_out),
                     "precisions": {}}
    files = write_inputs(folder, train, args.cli_rows, {"cli-parquet"}) if args.cli_rows else {}
    labels: dict = {}
    try:
        for precision in precisions:
            print(f"{precision}: building...", flush=True)
            r: dict = {}
            try:
                r["build"] = build(args.model, precision, texts_file, engine_cache, args.min_agreement)
            except RuntimeError as e:
                r["error"] = str(e)[-2000:]
                print(f"  refused or failed: {r['error'][-600:]}", flush=True)
                results["precisions"][precision] = r
                continue
            r["backend_alone"] = backend_alone(args.model, "tensorrt", train, args.baseline_rows, engine_cache,
                                               precision=precision)
            labels[precision] = labels_of(args.model, precision, engine_cache, dev)
            r["held_out_accuracy"] = float((labels_of(args.model, precision, engine_cache, held_texts) == gold).mean())
            if args.cli_rows:
                out = folder / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                cmd = CLI + ["classify", "--input", str(files["parquet"]), "--output", str(out / "out.parquet"),
                             "--model", args.model, "--backend", "tensorrt", "--precision", precision,
                             "--engine-cache", engine_cache]
                seconds, _ = timed(cmd)
                r["cli_parquet"] = {"rows": args.cli_rows, "seconds": seconds, "rows_per_s": args.cli_rows / seconds,
                                    "rows_out": count_output(str(out / "out.parquet"))}
            results["precisions"][precision] = r
            print(f"  {json.dumps(r)}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for precision, predicted in labels.items():
        if "fp16" in labels:
            results["precisions"][precision]["dev_agreement_with_fp16"] = float((predicted == labels["fp16"]).mean())
    print_table(results)
    write_json(args.json, results)
    return 0


def print_table(results: dict) -> None:
    runs = results["precisions"]
    base = runs.get("fp16", {})
    print(f"\nmodel {results['model']}, {results['device']}; accuracy on {results['held_out_rows']:,} held-out SST-2 "
          f"sentences, agreement with fp16 on SST-2 dev ({results['dev_rows']:,} phrases)")
    print(f"{'precision':<10}{'build s':>9}{'alone rows/s':>14}{'vs fp16':>9}{'accuracy':>9}{'agree fp16':>11}"
          f"{'guard':>8}{'CLI rows/s':>12}{'vs fp16':>9}")
    for name, r in runs.items():
        if "error" in r:
            print(f"{name:<10}refused or failed")
            continue
        alone = r["backend_alone"]["rows_per_s"]
        ratio = alone / base["backend_alone"]["rows_per_s"] if "backend_alone" in base else float("nan")
        guard = r["build"]["guard"]
        cli = r.get("cli_parquet", {}).get("rows_per_s")
        cli_ratio = cli / base["cli_parquet"]["rows_per_s"] if cli and "cli_parquet" in base else float("nan")
        print(f"{name:<10}{r['build']['build_s']:>9.0f}{alone:>14,.0f}{ratio:>9.2f}{r['held_out_accuracy']:>9.4f}"
              f"{r.get('dev_agreement_with_fp16', 1.0):>11.4f}{(guard or {}).get('agreement', 1.0):>8.3f}"
              f"{(cli or 0):>12,.0f}{cli_ratio:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
