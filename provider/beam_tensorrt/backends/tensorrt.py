"""TensorRT backend: a plan for this GPU from the engine cache (built from the artifact's ONNX on a
miss), run by ``trt.runtime.TensorRTSession``. Imported only when this backend is chosen."""
from __future__ import annotations

import logging

from ..artifact import ModelArtifact
from ..trt.runtime import TensorRTSession as _PlanSession
from .base import BackendOptions

log = logging.getLogger(__name__)


def TensorRTSession(artifact: ModelArtifact, options: BackendOptions = BackendOptions(),
                    max_seq_len: int = 128, max_batch: int = 256) -> _PlanSession:
    from ..trt.build import build_artifact_engine, onnx_for
    from ..trt.cache import EngineCache
    from ..trt.loader import import_tensorrt, runtime_info
    from ..trt.profiles import default_profiles

    trt = import_tensorrt()
    info = runtime_info(trt, int(options.device.split(":")[1]) if ":" in options.device else 0)
    profiles = default_profiles(min(max_seq_len, artifact.manifest.max_seq_len), max_batch)
    _, precision = onnx_for(artifact, "fp16" if options.fp16 else "fp32")
    cache = EngineCache(options.engine_cache)
    key = cache.key(artifact.manifest.onnx_sha256, info, profiles, precision)
    plan = cache.get_or_build(key, lambda path: build_artifact_engine(
        artifact, path, precision=precision, profiles=profiles))
    log.info("TensorRT plan %s for %s", plan, artifact.manifest.name)
    return _PlanSession(plan, onnx_sha256=artifact.manifest.onnx_sha256, cuda_graphs=options.cuda_graphs)
