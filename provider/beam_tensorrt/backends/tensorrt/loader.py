"""TensorRT backend, the loading half: find this GPU's plan for an artifact in the engine cache
(building it on a miss, with the shared timing cache) and hand it to the runner,
``runner.TensorRTSession``. Imported only when this backend is chosen."""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Optional

from ...artifact import ModelArtifact
from ...errors import PlanNotBuilt
from ..base import REDUCED_PRECISIONS, BackendOptions
from .runner import TensorRTSession
from .spec import SCHEME, QuantizedBuild, check_gpu

log = logging.getLogger(__name__)


def device_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def plan_for(artifact: ModelArtifact, options: BackendOptions = BackendOptions(),
             quantize: Optional[QuantizedBuild] = None) -> tuple[Path, Path]:
    """The local path of a plan for this GPU, ``artifact`` and ``options``: from the engine cache,
    or built now. Also where the timing cache lives (returned second).

    An int8 or fp8 plan is built only when ``quantize`` (the offline build's ``QuantizeRequest``,
    from ``beam-tensorrt build``) builds and checks it; otherwise a miss raises ``PlanNotBuilt``,
    saying how. The loader never imports the build: it is handed one."""
    from . import builder
    from .engine_cache import EngineCache
    from .platform import import_tensorrt, runtime_info
    from .spec import plan_spec

    info = runtime_info(import_tensorrt(), device_index(options.device))
    spec = plan_spec(artifact, options)
    cache = EngineCache(options.engine_cache)
    # A reduced-precision plan is also what its quantization scheme made of the graph.
    precision = f"{spec.precision}+{SCHEME}" if spec.precision in REDUCED_PRECISIONS else spec.precision
    key = cache.key(artifact.manifest.onnx_sha256, info, spec.profiles, precision, spec.layout)
    timing_key = cache.timing_key(info)

    if spec.precision in REDUCED_PRECISIONS:
        check_gpu(spec.precision, info.gpu_name, info.compute_capability)

    def build(plan_path: Path, timing_cache: Path):
        if spec.precision not in REDUCED_PRECISIONS:
            return builder.build_plan(artifact, spec, plan_path, timing_cache=timing_cache)
        if quantize is None:
            raise PlanNotBuilt(
                f"no {spec.precision} plan of {artifact.manifest.name} for {info.gpu_name} and {info.trt_module} "
                f"{info.trt_version} in the engine cache ({options.engine_cache or cache.local}). Build it, "
                f"calibrated and checked against fp16, with: beam-tensorrt build --precision {spec.precision} "
                "--calibration-texts FILE (and this pipeline's --model, --max-seq-len, --packing, --engine-cache)")
        fp16_plan, _ = plan_for(artifact, dataclasses.replace(options, precision="fp16"))
        return quantize.build_plan(artifact, spec, plan_path, max_seq_len=options.max_seq_len, fp16_plan=fp16_plan,
                                   timing_cache=timing_cache)

    return cache.get_or_build(key, build, timing_key), cache.local_timing_cache(timing_key)


def load_session(artifact: ModelArtifact, options: BackendOptions = BackendOptions()) -> TensorRTSession:
    """A TensorRT session for ``artifact`` on ``options.device`` (``cuda:N`` selects the GPU)."""
    from .platform import cuda_check, cudart_module

    start = time.monotonic()
    if ":" in options.device:
        cuda_check(cudart_module().cudaSetDevice(device_index(options.device)))
    plan, _ = plan_for(artifact, options)
    session = TensorRTSession(plan, onnx_sha256=artifact.manifest.onnx_sha256, cuda_graphs=options.cuda_graphs)
    log.info("TensorRT plan %s for %s ready in %.1f s", plan.name, artifact.manifest.name, time.monotonic() - start)
    return session
