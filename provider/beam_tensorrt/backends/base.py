"""The backend contract: one small interface, one module per framework, imported lazily."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class BackendOptions:
    """Knobs a backend may use; each backend ignores what does not apply to it."""

    intra_op_threads: int = 0  # 0: the framework's default
    inter_op_threads: int = 0
    device: str = "auto"  # "cpu", "cuda", "cuda:N" or "auto"
    engine_cache: str | None = None  # TensorRT: where built plans are kept (local path or Beam FileSystems URL)
    fp16: bool = True  # GPU backends only; the ONNX Runtime CPU path stays fp32
    cuda_graphs: bool = True  # GPU backends: capture one graph per shape bucket


@runtime_checkable
class InferenceSession(Protocol):
    """A loaded model: token id arrays in, logits out, any batch size and sequence length."""

    name: str
    input_names: list[str]

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """``feeds`` maps each of ``input_names`` to an int64 [batch, seq] array; returns fp32 [batch, labels]."""
        ...

    def close(self) -> None:
        ...
