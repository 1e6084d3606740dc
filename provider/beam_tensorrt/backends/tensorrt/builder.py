"""ONNX -> TensorRT plan: strongly typed network, explicit optimization profiles, timing cache.

Run by the loader on an engine-cache miss and by ``beam-tensorrt build``; both build what
``spec.plan_spec`` says."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ...artifact import ModelArtifact
from ...files import atomic_write, sha256_file
from .metadata import PlanMetadata, metadata_path
from .platform import import_tensorrt, runtime_info
from .profiles import Profile
from .spec import PlanSpec

if TYPE_CHECKING:  # checked against tensorrt-stubs; at run time the module is found lazily
    import tensorrt


def _say(msg: str) -> None:
    print(f"beam-tensorrt build: {msg}", file=sys.stderr, flush=True)


def _progress_monitor(trt: ModuleType, say: Callable[[str], None]):
    """A TensorRT IProgressMonitor that reports phases (TensorRT >= 10 has the interface)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class Monitor(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self._started: dict[str, float] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self._started[phase_name] = time.monotonic()
            if parent_phase is None:
                say(f"{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            started = self._started.pop(phase_name, None)
            if started is not None and time.monotonic() - started > 5:
                say(f"{phase_name} done in {time.monotonic() - started:.0f} s")

    return Monitor()


def build_engine(onnx_path: Path, plan_path: Path, profiles: Sequence[Profile], *, precision: str,
                 timing_cache: Optional[Path] = None, workspace_bytes: int = 4 << 30,
                 trt_module: Optional[str] = None, say: Callable[[str], None] = _say) -> PlanMetadata:
    """Build a strongly typed plan from ``onnx_path``, one optimization profile per ``profiles``."""
    trt = import_tensorrt(trt_module)
    info = runtime_info(trt)
    say(f"{onnx_path.name} -> {plan_path} with {info.trt_module} {info.trt_version} on {info.gpu_name} "
        f"(compute capability {info.compute_capability}), {len(profiles)} profile(s), {precision}")
    start = time.monotonic()
    logger = trt.Logger(trt.Logger.WARNING)
    builder: tensorrt.Builder = trt.Builder(logger)
    network: tensorrt.INetworkDefinition = builder.create_network(
        1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser: tensorrt.OnnxParser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")
    config: tensorrt.IBuilderConfig = builder.create_builder_config()
    input_names = [network.get_input(i).name for i in range(network.num_inputs)]
    shapes = [{name: p.shapes() for name in input_names} for p in profiles]
    meta = PlanMetadata(
        trt_module=info.trt_module, trt_version=info.trt_version, gpu_name=info.gpu_name,
        compute_capability=info.compute_capability, onnx_sha256=sha256_file(onnx_path), precision=precision,
        profiles=[p.to_dict() for p in profiles], strongly_typed=True, input_names=input_names)
    return serialize(trt, builder, network, config, shapes, plan_path, meta, start=start, timing_cache=timing_cache,
                     workspace_bytes=workspace_bytes, say=say, what=str(onnx_path))


def serialize(trt: ModuleType, builder: Any, network: Any, config: Any, shapes: Sequence[dict[str, tuple]],
              plan_path: Path, meta: PlanMetadata, *, start: float, timing_cache: Optional[Path],
              workspace_bytes: int, say: Callable[[str], None], what: str) -> PlanMetadata:
    """Build ``network`` under ``config`` into ``plan_path`` and write ``meta`` beside it.

    Args:
        shapes: one optimization profile each: input name -> (min, opt, max) shapes.
        meta: the plan's metadata; the build fills in its digest, time and timing cache size.
        start: when the build began (``time.monotonic()``), for its duration.
        what: the network's source, for messages.
    """
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    for profile_shapes in shapes:
        profile: tensorrt.IOptimizationProfile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile_shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    if cache_bytes:
        say(f"starting from the timing cache {timing_cache} ({len(cache_bytes) / 1e3:.0f} kB)")
    try:
        cache: tensorrt.ITimingCache = config.create_timing_cache(cache_bytes)
        config.set_timing_cache(cache, ignore_mismatch=False)
        use_timing_cache = True
    except (AttributeError, TypeError, RuntimeError) as e:  # TensorRT-RTX tunes at run time instead
        say(f"no timing cache with this TensorRT ({e})")
        use_timing_cache = False
    try:
        monitor = _progress_monitor(trt, say)
        if monitor is not None:
            config.progress_monitor = monitor
    except (AttributeError, TypeError) as e:
        say(f"no progress monitor with this TensorRT ({e})")
    serialized: Optional[tensorrt.IHostMemory] = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build a plan from {what} (see the log above)")
    atomic_write(plan_path, bytes(serialized))
    if timing_cache is not None and use_timing_cache:
        atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))
    meta.plan_sha256 = sha256_file(plan_path)
    meta.build_seconds = round(time.monotonic() - start, 1)
    meta.timing_cache_bytes_before = len(cache_bytes)
    atomic_write(Path(metadata_path(plan_path)), meta.to_json().encode())
    say(f"wrote {plan_path} ({plan_path.stat().st_size / 1e6:.1f} MB) in {meta.build_seconds:.0f} s")
    return meta


def build_plan(artifact: ModelArtifact, spec: PlanSpec, plan_path: Path, *, timing_cache: Optional[Path] = None,
               trt_module: Optional[str] = None) -> PlanMetadata:
    """Build the plan ``spec`` describes for ``artifact`` (``spec.plan_spec``) into ``plan_path``."""
    meta = build_engine(spec.onnx_path, plan_path, spec.profiles, precision=spec.precision, timing_cache=timing_cache,
                        trt_module=trt_module)
    meta.layout = spec.layout
    # The artifact's fp32 ONNX identifies the model, whichever file was built from.
    meta.onnx_sha256 = artifact.manifest.onnx_sha256
    atomic_write(Path(metadata_path(plan_path)), meta.to_json().encode())
    return meta
