"""Find a TensorRT module (TensorRT >= 10, or TensorRT-RTX) and describe the GPU, lazily."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Optional

from .metadata import RuntimeInfo
from ...errors import TensorRTUnavailable

# TensorRT proper first; TensorRT-RTX exposes the same builder/runtime API under other names.
TRT_MODULES = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")


def import_tensorrt(name: Optional[str] = None) -> ModuleType:
    names = (name,) if name else TRT_MODULES
    errors = []
    for candidate in names:
        try:
            module = importlib.import_module(candidate)
        except ImportError as e:
            errors.append(f"{candidate}: {e}")
            continue
        if hasattr(module, "Builder") and hasattr(module, "Runtime"):
            return module
        if getattr(module, "__file__", None) is None:  # a namespace package: a folder of .pyi files
            errors.append(f"{candidate}: not installed (only its type stubs are, e.g. tensorrt-stubs)")
        else:
            errors.append(f"{candidate}: {module.__file__} has no Builder or Runtime")
    raise TensorRTUnavailable(
        "no usable TensorRT module (" + "; ".join(errors) + "). Install TensorRT >= 10 from NVIDIA's index: "
        "pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12 (see README, GPU setup)")


def module_name(trt: ModuleType) -> str:
    return trt.__name__.split(".")[0].replace("_bindings", "")


def cudart_module() -> ModuleType:
    """The CUDA runtime bindings (``cuda.bindings.runtime`` of cuda-python), imported lazily."""
    from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]

    return cudart


def cuda_check(result: Any) -> Any:
    """cuda.bindings calls return (err, *values); raise on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        name = cudart_module().cudaGetErrorName(err)[1]
        raise RuntimeError(f"CUDA error {int(err)} ({name.decode() if isinstance(name, bytes) else name})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_info(device: int = 0) -> tuple[str, str]:
    """(name, compute capability 'major.minor') of a CUDA device, without torch."""
    props = cuda_check(cudart_module().cudaGetDeviceProperties(device))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return name.rstrip("\x00").strip(), f"{props.major}.{props.minor}"


def runtime_info(trt: ModuleType, device: int = 0) -> RuntimeInfo:
    name, cc = gpu_info(device)
    return RuntimeInfo(module_name(trt), str(trt.__version__), name, cc)
