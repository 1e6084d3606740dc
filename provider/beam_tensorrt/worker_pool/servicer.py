"""A Python SDK worker pool (Beam's ``EXTERNAL`` environment) that reports workers that cannot start
and can keep workers started ahead of jobs.

Beam's stock pool, in process mode, starts ``python`` (whichever is first on PATH) and answers
"started" at once: if that worker dies on start (no apache_beam or beam_tensorrt there, a broken
interpreter), the runner waits for it to connect and the job hangs. This pool starts workers with a
known interpreter; each worker says when its imports are done, and ``StartWorker`` answers then, or
with the end of the worker's output if it exits first, so the runner fails the job with the reason.

With ``prestart`` the pool keeps that many workers booted (interpreter up, Beam and beam_tensorrt
imported; with ``warm_cuda`` the CUDA context made; with ``preload`` ClassifyText's model loaded) and
hands one to each ``StartWorker``; a replacement starts when a worker that served a job exits, not
while the job runs (eight processes booting beside eight working ones cost the job CPU and GPU
time). On one H100 host, a 1M-row TensorRT job on eight such workers ran 1.6-1.9x the rows/s of
eight processes the runner started itself (bench/NOTES.md items 41-44). Thread mode (workers inside
this process) cannot fail that way; it is Beam's.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence

from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer

from ..gpus import GpuSpreader
from ..tokenization import TOKENIZER_THREADS
from .boot import preload_handler

if TYPE_CHECKING:
    from ..config import ClassifyTextConfig

log = logging.getLogger("beam_tensorrt.worker_pool")

READY = "BEAM_TENSORRT_WORKER_READY"
# The worker's program: boot (imports; a worker interpreter without beam_tensorrt still starts),
# say so, then wait for the runner's control endpoint on stdin and serve it.
_WORKER_BOOT = f"""
import json, sys
try:
    from beam_tensorrt.worker_pool.boot import prepare_worker, serve_job
except ImportError:
    prepare_worker = serve_job = None
if prepare_worker is not None:
    prepare_worker(cuda=sys.argv[1] == "cuda", preload=sys.argv[2])
from apache_beam.runners.worker.sdk_worker import SdkHarness
print({READY!r}, flush=True)
line = sys.stdin.readline()
if line:
    request = json.loads(line)
    if serve_job is not None:
        serve_job(request)
    else:
        SdkHarness(request["control"], worker_id=request["worker_id"]).run()
"""
# Lines of a worker's output kept for the error when it dies before it is ready.
_EARLY_LINES = 200


def tokenizer_threads(workers: int, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The Rust tokenizer runs a thread per core in every process: with ``workers`` processes on one
    host that is ``workers`` times too many. Each gets its share (which also turns on the Python
    WordPiece path, ``tokenization.python_wordpiece``, where the share is small); a setting of the
    user's wins."""
    if TOKENIZER_THREADS in env:
        return {}
    return {TOKENIZER_THREADS: str(max(1, (os.cpu_count() or 1) // max(1, workers)))}


class _Worker:
    """One worker process: booting, ready and waiting for a job, or serving one."""

    def __init__(self, python: str, warm_cuda: bool, preload: str, on_exit: Callable[["_Worker"], None],
                 quiet: bool = False, gpu: Optional[str] = None, env: Mapping[str, str] = {}):
        self.python = python
        self.gpu = gpu
        self.quiet = quiet
        self.on_exit = on_exit
        self.assigned = False
        self.worker_id = "(not yet assigned)"
        inherited = {**os.environ, **env}
        self.process = subprocess.Popen([python, "-c", _WORKER_BOOT, "cuda" if warm_cuda else "-", preload],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        close_fds=True, env=GpuSpreader.worker_env(gpu, inherited) or inherited)
        self.booted = False
        self._settled = threading.Event()  # booted, or exited first
        self._early: collections.deque[str] = collections.deque(maxlen=_EARLY_LINES)
        threading.Thread(target=self._read, daemon=True, name=f"worker-{self.process.pid}").start()

    def _read(self) -> None:
        from ..logs import BEAM_NOISE

        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            if not self.booted:
                if line.strip() == READY:
                    self.booted = True
                    self._settled.set()
                    log.info("SDK worker process %d ready", self.process.pid)
                else:
                    self._early.append(line)
            elif not any(noise in line for noise in BEAM_NOISE) and not (
                    self.quiet and line.startswith(("INFO:", "DEBUG:"))):
                # Keep reading (a full pipe would block the worker) and pass its output on.
                sys.stderr.write(f"[worker {self.worker_id}] {line}")
        self.process.wait()  # output ends just before the process does
        self._settled.set()
        self.on_exit(self)

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> Optional[str]:
        """None once the worker has booted; else why it has not."""
        self._settled.wait(timeout)
        if self.booted and self.alive():
            return None
        if self.alive():
            return f"SDK worker ({self.python}) did not start within {timeout:g} s"
        self.process.wait()
        output = "".join(self._early).strip()
        return (f"SDK worker {self.worker_id} ({self.python}) exited with code {self.process.returncode} "
                f"while starting: {output[-2000:] or 'no output'}")

    def assign(self, worker_id: str, control_url: str, logging_url: str) -> None:
        self.worker_id, self.assigned = worker_id, True
        assert self.process.stdin is not None
        request = {"worker_id": worker_id, "control": control_url, "logging": logging_url}
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.close()

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()


class CheckedWorkerPoolServicer(BeamFnExternalWorkerPoolServicer):
    """Beam's worker pool, failing ``StartWorker`` when a worker process dies while starting.

    Args:
        use_process: a subprocess per worker (else a thread in this process).
        python: the interpreter of worker processes (default: this one).
        start_timeout: how long ``StartWorker`` waits for a new worker's imports.
        prestart: process mode: workers kept booted ahead of jobs.
        warm_cuda: prestarted workers also make their CUDA context (GPU hosts; each idle worker then
            holds some GPU memory).
        preload: ClassifyText's config, as JSON (checked here) or as a ``ClassifyTextConfig`` already
            validated by the caller (not checked again): workers load that model before they are handed a
            job, and a job whose ClassifyText has the same model, backend, max_seq_len and backend
            options (device, engine_cache, packing, intra_op_threads) uses it instead of loading.
        quiet: pass on only the workers' warnings and errors (the CLI's own jobs), not their INFO
            lines.
        gpus: process mode: the GPUs (``CUDA_VISIBLE_DEVICES`` names, ``gpus.select``) to spread
            workers over, one GPU each; empty: workers see what this process sees.

    Worker processes share the host's cores as ``prestart`` workers would (``tokenizer_threads``).

    Example::

        servicer = CheckedWorkerPoolServicer(use_process=True, prestart=8, warm_cuda=True,
                                             gpus=select("all", visible_gpus()))
        beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(servicer, server)
    """

    def __init__(self, use_process: bool = False, python: Optional[str] = None, start_timeout: float = 120.0,
                 prestart: int = 0, warm_cuda: bool = False, preload: "str | ClassifyTextConfig" = "",
                 quiet: bool = False, gpus: Sequence[str] = ()):
        if isinstance(preload, str):
            if preload:
                preload_handler(preload)  # a mistake fails here, naming the field, not in every worker
        else:
            preload = preload.to_json()  # validated where it was made: a config is validated once a process
        super().__init__(use_process=use_process)
        self.preload = preload
        self.python = python or sys.executable
        self.start_timeout = start_timeout
        self.prestart = prestart if use_process else 0
        self.warm_cuda = warm_cuda
        self.quiet = quiet
        self.spreader = GpuSpreader(gpus if use_process else ())
        self.worker_env = tokenizer_threads(self.prestart or 1) if use_process else {}
        self._lock = threading.Lock()
        self._waiting: collections.deque[_Worker] = collections.deque()
        self._closed = False
        with self._lock:
            for _ in range(self.prestart):
                self._waiting.append(self._spawn())

    def _spawn(self) -> _Worker:
        gpu = self.spreader.take()
        try:
            return _Worker(self.python, self.warm_cuda, self.preload, self._exited, self.quiet, gpu, self.worker_env)
        except BaseException:
            self.spreader.release(gpu)
            raise

    def _exited(self, worker: _Worker) -> None:
        """A worker process ended: forget it (runners need not call StopWorker), and one that served a
        job makes room for a prestarted one."""
        self.spreader.release(worker.gpu)
        with self._lock:
            if self._worker_processes.get(worker.worker_id) is worker.process:
                del self._worker_processes[worker.worker_id]
            serving = sum(p.poll() is None for p in self._worker_processes.values())
            if worker.assigned and not self._closed and len(self._waiting) + serving < self.prestart:
                self._waiting.append(self._spawn())

    def _next_worker(self) -> _Worker:
        """A prestarted worker, else a new one."""
        with self._lock:
            while self._waiting:
                worker = self._waiting.popleft()
                if worker.alive():
                    return worker
                log.warning("prestarted SDK worker %d exited with code %s before it was needed", worker.process.pid,
                            worker.process.returncode)
        return self._spawn()

    def StartWorker(self, start_worker_request, unused_context):
        if not self._use_process:
            return super().StartWorker(start_worker_request, unused_context)
        worker_id = start_worker_request.worker_id
        try:
            worker = self._next_worker()
        except OSError as e:
            return beam_fn_api_pb2.StartWorkerResponse(error=f"cannot start SDK worker {worker_id} ({self.python}): {e}")
        worker.worker_id = worker_id
        reason = worker.wait_ready(self.start_timeout)
        if reason is not None:
            worker.stop()
            log.error("%s", reason)
            return beam_fn_api_pb2.StartWorkerResponse(error=reason)
        with self._lock:
            self._worker_processes[worker_id] = worker.process  # Beam's StopWorker stops it
        worker.assign(worker_id, start_worker_request.control_endpoint.url, start_worker_request.logging_endpoint.url)
        log.info("started SDK worker %s (pid %d)", worker_id, worker.process.pid)
        return beam_fn_api_pb2.StartWorkerResponse()

    def close(self) -> None:
        """Stop every worker process: those waiting for a job and those serving one."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting), collections.deque()
            serving = list(self._worker_processes.values())
        for worker in waiting:
            worker.stop()
        for process in serving:
            if process.poll() is None:
                process.terminate()
