#!/usr/bin/env python3
"""Where one SDK process spends its time per row: ClassifyText with its work added layer by layer.

Each row is the same Beam pipeline (sharded SST-2 text files -> ClassifyText -> count), run in this
process (FnApiRunner in memory, or with bundle threads), with the classifier doing:
  Beam only        nothing: fixed predictions (Beam's reading, batching, RunInference, our row checks
                   and output rows; the baseline of the table)
  + tokenization   the real tokenization into length groups, fixed predictions
  + predictions    tokenization and building predictions from fixed logits: all but the backend
  full             the real classifier on --backend
The difference between two rows is what that layer costs a row in the pipeline, overlaps included.

    python -m bench.pipeline_overhead --artifact DIR --data DIR [--rows 300000] [--backend torch] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def layers():
    """The classifier's ``predict`` (what ClassifyText calls for every table of rows), layer by layer."""
    from beam_tensorrt import classifier as C

    def fixed(self, texts):
        n = len(texts)
        probs = np.zeros((n, len(self.labels)), np.float32)
        probs[:, 0] = 1.0
        return C.BatchPrediction(self.labels, np.zeros(n, np.int64), probs, np.zeros(n, bool), {})

    def tokenize_only(self, texts):
        for _ in self.token_groups(texts):
            pass
        return fixed(self, texts)

    def all_but_backend(self, texts):
        logits = np.zeros((len(texts), len(self.labels)), np.float32)
        for rows, _batch in self.token_groups(texts):
            logits[rows] = 0.5
        probs = C.softmax(logits)
        return C.BatchPrediction(self.labels, probs.argmax(axis=1), probs, np.zeros(len(texts), bool), {})

    return {"Beam only": fixed, "+ tokenization": tokenize_only, "+ predictions": all_but_backend,
            "full": C.TextClassifier.predict}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--threads", default="", help="also run every layer with these many bundle threads, e.g. '2'")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from bench.common import read_sst2, timed_pipeline

    from beam_tensorrt import ClassifyText
    from beam_tensorrt.classifier import TextClassifier

    texts = read_sst2(args.data, args.rows)
    original = TextClassifier.predict
    modes = [("1 thread", [])] + [(f"{t} threads", ["--direct_running_mode=multi_threading", f"--direct_num_workers={t}"])
                                  for t in (int(x) for x in args.threads.split(",") if x)]
    results: dict[str, dict] = {}
    try:
        for mode, extra in modes:
            for name, predict in layers().items():
                # The model is loaded in this process (in-memory or threaded runner), so replacing the
                # method here is what the workers run.
                TextClassifier.predict = predict
                t = timed_pipeline(texts, lambda: ClassifyText(model=args.artifact, backend=args.backend,
                                                               min_batch_size=args.batch_size,
                                                               max_batch_size=args.batch_size),
                                   extra, metrics_namespace="BeamTensorRT_ClassifyText")
                results[f"{name}, {mode}"] = {"layer": name, "mode": mode, "seconds": t.seconds,
                                              "steady": t.steady_rate, "inference_s": t.inference_s}
                print(f"{name}, {mode}: {t.summary()}", flush=True)
    finally:
        TextClassifier.predict = original

    print(f"\n{len(texts)} SST-2 phrases, Beam batch {args.batch_size}, backend {args.backend}, "
          f"{os.cpu_count()} CPU cores\n")
    print(f"| {'layers':<32} | {'steady rows/s':>13} | {'us a row':>8} | {'added us a row':>14} | {'vs Beam only':>12} |")
    print(f"|{'-' * 34}|{'-' * 15}|{'-' * 10}|{'-' * 16}|{'-' * 14}|")
    for mode, _ in modes:
        base = prev = None
        for name in layers():
            r = results[f"{name}, {mode}"]
            us = 1e6 / r["steady"]
            base = base or us
            added = f"{us - prev:14.1f}" if prev is not None else f"{'-':>14}"
            print(f"| {name + ', ' + mode:<32} | {r['steady']:13.0f} | {us:8.1f} | {added} | {base / us:11.2f}x |")
            prev = us
    if args.json:
        args.json.write_text(json.dumps({"rows": len(texts), "batch_size": args.batch_size, "backend": args.backend,
                                         "cpu_cores": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
