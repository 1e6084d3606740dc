"""TensorRT backend, the loading half: find this GPU's plan in the engine cache (building it from
the artifact's ONNX on a miss, with the shared timing cache) and hand it to the runner,
``trt.runtime.TensorRTSession``. Imported only when this backend is chosen."""
from __future__ import annotations

import logging
import time

from ..artifact import ModelArtifact
from ..trt.runtime import TensorRTSession
from .base import BackendOptions

log = logging.getLogger(__name__)

# Most rows a plan accepts at short lengths (its profiles scale this down for long text).
MAX_BATCH = 256


def device_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def plan_for(artifact: ModelArtifact, options: BackendOptions = BackendOptions()):
    """The local path of a plan for this GPU, the artifact and ``options.max_seq_len``: from the
    engine cache, or built now. Also where the timing cache lives (returned second)."""
    from ..tokenization import round_up
    from ..tooling.engine import build_artifact_engine, onnx_for
    from ..trt.engine_cache import EngineCache
    from ..trt.loader import import_tensorrt, runtime_info
    from ..trt.profiles import default_profiles, packed_profiles

    info = runtime_info(import_tensorrt(), device_index(options.device))
    _, precision, layout = onnx_for(artifact, "fp16" if options.fp16 else "fp32", options.packing)
    # The tokenizer pads to multiples of 8: a max_seq_len of 13 sends 16-token batches.
    seq = min(round_up(options.max_seq_len), artifact.manifest.max_seq_len)
    profiles = packed_profiles(seq) if layout == "packed" else default_profiles(seq, MAX_BATCH)
    cache = EngineCache(options.engine_cache)
    key = cache.key(artifact.manifest.onnx_sha256, info, profiles, precision, layout)
    timing_key = cache.timing_key(info)

    def build(plan_path, timing_cache):
        return build_artifact_engine(artifact, plan_path, precision=precision, profiles=profiles,
                                     timing_cache=timing_cache, packing=layout == "packed")

    return cache.get_or_build(key, build, timing_key), cache.local_timing_cache(timing_key)


def load_tensorrt_session(artifact: ModelArtifact, options: BackendOptions = BackendOptions()) -> TensorRTSession:
    """A TensorRT session for ``artifact`` on ``options.device`` (``cuda:N`` selects the GPU)."""
    from ..trt.loader import cuda_check, cudart_module

    start = time.monotonic()
    if ":" in options.device:
        cuda_check(cudart_module().cudaSetDevice(device_index(options.device)))
    plan, _ = plan_for(artifact, options)
    session = TensorRTSession(plan, onnx_sha256=artifact.manifest.onnx_sha256, cuda_graphs=options.cuda_graphs)
    log.info("TensorRT plan %s for %s ready in %.1f s", plan.name, artifact.manifest.name, time.monotonic() - start)
    return session
