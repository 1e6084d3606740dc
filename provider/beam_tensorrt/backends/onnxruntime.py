"""ONNX Runtime backend: CPU everywhere, the CUDA provider when onnxruntime-gpu and a GPU are present."""
from __future__ import annotations

import logging
from typing import Iterable

import numpy as np

from ..artifact import ModelArtifact
from .base import BackendOptions, Feeds, InferenceSession
from ..errors import UserError

log = logging.getLogger(__name__)

# Padded tokens and rows per call: on CPU small length-sorted groups win (bench/NOTES.md, item 3);
# a GPU wants big ones to fill its cores.
CPU_TOKEN_BUDGET, GPU_TOKEN_BUDGET = 512, 16384
MAX_GROUP_ROWS = 256


class OnnxRuntimeSession(InferenceSession):
    """An ``onnxruntime.InferenceSession`` over the artifact's fp32 ONNX file. ONNX Runtime's
    ``run`` may be called from several threads at once, so nothing here serialises calls."""

    name = "onnxruntime"
    packed = False  # the artifact's model.onnx: padded rows (pooled-BERT artifacts pack on GPUs only)

    def __init__(self, artifact: ModelArtifact, options: BackendOptions = BackendOptions()):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if options.intra_op_threads:
            so.intra_op_num_threads = options.intra_op_threads
        so.log_severity_level = 3  # shape-merge warnings from fused graphs are noise to users
        available = ort.get_available_providers()
        want_cuda = options.device.startswith("cuda") or options.device == "auto"
        providers: list = ["CPUExecutionProvider"]
        if want_cuda and "CUDAExecutionProvider" in available:
            device_id = int(options.device.split(":")[1]) if ":" in options.device else 0
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device_id}))
        elif options.device.startswith("cuda"):
            raise UserError("device 'cuda' requested but this onnxruntime has no CUDAExecutionProvider "
                               "(install onnxruntime-gpu)")
        self._session = ort.InferenceSession(str(artifact.onnx_path), sess_options=so, providers=providers)
        declared = {i.name for i in self._session.get_inputs()}
        self.input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in declared]
        self._output = artifact.manifest.output_name
        self.providers = self._session.get_providers()
        on_gpu = self.providers[0] == "CUDAExecutionProvider"
        self.token_budget = GPU_TOKEN_BUDGET if on_gpu else CPU_TOKEN_BUDGET
        self.max_group_rows = MAX_GROUP_ROWS
        log.info("onnxruntime session on %s for %s", self.providers[0], artifact.path)

    def run_many(self, groups: Iterable[Feeds]) -> list[np.ndarray]:
        return [self._session.run([self._output], {n: feeds[n] for n in self.input_names})[0] for feeds in groups]

    def close(self) -> None:
        self._session = None
