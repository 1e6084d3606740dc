"""``beam-tensorrt worker-pool``: a Python SDK worker pool for runners' EXTERNAL environment."""
from __future__ import annotations

import logging

from . import pool_flags


def add(sub) -> None:
    p = sub.add_parser("worker-pool", help="run a Python SDK worker pool for runners' EXTERNAL environment",
                       description="A Beam Python worker pool to run beside a runner's workers (Flink TaskManagers, "
                                   "Spark executors): the `external` environment of `serve`. Each worker is a process "
                                   "of --python; one that dies while starting fails the job with its output. "
                                   "--prestart keeps workers booted ahead of jobs.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=50000, help="port (default: 50000; 0 picks a free one)")
    p.add_argument("--python", default=None, help="interpreter of the workers (default: this one)")
    p.add_argument("--start-timeout", type=float, default=120.0,
                   help="seconds a new worker may take to import Beam and beam-tensorrt (default: 120)")
    pool_flags.add(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..worker_pool import serve_worker_pool

    gpus = pool_flags.gpus(args)
    prestart = pool_flags.prestart(args, len(gpus))
    logging.getLogger("beam_tensorrt").setLevel(logging.INFO)
    return serve_worker_pool(args.host, args.port, args.python, args.start_timeout, prestart,
                             pool_flags.warm_cuda(args), args.preload or "", gpus)
