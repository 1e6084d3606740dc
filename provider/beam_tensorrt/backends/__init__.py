"""Inference backends behind one contract (``base.InferenceSession``), found through a registry.

Each framework lives in its own module and is imported only when chosen, so that the package
imports without torch, TensorRT or a GPU. A backend is registered with a loader (artifact +
options -> session) and a cheap availability check that ``auto`` asks in order.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..artifact import ModelArtifact
from .base import BackendOptions, Feeds, InferenceSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    """A registered backend.

    Args:
        name: what users write in ``backend:``.
        open: ``(artifact, options) -> InferenceSession``; imports its framework when called.
        usable: is it worth choosing for ``auto`` on this machine (imports nothing heavy).
    """

    name: str
    open: Callable[[ModelArtifact, BackendOptions], InferenceSession]
    usable: Callable[[], bool]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def cuda_device_visible() -> bool:
    """A CUDA device is visible, checked without importing torch (the runtime path must not)."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        return False
    try:
        err, count = cudart.cudaGetDeviceCount()
    except Exception:  # a driver-less machine can fail inside the bindings
        return False
    return int(err) == 0 and count > 0


def _nvidia_gpu_listed() -> bool:
    """The NVIDIA driver lists a GPU (for machines without the CUDA Python bindings)."""
    try:
        return any(Path("/proc/driver/nvidia/gpus").iterdir())
    except OSError:
        return False


def _torch_cuda() -> bool:
    # Checked without torch first: importing torch costs seconds, and `auto` on a CPU machine
    # that merely has torch installed must not pay for it.
    if not _installed("torch") or not (cuda_device_visible() or _nvidia_gpu_listed()):
        return False
    import torch  # only reached where torch is installed: a GPU worker without TensorRT

    return bool(torch.cuda.is_available())


def _open_tensorrt(artifact: ModelArtifact, options: BackendOptions) -> InferenceSession:
    from .tensorrt.loader import load_session

    return load_session(artifact, options)


def _open_torch(artifact: ModelArtifact, options: BackendOptions) -> InferenceSession:
    from .torch import TorchSession

    return TorchSession(artifact, options)


def _open_onnxruntime(artifact: ModelArtifact, options: BackendOptions) -> InferenceSession:
    from .onnxruntime import OnnxRuntimeSession

    return OnnxRuntimeSession(artifact, options)


# In the order ``auto`` tries them.
REGISTRY: dict[str, Backend] = {
    "tensorrt": Backend("tensorrt", _open_tensorrt, lambda: _installed("tensorrt") and cuda_device_visible()),
    "torch": Backend("torch", _open_torch, _torch_cuda),
    "onnxruntime": Backend("onnxruntime", _open_onnxruntime, lambda: True),
}
BACKENDS = ("auto", *REGISTRY)


def resolve_auto() -> str:
    """TensorRT when importable with a GPU, else PyTorch on a GPU, else ONNX Runtime."""
    return next(name for name, backend in REGISTRY.items() if backend.usable())


def open_session(backend: str, artifact: ModelArtifact, options: BackendOptions = BackendOptions()) -> InferenceSession:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    chosen = resolve_auto() if backend == "auto" else backend
    if backend == "auto":
        log.info("backend 'auto' chose %r", chosen)
    return REGISTRY[chosen].open(artifact, options)


__all__ = ["BACKENDS", "REGISTRY", "Backend", "BackendOptions", "Feeds", "InferenceSession", "open_session",
           "resolve_auto"]
