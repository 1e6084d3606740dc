"""The backend contract: what ``TextClassifier`` relies on, declared once.

Every backend (ONNX Runtime, PyTorch, TensorRT) implements ``InferenceSession``;
``tests/test_backends.py`` holds each of them to it on a CPU, the TensorRT session
included (its CUDA and TensorRT calls faked), so a backend that breaks a promise fails CI
without a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence

import numpy as np

Feeds = Mapping[str, np.ndarray]

# What a plan may compute in. int8 and fp8 are TensorRT's alone, built (and checked against fp16)
# by ``beam-tensorrt build`` from calibration texts: ``build.quantize``.
PRECISIONS = ("fp16", "fp32", "int8", "fp8")
REDUCED_PRECISIONS = ("int8", "fp8")


@dataclass(frozen=True)
class BackendOptions:
    """How a backend opens a model. ClassifyText's configuration is turned into this object in one
    place (``ClassifyTextConfig.backend_options``), and the defaults written here are the config's
    defaults too, so a setting reaches the backend by one path.

    Args:
        max_seq_len: tokens kept per text. The classifier's tokenizer cuts texts there, and the
            TensorRT loader builds its plan's optimization profiles up to it.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (every backend).
        packing: GPU backends (TensorRT, PyTorch): several short rows a sequence where the model
            allows it (pooled-BERT artifacts), so that almost no computed token is padding.
        intra_op_threads: ONNX Runtime: threads per call (0: one per core).
        engine_cache: TensorRT: where built plans and the builder's timing cache are shared (a local
            path or any Beam filesystem URL).
        precision: GPU backends compute in ``fp16`` (or ``fp32``); TensorRT also in ``int8`` or
            ``fp8`` from a plan built ahead by ``beam-tensorrt build``. ONNX Runtime on a CPU
            always computes in fp32.
        cuda_graphs: GPU backends: replay CUDA graphs for shapes that recur.
    """

    max_seq_len: int = 128
    device: str = "auto"
    packing: bool = True
    intra_op_threads: int = 0
    engine_cache: str | None = None
    precision: str = "fp16"
    cuda_graphs: bool = True


class InferenceSession(Protocol):
    """A loaded model: groups of token-id arrays in, logits out.

    What callers may rely on, and every implementation must keep:

    - ``run_many`` accepts any iterable of groups (a generator too) and consumes it exactly
      once, in order; it may start work on a group before it has read the next, so a caller can
      tokenize group k+1 while the device computes group k. It returns one fp32 array per group,
      in the order given: ``[rows, labels]``, or for a packing session ``[sequences, seq, labels]``.
    - Each group maps every name in ``input_names`` to an int64 ``[rows, seq]`` array; any
      ``rows`` and any ``seq`` up to the classifier's ``max_seq_len`` are accepted (a session
      splits what its device cannot take at once).
    - ``packed``: the session takes packed groups (``tokenization.PackedBatch``: several rows a
      sequence, ``input_ids``, ``segment_ids``, ``token_type_ids``, ``position_ids``) and returns
      one result per slot; otherwise padded ones (``TokenBatch``: a row a sequence, ``input_ids``,
      ``attention_mask``, ``token_type_ids``).
    - ``token_budget`` (tokens) and ``max_group_rows`` (rows, or packed sequences) size the
      groups the classifier forms: what runs best on this device.
    - Thread safety: one session is shared by all threads of a Beam worker, so ``run_many`` may
      be called from several threads at once, and each call gets its own results.
    - ``close`` releases device memory; the session is not used afterwards.

    Implementations subclass this Protocol explicitly, which also gives them ``run``.
    """

    name: str
    input_names: Sequence[str]
    packed: bool
    token_budget: int
    max_group_rows: int

    def run_many(self, groups: Iterable[Feeds]) -> list[np.ndarray]:
        ...

    def close(self) -> None:
        ...

    def run(self, feeds: Feeds) -> np.ndarray:
        """Logits of one group."""
        return self.run_many([feeds])[0]
