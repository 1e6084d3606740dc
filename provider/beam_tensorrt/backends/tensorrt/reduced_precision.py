"""Rules for int8 and fp8 plans, without TensorRT: which GPUs can run them, which texts calibrate
and which check them, and the accuracy guard that refuses a plan whose labels stray from fp16's.

Why a guard: a quantized plan is only worth its speed if it labels rows as the fp16 plan does.
Agreement is measured on texts held out from calibration, so a scale fitted to the very texts it
is judged on cannot flatter it. The default threshold, 99% of labels equal, is the bar the project
holds its default model to on SST-2 dev (``docs/performance.md``); below it the plan is not
published and the build says by how much it missed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ...errors import ConfigError, PrecisionRefused, UsageError

# Oldest GPU generation whose tensor cores compute each reduced precision (TensorRT 10 supports
# Turing and newer; fp8 came with Ada, 8.9, and Hopper, 9.0).
MIN_COMPUTE_CAPABILITY = {"int8": (7, 5), "fp8": (8, 9)}
DEFAULT_MIN_AGREEMENT = 0.99
# Every fifth calibration text is held out for the guard.
HOLD_OUT_EVERY = 5
CALIBRATION_ROWS = 2048
GUARD_ROWS = 2000


@dataclass
class GuardFigures:
    precision: str
    rows: int
    agreement: float  # share of held-out texts labelled as fp16 labels them
    min_agreement: float
    nan_rows: int
    max_probability_gap: float  # largest |p_reduced - p_fp16| of any label of any row

    @property
    def passed(self) -> bool:
        return self.nan_rows == 0 and self.agreement >= self.min_agreement

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QuantizeRequest:
    """What ``beam-tensorrt build`` hands the loader to build (and check) an int8 or fp8 plan."""

    calibration_texts: list[str]
    guard_texts: list[str]
    min_agreement: float = DEFAULT_MIN_AGREEMENT

    @classmethod
    def from_texts(cls, texts: Sequence[str], min_agreement: float = DEFAULT_MIN_AGREEMENT,
                   calibration_rows: int = CALIBRATION_ROWS, guard_rows: int = GUARD_ROWS) -> "QuantizeRequest":
        """Every fifth text held out for the guard, the others calibrate (each set capped)."""
        texts = [t for t in texts if t.strip()]
        guard = texts[HOLD_OUT_EVERY - 1::HOLD_OUT_EVERY][:guard_rows]
        calibration = [t for i, t in enumerate(texts) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1][:calibration_rows]
        if not guard or not calibration:
            raise UsageError(f"{len(texts)} non-empty calibration texts are too few: give at least "
                             f"{HOLD_OUT_EVERY} (hundreds to thousands measure better)")
        return cls(calibration, guard, min_agreement)


def check_gpu(precision: str, gpu_name: str, compute_capability: str) -> None:
    """Raise a ``ConfigError`` on ``precision`` naming the GPU, if it cannot compute in it."""
    need = MIN_COMPUTE_CAPABILITY.get(precision)
    if need is None:
        return
    have = tuple(int(p) for p in compute_capability.split("."))
    if have < need:
        raise ConfigError("precision", f"{precision} needs a GPU of compute capability {need[0]}.{need[1]} or newer; "
                                       f"this worker's {gpu_name} is {compute_capability}")


def guard(precision: str, fp16_logits: np.ndarray, logits: np.ndarray,
          min_agreement: float = DEFAULT_MIN_AGREEMENT) -> GuardFigures:
    """Compare a reduced-precision plan's logits with fp16's on the same held-out texts; raise
    ``PrecisionRefused`` below ``min_agreement`` or on any NaN, else return the figures."""
    if fp16_logits.shape != logits.shape or not len(logits):
        raise ValueError(f"logits of different shapes: fp16 {fp16_logits.shape}, {precision} {logits.shape}")
    nan = np.isnan(logits).any(axis=1)
    same = (logits.argmax(axis=1) == fp16_logits.argmax(axis=1)) & ~nan
    gap = np.abs(_softmax(logits[~nan]) - _softmax(fp16_logits[~nan]))
    figures = GuardFigures(precision=precision, rows=len(logits), agreement=round(float(same.mean()), 6),
                           min_agreement=min_agreement, nan_rows=int(nan.sum()),
                           max_probability_gap=round(float(gap.max()) if gap.size else 0.0, 6))
    if not figures.passed:
        raise PrecisionRefused(figures)
    return figures


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
