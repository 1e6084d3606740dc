"""Calibration for reduced-precision plans: how large each encoder GEMM's input gets on real text.

Measured once, on the CPU, with ONNX Runtime running the artifact's fp32 graph over texts the
user gives (``beam-tensorrt build --calibration-texts``); the result is a few numbers per GEMM,
kept in the plan's metadata, from which ``qdq.quantize`` derives the scales. Padding positions are
left out: they are never read by a real row.

Two statistics per tensor: the largest magnitude seen (fp8 uses it: e4m3 has range to spare), and
the 99.99th percentile of magnitudes, averaged over batches (int8 uses it: a few outliers would
otherwise spend most of int8's 255 steps on values almost never met).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..artifact import ModelArtifact
from .qdq import quantizable_matmuls, weight_shapes
from ..errors import UsageError

PERCENTILE = 99.99
BATCH_ROWS = 64


@dataclass
class Calibration:
    """What ``calibrate`` measured, for one model."""

    onnx_sha256: str  # the artifact's fp32 graph it was measured on
    gemm_shapes: list[list[int]]  # each GEMM's weight shape, in graph order
    activation_max: list[float]
    activation_percentile: list[float]
    texts: int
    texts_sha256: str
    max_seq_len: int

    def amax(self, precision: str) -> list[float]:
        """The magnitude each GEMM input's scale covers, for ``precision`` (``int8`` or ``fp8``)."""
        return self.activation_percentile if precision == "int8" else self.activation_max

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibration":
        return cls(**data)


def texts_digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\n")
    return h.hexdigest()


def calibrate(artifact: ModelArtifact, texts: Sequence[str], max_seq_len: int) -> Calibration:
    """Run the artifact's fp32 graph over ``texts`` and record each encoder GEMM's input range."""
    import onnx
    import onnxruntime as ort

    from ..tokenization import TextTokenizer

    if not texts:
        raise UsageError("calibration needs at least one text")
    model = onnx.load(str(artifact.onnx_path))
    inputs = [n.input[0] for n in quantizable_matmuls(model.graph)]
    if not inputs:
        raise ValueError(f"{artifact.onnx_path} has no GEMM to quantize")
    watched = list(dict.fromkeys(inputs))
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in watched if name not in known)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed_names = [i.name for i in session.get_inputs()]
    tokenizer = TextTokenizer(artifact.tokenizer_path, max_seq_len)
    largest = np.zeros(len(watched))
    percentiles: list[np.ndarray] = []
    for start in range(0, len(texts), BATCH_ROWS):
        batch = tokenizer(texts[start:start + BATCH_ROWS])
        real = batch.attention_mask.astype(bool)
        values = session.run(watched, batch.feeds(feed_names))
        row = np.zeros(len(watched))
        for j, v in enumerate(values):
            v = np.abs(v[real] if v.shape[:2] == real.shape else v)
            largest[j] = max(largest[j], float(v.max()))
            row[j] = float(np.percentile(v, PERCENTILE))
        percentiles.append(row)
    mean_pct = np.mean(percentiles, axis=0)
    where = {name: j for j, name in enumerate(watched)}
    return Calibration(
        onnx_sha256=artifact.manifest.onnx_sha256, gemm_shapes=weight_shapes(model),
        activation_max=[round(float(largest[where[n]]), 6) for n in inputs],
        activation_percentile=[round(float(mean_pct[where[n]]), 6) for n in inputs],
        texts=len(texts), texts_sha256=texts_digest(texts), max_seq_len=max_seq_len)
