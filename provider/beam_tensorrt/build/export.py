"""Hugging Face sequence-classification checkpoint -> artifact directory. The only place torch is used.

Supported: BERT, DistilBERT, RoBERTa and MiniLM-style checkpoints (any model that
``AutoModelForSequenceClassification`` loads from local files). Nothing is
downloaded: the checkpoint directory must hold config, weights and tokenizer.
"""
from __future__ import annotations

import hashlib
import inspect
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ..artifact import Manifest, ModelArtifact, write_artifact
from ..errors import MissingPackageError, UsageError

VERIFY_TEXTS = ["a short one", "this sentence is a little longer than the first one, with punctuation!",
                "émoji 🙂 and ünïcödé", ""]


def _say(msg: str) -> None:
    print(f"beam-tensorrt export: {msg}", file=sys.stderr, flush=True)


def _checkpoint_sha256(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".json", ".txt", ".model"):
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _labels(config) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(config.num_labels)]


def _max_positions(config) -> int:
    n = int(getattr(config, "max_position_embeddings", 512))
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        n -= int(config.pad_token_id) + 1  # RoBERTa positions start after the padding index
    return min(n, 512)


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, opset: int = 17, verify: bool = True,
                      tolerance: float = 1e-4) -> ModelArtifact:
    try:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as e:
        raise MissingPackageError("export needs torch and transformers: pip install 'beam-tensorrt[export]'") from e

    checkpoint, out = Path(checkpoint), Path(out)
    if not (checkpoint / "config.json").is_file():
        raise UsageError(f"checkpoint {str(checkpoint)!r} has no config.json")
    t0 = time.monotonic()
    _say(f"loading {checkpoint}")
    config = AutoConfig.from_pretrained(checkpoint, local_files_only=True)
    # Eager attention traces to plain ops; SDPA's data-dependent fast paths would be frozen into the graph.
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, local_files_only=True, attn_implementation="eager").eval().float()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True, use_fast=True)
    # What the model's forward accepts (DistilBERT has no token_type_ids) and, for token types,
    # what its tokenizer produces (RoBERTa accepts them but its tokenizer never sets them).
    accepted = inspect.signature(model.forward).parameters
    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                   if n in accepted and (n != "token_type_ids" or n in tokenizer.model_input_names)]

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return self.inner(**dict(zip(input_names, tensors))).logits

    from ..tokenization import TextTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        tok_json = tmpdir / "tokenizer.json"
        tokenizer.backend_tokenizer.save(str(tok_json))
        # Reference logits come first: tracing leaves some transformers models in a state
        # whose eager outputs differ from a freshly loaded copy's.
        check = TextTokenizer(tok_json, max_seq_len=_max_positions(config))(VERIFY_TEXTS)
        with torch.no_grad():
            reference = model(**{n: torch.from_numpy(getattr(check, n)) for n in input_names}).logits.numpy()
        # Rows of different lengths, so the traced graph keeps the padding-mask path.
        sample = tokenizer(["a warm up text of several words", "short"], return_tensors="pt", padding=True)
        args = tuple(sample[n].to(torch.int64) for n in input_names)
        onnx_path = tmpdir / "model.onnx"
        _say(f"exporting {config.model_type} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters) "
             f"to ONNX opset {opset}")
        # The tracing exporter warns about every data-dependent branch it freezes, and about being
        # the legacy exporter; what counts is checked below: the graph's logits against PyTorch's.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LogitsOnly(model), args, str(onnx_path), input_names=input_names, output_names=["logits"],
                dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in input_names}, "logits": {0: "batch"}},
                opset_version=opset, do_constant_folding=True, dynamo=False)
        manifest = Manifest(name=checkpoint.name, labels=_labels(config), max_seq_len=_max_positions(config),
                            input_names=input_names, onnx_sha256="",
                            source={"checkpoint": checkpoint.name, "model_type": config.model_type,
                                    "sha256": _checkpoint_sha256(checkpoint)})
        artifact = write_artifact(out, onnx_path, tok_json, manifest)
    if verify:
        from ..backends.onnxruntime import OnnxRuntimeSession

        ours = OnnxRuntimeSession(artifact).run(check.feeds(input_names))
        diff = float(np.abs(ours - reference).max())
        _say(f"ONNX Runtime vs PyTorch logits: max abs diff {diff:.2e}")
        if diff > tolerance:
            raise RuntimeError(f"exported model disagrees with PyTorch (max abs diff {diff:.2e} > {tolerance})")
    _say(f"done in {time.monotonic() - t0:.1f} s")
    return artifact
