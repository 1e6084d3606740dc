#!/usr/bin/env python3
"""The tokenizer alone, per text length: the Rust tokenizer on 1, 2 and all of the host's threads
against the Python WordPiece path (``beam_tensorrt.wordpiece``) on one core, in one run.

Each setting runs in a process of its own (the Rust tokenizer reads ``RAYON_NUM_THREADS`` once), on
the same texts, as ``TextClassifier`` tokenizes them: 8,192-row tables, encoded and padded.

    python -m bench.tokenizer --data ../shared/data/sst2 [--rows 40000] [--json docs/bench/NAME.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import LENGTH_PROFILES, ROOT, device, texts_of_length, write_json


def measure(data: Path, profile: str, rows: int, python_path: bool) -> dict:
    """Rows a second of ``TextTokenizer`` (encode + pad) in this process, and the share of texts
    that are plain ASCII."""
    from beam_tensorrt.models import resolve_model
    from beam_tensorrt.tokenization import TextTokenizer

    texts = texts_of_length(data, profile)
    sample = [texts[i % len(texts)] for i in range(rows)]
    tok = TextTokenizer(resolve_model("sentiment-minilm").tokenizer_path, 128, python_path=python_path)
    tok.pad(tok.encode(sample[:2000]))  # warm: the Python path's word cache, the Rust thread pool
    start = time.perf_counter()
    for i in range(0, rows, 8192):
        tok.pad(tok.encode(sample[i:i + 8192]))
    seconds = time.perf_counter() - start
    return {"rows_per_s": rows / seconds, "ascii_share": sum(t.isascii() for t in sample) / rows}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="SST-2 folder (train.tsv)")
    ap.add_argument("--rows", type=int, default=40_000)
    ap.add_argument("--profiles", default=",".join(LENGTH_PROFILES))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--one", nargs=2, metavar=("PROFILE", "PATH"), help=argparse.SUPPRESS)  # a child's setting
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.data, args.one[0], args.rows, args.one[1] == "python")))
        return
    cores = os.cpu_count() or 1
    settings = [("Rust, 1 thread", "rust", 1), ("Rust, 2 threads", "rust", 2), (f"Rust, {cores} threads", "rust", cores),
                ("Python path, 1 core", "python", 1)]
    results: dict = {"device": device(), "rows": args.rows, "profiles": {}}
    for profile in args.profiles.split(","):
        row = {}
        for label, path, threads in settings:
            env = {**os.environ, "RAYON_NUM_THREADS": str(threads),
                   "PYTHONPATH": os.pathsep.join([str(ROOT / "provider"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
            out = subprocess.run([sys.executable, "-m", "bench.tokenizer", "--data", str(args.data), "--rows",
                                  str(args.rows), "--one", profile, path], env=env, cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout
            row[label] = json.loads(out.strip().splitlines()[-1])
        results["profiles"][profile] = row
    base = "Rust, 1 thread"
    print(f"{'profile':10s} {'setting':22s} {'rows/s':>10s} {'vs ' + base:>18s}")
    for profile, row in results["profiles"].items():
        for label, r in row.items():
            print(f"{profile:10s} {label:22s} {r['rows_per_s']:10,.0f} {r['rows_per_s'] / row[base]['rows_per_s']:17.2f}x")
        print(f"{'':10s} plain-ASCII texts: {row[base]['ascii_share']:.1%}")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
