"""Which GPUs a host's SDK worker processes use, and which one each gets.

A worker process is given one GPU by its ``CUDA_VISIBLE_DEVICES``, so it makes one CUDA context, on
that GPU, which it sees as device 0: ClassifyText's ``device: auto`` (or ``cuda``) then lands on it
with no setting in the pipeline, and its TensorRT plan comes from the engine cache under the GPU
*model's* key, so eight H200s share one plan. Workers are spread round robin, the next one going to
the GPU with the fewest live workers (a worker that exits frees its place).

Nothing here imports CUDA unless asked to count GPUs on a machine that does not say: the
``CUDA_VISIBLE_DEVICES`` the user set is respected as given.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Mapping, Optional, Sequence
from .errors import UsageError

ENV = "CUDA_VISIBLE_DEVICES"


def visible_gpus(env: Mapping[str, str] = os.environ) -> list[str]:
    """The GPUs this process may use, named as ``CUDA_VISIBLE_DEVICES`` names them (indices or
    UUIDs); all of the machine's when it is unset. CUDA ignores the entries after an invalid one
    (``-1`` hides every GPU), and so does this."""
    given = env.get(ENV)
    if given is None:
        return [str(i) for i in range(gpu_count())]
    names = []
    for name in (n.strip() for n in given.split(",")):
        if not name or name.startswith("-"):
            break
        names.append(name)
    return names


def gpu_count() -> int:
    """GPUs of this machine: the NVIDIA driver's list, else CUDA's count (0 without either)."""
    try:
        return len(list(Path("/proc/driver/nvidia/gpus").iterdir()))
    except OSError:
        pass
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]

        err, count = cudart.cudaGetDeviceCount()
        return int(count) if int(err) == 0 else 0
    except Exception:  # no bindings, or no driver
        return 0


def default_workers(backend: str, gpus: int = 1) -> int:
    """SDK worker processes for a job on this host: on a GPU backend, one per two cores up to eight a
    GPU (eight share a GPU and keep it fed); on ONNX Runtime one, which uses every core itself.

    Args:
        backend: ClassifyText's ``backend`` (``auto`` is resolved as a worker would resolve it).
        gpus: the GPUs the workers spread over (0 counts as 1: the workers share what they see).
    """
    from .backends import resolve_auto

    chosen = resolve_auto() if backend == "auto" else backend
    if chosen == "onnxruntime":
        return 1
    return max(1, min(8 * max(1, gpus), (os.cpu_count() or 2) // 2))


def gpu_backend_host() -> bool:
    """Whether ClassifyText's ``backend: auto`` would run on a GPU here: a GPU visible and TensorRT
    or PyTorch CUDA installed. What the commands' ``auto`` defaults ask (nothing heavy imported)."""
    from .backends import resolve_auto

    return bool(visible_gpus()) and resolve_auto() != "onnxruntime"


def select(spec: str, visible: Sequence[str]) -> list[str]:
    """``--gpus``: ``all`` (every visible GPU), ``none`` (leave workers' visibility alone), or the
    positions among the visible GPUs, e.g. ``0,2`` (with ``CUDA_VISIBLE_DEVICES=4,5,6`` that is GPUs
    4 and 6). A position that is not visible is a ``ValueError`` naming what is."""
    spec = spec.strip()
    if spec == "all":
        return list(visible)
    if spec == "none":
        return []
    chosen = []
    for part in spec.split(","):
        part = part.strip()
        if not part.isdigit():
            raise UsageError(f"--gpus: {spec!r} is not 'all', 'none' or GPU positions such as 0,1")
        if int(part) >= len(visible):
            seen = f"{len(visible)} GPU(s) visible ({', '.join(visible)})" if visible else "no GPU visible"
            raise UsageError(f"--gpus: GPU {part} is not visible to this process: {seen}")
        if visible[int(part)] not in chosen:
            chosen.append(visible[int(part)])
    return chosen


class GpuSpreader:
    """Hands each new worker process the GPU with the fewest live workers (ties: the first listed).

    Args:
        gpus: ``CUDA_VISIBLE_DEVICES`` names (``select``); empty: workers keep the pool's visibility.

    Example::

        spreader = GpuSpreader(select("all", visible_gpus()))
        gpu = spreader.take()                 # "0", then "1", ...
        env = spreader.worker_env(gpu)        # the pool's environment with CUDA_VISIBLE_DEVICES=gpu
        spreader.release(gpu)                 # when that worker exits
    """

    def __init__(self, gpus: Sequence[str] = ()):
        self.gpus = list(gpus)
        self._live = {gpu: 0 for gpu in self.gpus}
        self._lock = threading.Lock()

    def take(self) -> Optional[str]:
        if not self.gpus:
            return None
        with self._lock:
            gpu = min(self.gpus, key=lambda g: self._live[g])
            self._live[gpu] += 1
            return gpu

    def release(self, gpu: Optional[str]) -> None:
        if gpu is None:
            return
        with self._lock:
            self._live[gpu] = max(0, self._live[gpu] - 1)

    def live(self) -> dict[str, int]:
        with self._lock:
            return dict(self._live)

    @staticmethod
    def worker_env(gpu: Optional[str], env: Mapping[str, str] = os.environ) -> Optional[dict[str, str]]:
        """The environment for a worker on ``gpu`` (None: inherit this process's as it is)."""
        return None if gpu is None else {**env, ENV: gpu}
