"""The metadata file beside a plan, and what a runtime checks before trusting a plan."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from .profiles import Profile

METADATA_SUFFIX = ".json"


class EngineMismatch(RuntimeError):
    """A plan was built for another GPU, TensorRT version, model or profile set."""


@dataclass
class PlanMetadata:
    trt_module: str  # "tensorrt" or "tensorrt_rtx"
    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"
    onnx_sha256: str
    precision: str  # "fp16", "fp32", "int8" or "fp8"
    profiles: list[dict]
    strongly_typed: bool = True
    plan_sha256: str = ""
    input_names: list[str] = field(default_factory=list)
    build_seconds: float = 0.0
    timing_cache_bytes_before: int = 0  # size of the timing cache the build started from (0: none)
    layout: str = "padded"  # or "packed": several rows a sequence (tokenization.PackedBatch)
    # int8/fp8: what calibrated the plan and how it compared with fp16 (quantized.build_quantized_plan)
    calibration: Optional[dict] = None

    def profile_objects(self) -> list[Profile]:
        return [Profile(**p) for p in self.profiles]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "PlanMetadata":
        return cls(**json.loads(text))

    @classmethod
    def read(cls, plan_path: str | Path) -> "PlanMetadata":
        path = metadata_path(plan_path)
        try:
            return cls.from_json(Path(path).read_text())
        except FileNotFoundError:
            raise EngineMismatch(f"plan {str(plan_path)!r} has no metadata file {str(path)!r}") from None
        except (ValueError, TypeError) as e:
            raise EngineMismatch(f"metadata {str(path)!r} is corrupt: {e}") from None


def metadata_path(plan_path: str | Path) -> str:
    return str(plan_path) + METADATA_SUFFIX


@dataclass(frozen=True)
class RuntimeInfo:
    trt_module: str
    trt_version: str
    gpu_name: str
    compute_capability: str


def mismatches(meta: PlanMetadata, runtime: RuntimeInfo, onnx_sha256: Optional[str] = None,
               profiles: Optional[list[Profile]] = None) -> list[str]:
    """Human-readable reasons this plan cannot (or should not) run here; empty if it can."""
    problems = []
    if meta.trt_module != runtime.trt_module:
        problems.append(f"built with {meta.trt_module}, this worker has {runtime.trt_module}")
    if meta.trt_version != runtime.trt_version:
        problems.append(f"built with TensorRT {meta.trt_version}, this worker runs {runtime.trt_version} "
                        "(plans are tied to the exact version)")
    if meta.compute_capability != runtime.compute_capability:
        problems.append(f"built for compute capability {meta.compute_capability} ({meta.gpu_name}), this GPU is "
                        f"{runtime.compute_capability} ({runtime.gpu_name})")
    elif meta.gpu_name != runtime.gpu_name:
        problems.append(f"built on {meta.gpu_name}, this GPU is {runtime.gpu_name} (same compute capability: "
                        "it may run, but kernels were tuned for the other model)")
    if onnx_sha256 is not None and meta.onnx_sha256 != onnx_sha256:
        problems.append(f"built from ONNX {meta.onnx_sha256[:12]}..., the artifact's model is {onnx_sha256[:12]}...")
    if profiles is not None and [p.to_dict() for p in profiles] != meta.profiles:
        problems.append("built with other optimization profiles")
    return problems


def only_tuning_differs(problems: list[str]) -> bool:
    return all("same compute capability" in p for p in problems)


def _digest(parts: Sequence[str], length: int) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:length]


def cache_key(onnx_sha256: str, runtime: RuntimeInfo, profiles: list[Profile], precision: str,
              layout: str = "padded") -> str:
    """What makes a plan reusable: same model, GPU, TensorRT build, profiles, precision and layout."""
    parts = [onnx_sha256, runtime.trt_module, runtime.trt_version, runtime.compute_capability, runtime.gpu_name,
             precision, json.dumps([p.to_dict() for p in profiles], sort_keys=True)]
    if layout != "padded":  # padded plans keep the keys they had
        parts.append(layout)
    return _digest(parts, 24)


def timing_cache_key(runtime: RuntimeInfo) -> str:
    """What a builder's timing cache is valid for: one TensorRT build on one GPU model."""
    return _digest((runtime.trt_module, runtime.trt_version, runtime.compute_capability, runtime.gpu_name), 16)
