#!/usr/bin/env python3
"""Does Beam's stateful batching deliver every row exactly once on a streaming runner? (No beam_tensorrt code.)

The pipeline is Beam alone: ``PeriodicImpulse`` (``--rate`` rows a second for ``--seconds``) ->
``BatchElements(max_batch_duration_secs=1)``, the stateful batching RunInference uses in streaming
-> a step that spends ``--slow`` seconds on each batch (standing in for model inference) -> a step
that appends every row's sequence number to a file. Each trial prints how many distinct rows came
out, how many came out more than once and which are missing. ClassifyText showed rows lost and
repeated under Prism streaming (bench/NOTES.md); this isolates whether Beam and the runner do it alone.

    python -m bench.streaming_exactly_once --prism PATH [--trials 5] [--slow 0,0.2] [--rate 100] [--seconds 5]
    python -m bench.streaming_exactly_once --flink-job-endpoint localhost:8099 [--trials 10] [--buckets]
"""
from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path


def runner_options(args) -> list[str]:
    if args.flink_job_endpoint:
        return ["--runner=PortableRunner", f"--job_endpoint={args.flink_job_endpoint}", "--environment_type=LOOPBACK",
                "--streaming", "--parallelism=1"]
    return ["--runner=PrismRunner", f"--prism_location={args.prism}", "--environment_type=LOOPBACK", "--streaming"]


def trial(options: list[str], rate: int, seconds: float, slow: float, buckets: bool) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.transforms.periodicsequence import PeriodicImpulse

    interval = 1.0 / rate
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seq.txt"

        class Record(beam.DoFn):
            def process(self, seq):
                with open(out, "a") as f:
                    f.write(f"{seq}\n")

        def spend(batch):
            time.sleep(slow)
            return [seq for seq, _ in batch]

        bucketing = dict(length_fn=lambda e: len(e[1]), bucket_boundaries=[32, 64, 128, 256]) if buckets else {}
        p = beam.Pipeline(options=PipelineOptions(options))
        start = time.time() + 8  # after the pipeline has started
        _ = (p
             | PeriodicImpulse(start_timestamp=start, stop_timestamp=start + seconds, fire_interval=interval)
             | "Number" >> beam.Map(lambda t: (round((t - start) * rate), "x" * (round(t * rate) % 300)))
             | beam.BatchElements(min_batch_size=1, max_batch_size=256, max_batch_duration_secs=1, **bucketing)
             | "Slow" >> beam.FlatMap(spend)
             | beam.ParDo(Record()))
        p.run().wait_until_finish()
        seen = collections.Counter(int(line) for line in out.read_text().split())
    expected = round(seconds * rate)
    return {"expected": expected, "distinct": len(seen), "repeated": sum(n - 1 for n in seen.values()),
            "missing": sorted(set(range(expected)) - set(seen))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runner = ap.add_mutually_exclusive_group(required=True)
    runner.add_argument("--prism", help="path of a Prism binary (e.g. from beam-tensorrt's cache)")
    runner.add_argument("--flink-job-endpoint", help="a Flink job server (beam-tensorrt flink-job-server)")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--slow", default="0,0.2", help="seconds the step after batching spends per batch, comma list")
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--buckets", action="store_true", help="length-bucketed batching (batch_length_fn)")
    args = ap.parse_args()
    print(f"{'slow s/batch':>12} {'trial':>5} {'expected':>8} {'distinct':>8} {'repeated':>8}  missing")
    totals = {}
    for slow in (float(s) for s in args.slow.split(",")):
        bad = 0
        for i in range(args.trials):
            r = trial(runner_options(args), args.rate, args.seconds, slow, args.buckets)
            gap = r["missing"]
            shown = f"{len(gap)} ({gap[0]}..{gap[-1]})" if gap else "0"
            print(f"{slow:12.2f} {i + 1:5d} {r['expected']:8d} {r['distinct']:8d} {r['repeated']:8d}  {shown}", flush=True)
            bad += bool(gap or r["repeated"])
        totals[slow] = bad
    print("trials with a row lost or repeated: " +
          ", ".join(f"{bad}/{args.trials} at {slow:g} s a batch" for slow, bad in totals.items()))


if __name__ == "__main__":
    main()
