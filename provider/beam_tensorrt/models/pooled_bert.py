"""Artifacts for BERT encoders with a mean-pooled head, built from numpy weights without torch.

Used by the default model and by benchmark models. Besides ``model.onnx`` (fp32) such an
artifact carries ``model.fp16.onnx`` (what TensorRT's strongly typed fp16 build consumes) and,
for the PyTorch backend, a pointer to the encoder weights plus ``head.safetensors``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..artifact import Manifest, ModelArtifact, write_artifact

FP16_ONNX = "model.fp16.onnx"
HEAD_FILE = "head.safetensors"


def build_pooled_bert_artifact(out: Path, *, name: str, labels: Sequence[str], config: Mapping,
                               weights: Mapping[str, np.ndarray], head: Sequence[tuple[np.ndarray, np.ndarray]],
                               tokenizer_json: Path, encoder_ref: str, source: dict,
                               extra_files: dict[str, Path] | None = None) -> ModelArtifact:
    import onnx
    from safetensors.numpy import save_file

    from ..onnx_bert import BertShape, build_bert_classifier

    shape = BertShape.from_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        onnx.save_model(build_bert_classifier(weights, shape, head, producer=f"beam-tensorrt/{name}"),
                        str(tmpdir / "model.onnx"))
        onnx.save_model(build_bert_classifier(weights, shape, head, producer=f"beam-tensorrt/{name}",
                                              float16=True), str(tmpdir / FP16_ONNX))
        save_file({f"head.{j}.{k}": np.ascontiguousarray(v, np.float32)
                   for j, (w, b) in enumerate(head) for k, v in (("weight", w), ("bias", b))},
                  str(tmpdir / HEAD_FILE))
        manifest = Manifest(
            name=name, labels=list(labels), max_seq_len=int(config["max_position_embeddings"]),
            input_names=["input_ids", "attention_mask", "token_type_ids"], onnx_sha256="",
            source={**source, "torch": {"encoder": encoder_ref, "head": HEAD_FILE}, "fp16_onnx": FP16_ONNX})
        files = {FP16_ONNX: tmpdir / FP16_ONNX, HEAD_FILE: tmpdir / HEAD_FILE, **(extra_files or {})}
        return write_artifact(out, tmpdir / "model.onnx", tokenizer_json, manifest, extra_files=files)
