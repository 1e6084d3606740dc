"""The accuracy guard of int8 and fp8 plans, without TensorRT: it refuses a plan whose labels stray
from fp16's.

Why a guard: a quantized plan is only worth its speed if it labels rows as the fp16 plan does.
Agreement is measured on texts held out from calibration, so a scale fitted to the very texts it
is judged on cannot flatter it. The default threshold, 99% of labels equal, is the bar the project
holds its default model to on SST-2 dev (``docs/performance.md``); below it the plan is not
published and the build says by how much it missed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import PrecisionRefused

DEFAULT_MIN_AGREEMENT = 0.99


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
