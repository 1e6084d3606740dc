"""Which plan an artifact needs for a set of ``BackendOptions``: the ONNX file to build from, the
precision and layout the plan will have, and its optimization profiles. One function answers for
both the loader (an engine-cache miss on a worker) and ``beam-tensorrt build``, so a plan built
ahead is the plan a worker would have built. Pure Python: no TensorRT."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

from ...artifact import ModelArtifact
from ...errors import ConfigError
from ...tokenization import round_up
from ..base import REDUCED_PRECISIONS, BackendOptions
from .profiles import Profile, default_profiles, packed_profiles

# Most rows a padded plan accepts at short lengths (its profiles scale this down for long text).
MAX_BATCH = 256
# Where Q/DQ pairs go and how scales are chosen (``qdq``): part of a reduced-precision plan's
# engine-cache key, so a plan quantized otherwise is never taken for one quantized this way. Change
# it with the placement. (Q/DQ around the attention products too measured slower and less faithful
# with TensorRT 10.6 on an H200: BERT-base int8 0.93x fp16 instead of 1.13x; docs/performance.md.)
SCHEME = "dense/1"
# Oldest GPU generation whose tensor cores compute each reduced precision (TensorRT 10 supports
# Turing and newer; fp8 came with Ada, 8.9, and Hopper, 9.0).
MIN_COMPUTE_CAPABILITY = {"int8": (7, 5), "fp8": (8, 9)}


@dataclass(frozen=True)
class PlanSpec:
    """What a plan is built from and for."""

    onnx_path: Path
    precision: str  # "fp16", "fp32", "int8" or "fp8": what the plan actually computes in
    layout: str  # "packed" (several rows a sequence, tokenization.PackedBatch) or "padded"
    profiles: tuple[Profile, ...]


def onnx_for(artifact: ModelArtifact, precision: str, packing: bool = False) -> tuple[Path, str, str]:
    """The ONNX file to build from, the precision the plan will actually have, and its layout.

    Strongly typed networks take their precision from the graph, so fp16 needs an fp16 ONNX
    (pooled-BERT artifacts carry one, padded and packed); other artifacts build padded in fp32.
    int8 and fp8 plans are built from the same file with Q/DQ pairs added (``qdq.quantize``): their
    GEMMs compute in int8 or fp8, the rest in the file's float type."""
    source = artifact.manifest.source
    if precision == "fp16" or precision in REDUCED_PRECISIONS:
        for key, layout in (("packed_fp16_onnx", "packed"), ("fp16_onnx", "padded")):
            name = source.get(key)
            if name and (artifact.path / name).is_file() and (packing or layout == "padded"):
                return artifact.path / name, precision, layout
    return artifact.onnx_path, precision if precision in REDUCED_PRECISIONS else "fp32", "padded"


def plan_spec(artifact: ModelArtifact, options: BackendOptions, max_batch: int = MAX_BATCH) -> PlanSpec:
    """The plan ``artifact`` needs under ``options`` (``max_seq_len``, ``packing``, ``precision``)."""
    onnx_path, precision, layout = onnx_for(artifact, options.precision, options.packing)
    # The tokenizer pads to multiples of 8: a max_seq_len of 13 sends 16-token batches.
    seq = min(round_up(options.max_seq_len), artifact.manifest.max_seq_len)
    profiles = packed_profiles(seq) if layout == "packed" else default_profiles(seq, max_batch)
    return PlanSpec(onnx_path, precision, layout, tuple(profiles))


def check_gpu(precision: str, gpu_name: str, compute_capability: str) -> None:
    """Raise a ``ConfigError`` on ``precision`` naming the GPU, if it cannot compute in it."""
    need = MIN_COMPUTE_CAPABILITY.get(precision)
    if need is None:
        return
    have = tuple(int(p) for p in compute_capability.split("."))
    if have < need:
        raise ConfigError("precision", f"{precision} needs a GPU of compute capability {need[0]}.{need[1]} or newer; "
                                       f"this worker's {gpu_name} is {compute_capability}")


class QuantizedBuild(Protocol):
    """What builds (and checks) an int8 or fp8 plan: the offline build's ``build.quantize.QuantizeRequest``.
    The loader calls it on an engine-cache miss it is handed one for, and never imports the build."""

    def build_plan(self, artifact: ModelArtifact, spec: PlanSpec, plan_path: Path, *, max_seq_len: int,
                   fp16_plan: Path, timing_cache: Optional[Path] = None) -> object: ...
