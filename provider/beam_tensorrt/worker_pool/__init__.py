"""A Python SDK worker pool for runners' ``EXTERNAL`` environment (``beam-tensorrt worker-pool``),
beside a runner's workers (Flink TaskManagers, Spark executors), or inside the expansion service.

- ``servicer``: Beam's worker pool servicer, reporting workers that cannot start and keeping workers
  booted ahead of jobs (``--prestart``, ``--warm-cuda``, ``--preload``).
- ``boot``: what a worker process runs before and when it is handed a job.
"""
from __future__ import annotations

import signal
import threading
from concurrent import futures
from typing import Optional, Sequence

from ..ports import bind
from .servicer import CheckedWorkerPoolServicer


def start_pool(host: str, port: int, servicer: CheckedWorkerPoolServicer, threads: int = 16):
    """A started gRPC server for ``servicer`` on ``host:port`` (0: any free port), and the port bound.
    A port that cannot be had closes the servicer (its prestarted workers) and raises ``OSError``."""
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="worker-pool"))
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(servicer, server)
    try:
        bound = bind(server, host, port)
    except OSError:
        servicer.close()
        raise
    server.start()
    return server, bound


def serve_worker_pool(host: str, port: int, python: Optional[str] = None, start_timeout: float = 120.0,
                      prestart: int = 0, warm_cuda: bool = False, preload: str = "",
                      gpus: Sequence[str] = ()) -> int:
    """Serve a worker pool (process mode) until SIGTERM/SIGINT: ``beam-tensorrt worker-pool``."""
    servicer = CheckedWorkerPoolServicer(use_process=True, python=python, start_timeout=start_timeout,
                                         prestart=prestart, warm_cuda=warm_cuda, preload=preload, gpus=gpus)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.set())
    server, bound = start_pool(host, port, servicer)
    warm = (f", {prestart} started ahead" + (" with CUDA" if warm_cuda else "") + (" and a model" if preload else "")
            if prestart else "")
    spread = f"; over GPUs {', '.join(gpus)}" if gpus else ""
    print(f"beam-tensorrt worker pool listening on {host}:{bound} (workers: {servicer.python}{warm}{spread})",
          flush=True)
    while not stopping.wait(0.5):
        pass
    server.stop(grace=5).wait()
    servicer.close()
    return 0


__all__ = ["CheckedWorkerPoolServicer", "serve_worker_pool", "start_pool"]
