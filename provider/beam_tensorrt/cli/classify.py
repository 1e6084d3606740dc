"""``beam-tensorrt classify``: the main job, ClassifyText over a file in a local Beam pipeline."""
from __future__ import annotations

import argparse
import sys
import time

from .flags import add_config_flags, config_from_flags
from .progress import ProgressReporter, row_word

# ClassifyText's fields a file job may set (the others are about streaming or Beam's batching).
CONFIG_FLAGS = ("text_field", "model", "backend", "label_field", "score_field", "probabilities_field",
                "truncated_field", "allow_empty_text", "max_seq_len", "device", "packing", "engine_cache",
                "intra_op_threads")


def add(sub) -> None:
    p = sub.add_parser("classify", help="classify a TSV, CSV, JSON-lines, text or Parquet file (a local Beam pipeline)",
                       description="Run ClassifyText over a file and write JSON lines (every input field + label + "
                                   "score). The input format follows the extension: .tsv, .csv (header row), "
                                   ".jsonl/.json (one object a line), .txt (one text a line), .parquet (classified "
                                   "a row group at a time). Paths may be local or any Beam filesystem (gs://, s3://...).")
    p.add_argument("--input", required=True, help="input file")
    p.add_argument("--output", required=True, help="output file, JSON lines (.jsonl)")
    p.add_argument("--errors", default=None, help="write rows that cannot be classified here (JSON lines, with the "
                                                  "reason) and keep going; without it the first such row stops the job")
    add_config_flags(p, CONFIG_FLAGS)
    p.add_argument("--batch-size", type=int, default=256,
                   help="rows per Beam batch (default: 256; Parquet: its row groups are the batches)")
    p.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines when stderr is not a terminal (default: 10)")
    p.add_argument("--runner", default="FnApiRunner",
                   help="Beam runner (default: FnApiRunner, Beam's local runner in this process)")
    p.add_argument("beam_options", nargs=argparse.REMAINDER,
                   help="after --: Beam pipeline options, e.g. -- --s3_region_name=eu-west-1 for s3:// paths")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..formats import check_paths

    # Mistakes in paths and flags are reported before Beam's import.
    check_paths(args.input, args.output, args.errors)
    # A bounded file: full batches, no latency to trade.
    checked = config_from_flags(args, CONFIG_FLAGS, max_batch_size=args.batch_size, min_batch_size=args.batch_size)
    config = {name: getattr(checked, name) for name in (*CONFIG_FLAGS, "max_batch_size", "min_batch_size")}
    from ..jobs import classify_file, count_rows

    reporter = ProgressReporter(0, interval=args.progress_every)
    start = time.monotonic()

    def on_start():
        reporter.total = count_rows(args.input)
        reporter.begin()

    try:
        counts = classify_file(args.input, args.output, errors_path=args.errors, runner=args.runner,
                               pipeline_args=[a for a in args.beam_options if a != "--"], on_start=on_start, **config)
    finally:
        reporter.end()
    seconds = time.monotonic() - start
    done = counts["classified"]
    errors = f"; {counts['errors']:,} {row_word(counts['errors'])} -> {args.errors}" if args.errors else ""
    print(f"beam-tensorrt: classified {done:,} {row_word(done)} -> {args.output}{errors} in {seconds:.1f} s "
          f"({(done + counts['errors']) / max(seconds, 1e-6):,.0f} rows/s)", file=sys.stderr)
    return 0
