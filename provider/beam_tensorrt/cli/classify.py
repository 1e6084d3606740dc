"""``beam-tensorrt classify``: the main job, ClassifyText over files in a local Beam pipeline."""
from __future__ import annotations

import signal
import sys
import time

from . import pool_flags
from ..config import TABLE_ROWS
from .flags import add_config_flags, config_from_flags
from .progress import ProgressReporter, rate_text, row_word

# ClassifyText's fields a file job may set (the others are about streaming or Beam's batching).
CONFIG_FLAGS = ("text_field", "model", "backend", "label_field", "score_field", "probabilities_field",
                "truncated_field", "allow_empty_text", "max_seq_len", "device", "packing", "cuda_graphs", "precision",
                "engine_cache", "intra_op_threads")


def add(sub) -> None:
    p = sub.add_parser("classify", help="classify TSV, CSV, JSON-lines, text or Parquet files (a local Beam pipeline)",
                       description="Run ClassifyText over files and write every input column plus the label and its "
                                   "score. Formats follow the extensions: input .tsv, .csv (header row), .jsonl/.json "
                                   "(one object a line), .txt (one text a line), .parquet; output .jsonl, .csv, .tsv "
                                   "or .parquet. Data stays columnar (Arrow) from reader to writer. Paths may be local "
                                   "or any Beam filesystem (gs://, s3://...).")
    p.add_argument("--input", required=True, help="input file, directory (its files of one known format) or glob "
                                                  "(quote it: 'data/*.csv')")
    p.add_argument("--output", required=True, help="output file; its extension sets the format")
    p.add_argument("--errors", default=None, help="write rows that cannot be classified here (JSON lines: file, row, "
                                                  "element, msg) and keep going; without it the first such row stops "
                                                  "the job")
    add_config_flags(p, CONFIG_FLAGS)
    p.add_argument("--workers", default="auto", metavar="N",
                   help="SDK worker processes (default: auto: one per two cores, up to 8 a GPU, on a GPU backend; "
                        "1 on ONNX Runtime, which uses every core itself)")
    pool_flags.add_gpus(p)
    p.add_argument("--shards", type=int, default=1, metavar="N",
                   help="write N output files, OUTPUT-00000-of-0000N.EXT, instead of one (default: 1)")
    p.add_argument("--batch-size", type=int, default=TABLE_ROWS, metavar="ROWS",
                   help=f"rows per Arrow table, each one RunInference batch (default: {TABLE_ROWS})")
    p.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines when stderr is not a terminal (default: 10)")
    p.add_argument("--runner", default="FnApiRunner",
                   help="Beam runner (default: FnApiRunner, Beam's local runner; --workers applies to it)")
    p.epilog = "Beam pipeline options go after --, e.g. -- --s3_region_name=eu-west-1 for s3:// paths."
    p.set_defaults(func=run, beam_options=[])


def run(args) -> int:
    from ..formats import check_paths
    from ..errors import UsageError

    # Mistakes in paths and flags are reported before Beam's import.
    check_paths(args.input, args.output, args.errors)
    config = config_from_flags(args, CONFIG_FLAGS)
    if args.shards < 1 or args.batch_size < 1:
        raise UsageError("--shards and --batch-size take a whole number of at least 1")
    gpus = pool_flags.gpus(args)
    from ..worker_pool.local import workers_flag

    workers = workers_flag(args.workers, config.backend, len(gpus))
    from ..jobs import classify_file
    from ..jobs.outputs import counts

    reporter = ProgressReporter(0, interval=args.progress_every)
    start = time.monotonic()

    def on_start(rows: int, folder: str) -> None:
        reporter.total = rows

        def done() -> tuple[int, int]:
            c = counts(folder)
            return c.classified, c.errors

        reporter.begin(done)

    # Ctrl-C and SIGTERM stop the job the same way: an exception in the main thread, which Beam may
    # wrap in its own while a step runs; what stopped it is told by the signal seen.
    stopped_by: list[int] = []

    def on_signal(signum, frame):
        stopped_by.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = classify_file(args.input, args.output, config, errors_path=args.errors, workers=workers, gpus=gpus,
                               shards=args.shards, batch_rows=args.batch_size, runner=args.runner,
                               pipeline_args=args.beam_options, on_start=on_start)
    except BaseException:
        if not stopped_by:
            raise
        reporter.end()
        what = "interrupted" if stopped_by[0] == signal.SIGINT else "terminated"
        print(f"beam-tensorrt: {what}: nothing written to {args.output}"
              + (f" or {args.errors}" if args.errors else "") + "; temporary files removed", file=sys.stderr)
        return 130 if stopped_by[0] == signal.SIGINT else 143
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reporter.end()
    seconds = time.monotonic() - start
    c = result.counts
    written = args.output if len(result.outputs) == 1 else f"{len(result.outputs)} files {result.outputs[0]}..."
    errors = (f"; {c.errors:,} {row_word(c.errors)} rejected -> {args.errors}" if c.errors and args.errors else "")
    truncated = ""
    if c.truncated:
        mark = (f"marked in {config.truncated_field}" if config.truncated_field
                else "--truncated-field NAME marks them")
        truncated = f"; {c.truncated:,} cut at {config.max_seq_len} tokens ({mark})"
    print(f"beam-tensorrt: classified {c.classified:,} {row_word(c.classified)} -> {written}{errors}{truncated} "
          f"in {seconds:.1f} s ({rate_text((c.classified + c.errors) / max(seconds, 1e-6))}, {workers} "
          f"{'worker' if workers == 1 else 'workers'})", file=sys.stderr)
    return 0
