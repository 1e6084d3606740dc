"""Artifacts for BERT encoders with a mean-pooled head, assembled from numpy weights without torch.

Used by the default model and by benchmark models. Besides ``model.onnx`` (fp32) such an artifact
carries ``model.fp16.onnx`` (what TensorRT's strongly typed fp16 build consumes), ``model.packed.fp16.onnx``
(the same model taking several rows a sequence, for TensorRT's packed plans) and, for the
PyTorch backend, where its weights are (``source.torch``: the encoder directory, the head and any
fine-tuning adapters), read by ``models.bert.load_pooled_bert`` like the ONNX builder's.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

from ..artifact import Manifest, ModelArtifact, write_artifact
from .bert import PooledBert

FP16_ONNX = "model.fp16.onnx"
PACKED_FP16_ONNX = "model.packed.fp16.onnx"


def build_pooled_bert_artifact(out: Path, *, name: str, labels: Sequence[str], model: PooledBert,
                               tokenizer_json: Path, torch_weights: dict, source: dict,
                               extra_files: dict[str, Path] | None = None) -> ModelArtifact:
    """Write an artifact directory for ``model``.

    Args:
        out: the artifact directory (replaced atomically).
        name, labels: recorded in the manifest.
        model: encoder weights (adapters already merged) and head.
        tokenizer_json: the tokenizer's ``tokenizer.json``.
        torch_weights: where the PyTorch backend finds the same weights: ``{"encoder": DIR or
            "package:NAME", "head": FILE, "adapters": FILE (optional)}``, paths relative to ``out``.
        source: provenance kept in the manifest.
        extra_files: more files to copy in, by their path inside the artifact.
    """
    import onnx

    from .onnx_bert import build_bert_classifier

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for path, float16, packed in ((tmpdir / "model.onnx", False, False), (tmpdir / FP16_ONNX, True, False),
                                      (tmpdir / PACKED_FP16_ONNX, True, True)):
            onnx.save_model(build_bert_classifier(model, producer=f"beam-tensorrt/{name}", float16=float16,
                                                  packed=packed), str(path))
        manifest = Manifest(
            name=name, labels=list(labels), max_seq_len=int(model.config["max_position_embeddings"]),
            input_names=["input_ids", "attention_mask", "token_type_ids"], onnx_sha256="",
            source={**source, "torch": torch_weights, "fp16_onnx": FP16_ONNX, "packed_fp16_onnx": PACKED_FP16_ONNX})
        files = {FP16_ONNX: tmpdir / FP16_ONNX, PACKED_FP16_ONNX: tmpdir / PACKED_FP16_ONNX, **(extra_files or {})}
        return write_artifact(out, tmpdir / "model.onnx", tokenizer_json, manifest, extra_files=files)
