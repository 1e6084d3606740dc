#!/usr/bin/env python3
"""Per-row latency of ClassifyText in a streaming pipeline, at the Kafka example's latency settings.

A ``PeriodicImpulse`` fires every ``--tick-ms`` on the wall clock; each tick emits
``rate * tick`` SST-2 phrases stamped with the time they were emitted. ClassifyText batches them
within the runner's bundles (on Flink 100 ms or 100 rows, ``beam_tensorrt.streaming``), or with
Beam's stateful, length-bucketed batching given ``--max-batch-duration-secs N``, and the last step
records, for every row, the time from emission to coming out classified; rows emitted and never
classified are counted as lost. The runner is Prism or a Flink job server (streaming, real
processing time) with the Python SDK worker in this process (LOOPBACK), or with --pool-workers N,
N SDK workers from a `beam-tensorrt worker-pool` on this machine (EXTERNAL, Flink parallelism N);
the steps append to local files, so the workers must share this machine.

    python -m bench.streaming_latency (--prism PATH | --flink-job-endpoint HOST:PORT) --data DIR
        [--model M] [--backend B] [--engine-cache DIR] [--rates 200,1000,5000] [--seconds 20] [--max-batch-size 256]
        [--pool-workers N] [--json OUT]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run_rate(args, texts: list[str], rate: int) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.transforms.periodicsequence import PeriodicImpulse

    from beam_tensorrt import ClassifyText

    from apache_beam.typehints.row_type import RowTypeConstraint

    # At least one row a tick: a rate below one row per --tick-ms gets a longer tick, not more rows.
    tick_ms = args.tick_ms if rate * args.tick_ms >= 1000 else round(1000 / rate)
    per_tick = round(rate * tick_ms / 1000)
    row_type = RowTypeConstraint.from_fields([("seq", int), ("text", str), ("emitted", float)])
    with tempfile.TemporaryDirectory() as tmp:
        log_path, emitted_path = Path(tmp) / "latency.txt", Path(tmp) / "emitted.txt"

        class EmitRows(beam.DoFn):
            def start_bundle(self):
                self._seqs = []

            def process(self, tick):
                i = round(tick * 1000 / tick_ms) * per_tick
                now = time.time()
                for k in range(per_tick):
                    self._seqs.append(f"{i + k}\n")
                    yield beam.Row(seq=i + k, text=texts[(i + k) % len(texts)], emitted=now)

            def finish_bundle(self):
                with open(emitted_path, "a") as f:
                    f.write("".join(self._seqs))

        class RecordLatency(beam.DoFn):
            def start_bundle(self):
                self._lines = []

            def process(self, row):
                self._lines.append(f"{row.seq} {time.time() - row.emitted:.6f}\n")

            def finish_bundle(self):
                with open(log_path, "a") as f:
                    f.write("".join(self._lines))

        options = PipelineOptions(runner_options(args))
        start = time.time() + args.warmup
        p = beam.Pipeline(options=options)
        _ = (p
             | PeriodicImpulse(start_timestamp=start, stop_timestamp=start + args.seconds,
                               fire_interval=tick_ms / 1000)
             | beam.ParDo(EmitRows()).with_output_types(row_type)
             | ClassifyText(model=args.model, backend=args.backend, max_batch_size=args.max_batch_size,
                            max_batch_duration_secs=args.max_batch_duration_secs or None, engine_cache=args.engine_cache)
             | beam.ParDo(RecordLatency()))
        p.run().wait_until_finish()
        first: dict[int, float] = {}
        lines = log_path.read_text().splitlines()
        for line in lines:  # a row seen twice (a retried bundle) counts once, with its first latency
            seq, seconds = line.split()
            first.setdefault(int(seq), float(seconds))
        lat = np.array(list(first.values())) * 1000
        emitted = set(int(x) for x in emitted_path.read_text().split())
    return {"rate_per_s": per_tick * 1000 / tick_ms, "rows": int(lat.size), "repeated": len(lines) - len(first),
            "lost": len(emitted - set(first)),
            "p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())}


def device_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu (no torch)"


def describe_runner(args) -> str:
    """Runner and SDK environment as the job got them (a later --pipeline-arg overrides the defaults)."""
    from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions

    options = PipelineOptions(runner_options(args))
    environment = options.view_as(PortableOptions).environment_type
    workers = options.view_as(PortableOptions).sdk_worker_parallelism or 1
    return f"{'Flink' if args.flink_job_endpoint else 'Prism'} {environment}, sdk_worker_parallelism {workers}"


def runner_options(args) -> list[str]:
    """The runner's options and --pipeline-arg's; on Flink with the latency-first bundle limits of
    the Kafka example (beam_tensorrt.streaming), unless --pipeline-arg names them."""
    if args.flink_job_endpoint:
        from beam_tensorrt.streaming import with_latency_options

        return with_latency_options(["--runner=PortableRunner", f"--job_endpoint={args.flink_job_endpoint}",
                                     "--environment_type=LOOPBACK", "--streaming", "--parallelism=1",
                                     *args.pipeline_arg])
    return ["--runner=PrismRunner", f"--prism_location={args.prism}", "--environment_type=LOOPBACK", "--streaming",
            *args.pipeline_arg]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    runner = ap.add_mutually_exclusive_group(required=True)
    runner.add_argument("--prism", help="path of a Prism binary")
    runner.add_argument("--flink-job-endpoint", help="a Flink job server (beam-tensorrt flink-job-server)")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="sentiment-minilm")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--engine-cache", default=None, help="TensorRT: where plans are kept (a built plan is reused)")
    ap.add_argument("--rates", default="200,1000,5000", help="rows per second, comma-separated")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before the first tick (model load)")
    ap.add_argument("--tick-ms", type=int, default=10)
    ap.add_argument("--max-batch-size", type=int, default=256)
    ap.add_argument("--max-batch-duration-secs", type=int, default=0,
                    help="Beam's stateful batching's wait (0, the default: none, as in the Kafka example; batches "
                         "then end with the runner's bundles)")
    ap.add_argument("--pipeline-arg", action="append", default=[],
                    help="an extra Beam option, e.g. --pipeline-arg=--max_bundle_time_mills=100 (Flink's spelling)")
    ap.add_argument("--pool-workers", type=int, default=0,
                    help="N SDK workers from a worker pool started here (EXTERNAL; parallelism N) instead of LOOPBACK")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from bench.common import read_sst2

    texts = read_sst2(args.data)
    with contextlib.ExitStack() as stack:
        if args.pool_workers:
            from bench.common import worker_pool

            address = stack.enter_context(worker_pool(args.pool_workers))
            n = args.pool_workers
            args.pipeline_arg = ["--environment_type=EXTERNAL", f"--environment_config={address}",
                                 f"--parallelism={n}", f"--sdk_worker_parallelism={n}", *args.pipeline_arg]
        results = [run_rate(args, texts, int(r)) for r in args.rates.split(",")]
    runner = describe_runner(args)
    print(f"\nClassifyText streaming latency ({runner}), model {args.model}, backend {args.backend}, "
          f"max_batch_size {args.max_batch_size}, max_batch_duration_secs {args.max_batch_duration_secs}\n")
    print(f"| {'offered rows/s':>14} | {'rows':>7} | {'lost':>5} | {'repeated':>8} | {'p50 ms':>8} | {'p90 ms':>8} | "
          f"{'p99 ms':>8} | {'max ms':>8} |")
    print(f"|{'-' * 16}|{'-' * 9}|{'-' * 7}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    for r in results:
        print(f"| {r['rate_per_s']:14.0f} | {r['rows']:7d} | {r['lost']:5d} | {r['repeated']:8d} | {r['p50_ms']:8.1f} | "
              f"{r['p90_ms']:8.1f} | {r['p99_ms']:8.1f} | {r['max_ms']:8.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "backend": args.backend, "runner": runner,
                                         "device": device_name(), "cpu_cores": os.cpu_count(),
                                         "command": "python -m bench.streaming_latency " + " ".join(sys.argv[1:]),
                                         "max_batch_size": args.max_batch_size,
                                         "max_batch_duration_secs": args.max_batch_duration_secs,
                                         "pipeline_args": args.pipeline_arg, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
