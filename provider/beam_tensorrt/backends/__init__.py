"""Inference backends behind one contract (``base.InferenceSession``).

Each framework lives in its own module and is imported only when chosen, so
that the package imports without torch, TensorRT or a GPU.
"""
from __future__ import annotations

import importlib.util
import logging

from ..artifact import ModelArtifact
from .base import BackendOptions, InferenceSession

BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")

log = logging.getLogger(__name__)


def _cuda_available_without_torch() -> bool:
    """A CUDA device is visible, checked without importing torch (the runtime path must not)."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        return False
    err, count = cudart.cudaGetDeviceCount()
    return int(err) == 0 and count > 0


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_auto() -> str:
    """TensorRT when importable with a GPU, else PyTorch on a GPU, else ONNX Runtime."""
    if _installed("tensorrt") and _cuda_available_without_torch():
        return "tensorrt"
    if _installed("torch"):
        import torch  # only reached where torch is installed: a GPU worker without TensorRT

        if torch.cuda.is_available():
            return "torch"
    return "onnxruntime"


def open_session(backend: str, artifact: ModelArtifact, options: BackendOptions = BackendOptions()) -> InferenceSession:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    chosen = resolve_auto() if backend == "auto" else backend
    if backend == "auto":
        log.info("backend 'auto' chose %r", chosen)
    if chosen == "onnxruntime":
        from .onnxruntime import OnnxRuntimeSession

        return OnnxRuntimeSession(artifact, options)
    if chosen == "torch":
        from .torch import TorchSession

        return TorchSession(artifact, options)
    from .tensorrt import TensorRTSession

    return TensorRTSession(artifact, options)


__all__ = ["BACKENDS", "BackendOptions", "InferenceSession", "open_session", "resolve_auto"]
