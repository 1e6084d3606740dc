"""Building an int8 or fp8 plan: calibrate on the CPU, put Q/DQ pairs into the fp16 graph, build
it strongly typed, then run it beside the fp16 plan on held-out texts and refuse it if the labels
stray (``guard.guard``). Only ``beam-tensorrt build`` starts this: a worker that finds
no such plan in the engine cache says how to build one rather than quantize unseen.

The calibration and the guard's figures are written into the plan's metadata, beside the plan,
so whoever loads it can see what it was measured on and how close to fp16 it came.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..artifact import ModelArtifact
from ..files import atomic_write
from ..backends.tensorrt.builder import build_engine
from .calibration import calibrate
from ..backends.tensorrt.metadata import PlanMetadata, metadata_path
from ..errors import UsageError
from .qdq import quantize
from .guard import DEFAULT_MIN_AGREEMENT, guard
from ..backends.tensorrt.spec import SCHEME, PlanSpec

# Every fifth calibration text is held out for the guard.
HOLD_OUT_EVERY = 5
CALIBRATION_ROWS = 2048
GUARD_ROWS = 2000


@dataclass
class QuantizeRequest:
    """What ``beam-tensorrt build`` hands the loader (``loader.plan_for``) to build and check an int8
    or fp8 plan with: the texts that calibrate it, those held out for the guard, the guard's bar."""

    calibration_texts: list[str]
    guard_texts: list[str]
    min_agreement: float = DEFAULT_MIN_AGREEMENT

    @classmethod
    def from_texts(cls, texts: Sequence[str], min_agreement: float = DEFAULT_MIN_AGREEMENT,
                   calibration_rows: int = CALIBRATION_ROWS, guard_rows: int = GUARD_ROWS) -> "QuantizeRequest":
        """Every fifth text held out for the guard, the others calibrate (each set capped)."""
        texts = [t for t in texts if t.strip()]
        guard_texts = texts[HOLD_OUT_EVERY - 1::HOLD_OUT_EVERY][:guard_rows]
        calibration = [t for i, t in enumerate(texts) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1][:calibration_rows]
        if not guard_texts or not calibration:
            raise UsageError(f"{len(texts)} non-empty calibration texts are too few: give at least "
                             f"{HOLD_OUT_EVERY} (hundreds to thousands measure better)")
        return cls(calibration, guard_texts, min_agreement)

    def build_plan(self, artifact: ModelArtifact, spec: PlanSpec, plan_path: Path, *, max_seq_len: int,
                   fp16_plan: Path, timing_cache: Optional[Path] = None) -> "PlanMetadata":
        """``spec``'s plan built and checked (``spec.QuantizedBuild``, what the loader calls)."""
        return build_quantized_plan(artifact, spec, plan_path, max_seq_len=max_seq_len, request=self,
                                    fp16_plan=fp16_plan, timing_cache=timing_cache)


def _say(msg: str) -> None:
    print(f"beam-tensorrt build: {msg}", file=sys.stderr, flush=True)


def build_quantized_plan(artifact: ModelArtifact, spec: PlanSpec, plan_path: Path, *, max_seq_len: int,
                         request: QuantizeRequest, fp16_plan: Path, timing_cache: Optional[Path] = None,
                         say: Callable[[str], None] = _say) -> PlanMetadata:
    """Build the ``spec.precision`` plan into ``plan_path``; raise ``PrecisionRefused`` if it fails
    the guard against the fp16 plan ``fp16_plan`` (the caller then discards it)."""
    import onnx

    from ..classifier import TextClassifier
    from ..backends.tensorrt.runner import TensorRTSession

    say(f"calibrating on {len(request.calibration_texts)} texts (ONNX Runtime, CPU)")
    cal = calibrate(artifact, request.calibration_texts, max_seq_len)
    graph = quantize(onnx.load(str(spec.onnx_path)), cal.amax(spec.precision), spec.precision, cal.gemm_shapes)
    qdq_path = plan_path.with_name(f"{spec.onnx_path.stem}.{spec.precision}.onnx")
    onnx.save(graph, str(qdq_path))
    meta = build_engine(qdq_path, plan_path, spec.profiles, precision=spec.precision, timing_cache=timing_cache,
                        say=say)
    meta.layout = spec.layout
    meta.onnx_sha256 = artifact.manifest.onnx_sha256
    atomic_write(Path(metadata_path(plan_path)), meta.to_json().encode())

    say(f"checking against fp16 on {len(request.guard_texts)} held-out texts")
    logits = {}
    for name, path in (("fp16", fp16_plan), (spec.precision, plan_path)):
        classifier = TextClassifier(artifact, TensorRTSession(path, onnx_sha256=artifact.manifest.onnx_sha256),
                                    max_seq_len)
        try:
            logits[name], _, _ = classifier.logits(request.guard_texts)
        finally:
            classifier.close()
    figures = guard(spec.precision, logits["fp16"], logits[spec.precision], request.min_agreement)
    say(f"{spec.precision} agrees with fp16 on {figures.agreement:.2%} of {figures.rows} held-out texts "
        f"(threshold {figures.min_agreement:.2%})")
    meta.calibration = {**cal.to_dict(), "scheme": SCHEME, "guard": figures.to_dict()}
    atomic_write(Path(metadata_path(plan_path)), meta.to_json().encode())
    return meta
