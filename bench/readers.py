#!/usr/bin/env python3
"""The main job's CSV reader (plan the parts, then read every part into Arrow tables, one process)
against Python's ``csv`` module reading the same file into rows, in the same run. The job's reader
gives the rows that module gives (tests/test_jobs_inputs.py); this measures what that costs.

Profiles (SST-2 train phrases repeated to --rows rows, with an id column):
  phrases  as Arrow's CSV writer writes them (quoted where needed)
  quoted   every value quoted, one text in five with a comma and a doubled quote inside
  bare     one text in seven with a bare quote (``12" screen``): buffers walked one quote at a time

    python -m bench.readers --data ../shared/data/sst2 --rows 1000000 [--json docs/bench/NAME.json]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

PROFILES = ("phrases", "quoted", "bare")


def write_profile(path: Path, profile: str, texts: list[str], rows: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if profile == "phrases":
        ids = pa.array(range(rows), pa.int64())
        text = pa.array([texts[i % len(texts)] for i in range(rows)], pa.string())
        pcsv.write_csv(pa.table({"id": ids, "text": text}), path)
        return
    with open(path, "w", newline="", encoding="utf-8") as f:
        if profile == "quoted":
            writer = csv.writer(f, quoting=csv.QUOTE_ALL)
            writer.writerow(["id", "text"])
            for i in range(rows):
                text = texts[i % len(texts)]
                writer.writerow([i, f'{text}, "really"' if i % 5 == 0 else text])
        else:
            f.write("id,text\n")
            for i in range(rows):
                text = texts[i % len(texts)].replace(",", " ").replace('"', " ")
                f.write(f'{i},{text} on a 12" screen\n' if i % 7 == 0 else f"{i},{text}\n")


def time_job_reader(path: Path) -> tuple[float, int]:
    from beam_tensorrt.jobs import PART_BYTES, inputs

    start = time.perf_counter()
    src = inputs.source(str(path))
    rows = 0
    for part in inputs.plan(src, PART_BYTES, 8192):
        tables, bad = inputs.read_part(src, part, "text", 8192)
        rows += sum(t.num_rows for t in tables) + len(bad)
    return time.perf_counter() - start, rows


def time_csv_module(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        rows = sum(1 for r in reader if r)
    return time.perf_counter() - start, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="SST-2 folder (train.tsv)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.common import device, phrases, write_json

    texts = phrases(args.data)
    results: dict = {"rows": args.rows, "device": device(), "cpus": os.cpu_count(), "profiles": {}}
    with tempfile.TemporaryDirectory(prefix="readers-") as folder:
        for profile in args.profiles.split(","):
            path = Path(folder) / f"{profile}.csv"
            write_profile(path, profile, texts, args.rows)
            job_s, job_rows = time_job_reader(path)
            csv_s, csv_rows = time_csv_module(path)
            assert job_rows == csv_rows == args.rows, (profile, job_rows, csv_rows)
            results["profiles"][profile] = {"bytes": path.stat().st_size, "job_reader_s": job_s, "csv_module_s": csv_s,
                                            "job_rows_per_s": args.rows / job_s, "csv_rows_per_s": args.rows / csv_s,
                                            "vs_csv_module": csv_s / job_s}
    print(f"{'profile':<9} {'MB':>6} {'job reader rows/s':>18} {'csv module rows/s':>18} {'ratio':>6}")
    for name, r in results["profiles"].items():
        print(f"{name:<9} {r['bytes'] / 1e6:>6.0f} {r['job_rows_per_s']:>18,.0f} {r['csv_rows_per_s']:>18,.0f} "
              f"{r['vs_csv_module']:>5.1f}x")
    print(f"({args.rows:,} rows each, one process, on {results['device']})")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
