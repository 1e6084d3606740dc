"""GPU tests: they run wherever their framework and a supported GPU exist, and are skipped elsewhere
with the reason (pytest -rs prints it)."""
import pytest


def require_cuda_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to PyTorch")
    return torch


def require_tensorrt():
    from beam_tensorrt.backends.tensorrt.platform import gpu_info, import_tensorrt
    from beam_tensorrt.errors import TensorRTUnavailable

    try:
        trt = import_tensorrt()
    except TensorRTUnavailable as e:
        pytest.skip(f"TensorRT unavailable: {e}")
    try:
        gpu_info()
    except Exception as e:  # no cuda-python or no device
        pytest.skip(f"no CUDA device usable through cuda-python: {e}")
    return trt
