"""A Python SDK worker pool (Beam's ``EXTERNAL`` environment) that reports workers that cannot start.

Beam's stock pool, in process mode, starts ``python`` (whichever is first on PATH) and answers
"started" at once: if that worker dies on start (no apache_beam or beam_tensorrt there, a broken
interpreter), the runner waits for it to connect and the job hangs. This pool starts workers with a
known interpreter, watches each new process for ``start_check_seconds``, and reports one that exits
in that time in ``StartWorkerResponse.error`` with the end of its output, so the runner fails the
job with the reason. Thread mode (workers inside this process) cannot fail that way; it is Beam's.
"""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import Optional

from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer

log = logging.getLogger("beam_tensorrt.worker_pool")

# Beam's RunInference without its torch import (see beam_inference.py), before the worker unpickles
# a RunInference; a worker interpreter without beam_tensorrt still starts.
_WORKER_BOOT = "try:\n    import beam_tensorrt.beam_inference\nexcept ImportError:\n    pass\n"


class CheckedWorkerPoolServicer(BeamFnExternalWorkerPoolServicer):
    """Beam's worker pool, failing ``StartWorker`` when a worker process dies while starting.

    Args:
        use_process: a subprocess per worker (else a thread in this process).
        python: the interpreter of worker processes (default: this one).
        start_check_seconds: how long a new worker process is watched.
    """

    def __init__(self, use_process: bool = False, python: Optional[str] = None, start_check_seconds: float = 3.0):
        super().__init__(use_process=use_process)
        self.python = python or sys.executable
        self.start_check_seconds = start_check_seconds

    def StartWorker(self, start_worker_request, unused_context):
        if not self._use_process:
            return super().StartWorker(start_worker_request, unused_context)
        worker_id = start_worker_request.worker_id
        command = [self.python, "-c", _WORKER_BOOT + "from apache_beam.runners.worker.sdk_worker import SdkHarness\n"
                   f"SdkHarness({start_worker_request.control_endpoint.url!r}, worker_id={worker_id!r}).run()"]
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, close_fds=True)
        except OSError as e:
            return beam_fn_api_pb2.StartWorkerResponse(error=f"cannot start SDK worker {worker_id} ({self.python}): {e}")
        deadline = time.monotonic() + self.start_check_seconds
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        if process.poll() is not None:
            output = process.stdout.read().decode("utf-8", "replace").strip() if process.stdout else ""
            reason = (f"SDK worker {worker_id} ({self.python}) exited with code {process.returncode} while starting: "
                      f"{output[-2000:] or 'no output'}")
            log.error("%s", reason)
            return beam_fn_api_pb2.StartWorkerResponse(error=reason)
        self._worker_processes[worker_id] = process
        # Keep reading its output (a full pipe would block the worker) and pass it on.
        threading.Thread(target=_forward, args=(process, worker_id), daemon=True, name=f"worker-{worker_id}").start()
        log.info("started SDK worker %s (pid %d)", worker_id, process.pid)
        return beam_fn_api_pb2.StartWorkerResponse()


def _forward(process: subprocess.Popen, worker_id: str) -> None:
    from ..logs import BEAM_NOISE

    assert process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        line = raw.decode("utf-8", "replace")
        if not any(noise in line for noise in BEAM_NOISE):
            sys.stderr.write(f"[worker {worker_id}] {line}")
