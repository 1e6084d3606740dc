"""Building an int8 or fp8 plan: calibrate on the CPU, put Q/DQ pairs into the fp16 graph, build
it strongly typed, then run it beside the fp16 plan on held-out texts and refuse it if the labels
stray (``reduced_precision.guard``). Only ``beam-tensorrt build`` starts this: a worker that finds
no such plan in the engine cache says how to build one rather than quantize unseen.

The calibration and the guard's figures are written into the plan's metadata, beside the plan,
so whoever loads it can see what it was measured on and how close to fp16 it came.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Optional

from ...artifact import ModelArtifact
from ...files import atomic_write
from .builder import build_engine
from .calibration import calibrate
from .metadata import PlanMetadata, metadata_path
from .qdq import SCHEME, quantize
from .reduced_precision import QuantizeRequest, guard
from .spec import PlanSpec


def _say(msg: str) -> None:
    print(f"beam-tensorrt build: {msg}", file=sys.stderr, flush=True)


def build_quantized_plan(artifact: ModelArtifact, spec: PlanSpec, plan_path: Path, *, max_seq_len: int,
                         request: QuantizeRequest, fp16_plan: Path, timing_cache: Optional[Path] = None,
                         say: Callable[[str], None] = _say) -> PlanMetadata:
    """Build the ``spec.precision`` plan into ``plan_path``; raise ``PrecisionRefused`` if it fails
    the guard against the fp16 plan ``fp16_plan`` (the caller then discards it)."""
    import onnx

    from ...classifier import TextClassifier
    from .runner import TensorRTSession

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
