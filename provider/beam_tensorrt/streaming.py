"""Beam options chosen for latency in a streaming job on Flink (the Kafka examples and benchmarks).

Flink's portable runner ends a bundle after 1,000 ms or 1,000 elements, whichever comes first: at a
low message rate every message waits for the clock. 100 ms or 100 messages took the median latency
from 2.6-3.1 s to 0.5-1.0 s at 100 messages/s on the 2-core CPU box (docs/flink-and-kafka.md,
"Latency"); smaller bundles cost some throughput, so a job draining a backlog may pass Flink's
defaults back. ClassifyText then batches within a bundle: no ``max_batch_duration_secs``, whose
stateful batching holds rows until its timer fires.
"""
from __future__ import annotations

# Flink's spelling ("mills"), each applied unless the job's own options name it.
LATENCY_OPTIONS = {"--max_bundle_time_mills": "100", "--max_bundle_size": "100"}


def with_latency_options(beam_args: "list[str]") -> "list[str]":
    """``beam_args`` and each of ``LATENCY_OPTIONS`` they do not set already.

    Example::

        with_latency_options(["--streaming", "--max_bundle_size=1000"])
        # ['--streaming', '--max_bundle_size=1000', '--max_bundle_time_mills=100']
    """
    given = {arg.split("=", 1)[0] for arg in beam_args}
    return [*beam_args, *(f"{name}={value}" for name, value in LATENCY_OPTIONS.items() if name not in given)]
