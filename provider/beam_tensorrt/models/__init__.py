"""Models: ``model`` is a named model (``NAMED_MODELS``) or an artifact directory (a path or a URL).

A named model implements ``named.NamedModel``; adding one is a module that makes it and a line in
the tuple below.
"""
from __future__ import annotations

from pathlib import Path

from ..artifact import ModelArtifact
from ..errors import ArtifactError, MissingEncoderError
from . import sentiment_minilm
from .bert import PooledBert, load_pooled_bert
from .named import PACKAGE_PREFIX, NamedModel, package_model_dir

NAMED_MODELS: dict[str, NamedModel] = {m.name: m for m in (
    sentiment_minilm.MODEL,
)}
DEFAULT_MODEL = sentiment_minilm.MODEL.name


def check_model(model: str) -> None:
    """Cheap construction-time check: the name is known and its parts are installed, or the path
    is a complete artifact. Raises ArtifactError / MissingEncoderError."""
    if model in NAMED_MODELS:
        NAMED_MODELS[model].check()
        return
    if "://" in model:
        _check_remote(model)  # its files are fetched and checked by the workers
        return
    if not Path(model).exists() and "/" not in model and "\\" not in model:
        raise ArtifactError(f"model {model!r} is not a named model ({', '.join(sorted(NAMED_MODELS))}) "
                            "nor an artifact directory")
    ModelArtifact.load(model, verify_checksum=True)  # a corrupt file fails here, not on every worker


def _check_remote(url: str) -> None:
    """A remote artifact's manifest is there, through a filesystem Beam has installed."""
    from apache_beam.io.filesystems import FileSystems

    from ..artifact import MANIFEST

    manifest = url.rstrip("/") + "/" + MANIFEST
    try:
        found = FileSystems.exists(manifest)
    except Exception as e:  # no filesystem for the scheme, no credentials...
        raise ArtifactError(f"model artifact {url!r} cannot be read: {str(e).splitlines()[0]}") from None
    if not found:
        raise ArtifactError(f"model artifact {url!r} has no {MANIFEST} (not an artifact, or it does not exist)")


def resolve_model(model: str) -> ModelArtifact:
    """Return a local, loadable artifact (building a named model's artifact on first use)."""
    if model in NAMED_MODELS:
        return NAMED_MODELS[model].artifact()
    if "://" in model:
        from ..remote import fetch_artifact

        return ModelArtifact.load(fetch_artifact(model), verify_checksum=True)
    return ModelArtifact.load(Path(model), verify_checksum=True)


def artifact_weights(artifact: ModelArtifact) -> PooledBert:
    """The numpy weights of a pooled-BERT artifact (``source.torch`` in its manifest), for backends
    that run the model themselves instead of its ONNX file."""
    spec = artifact.manifest.source.get("torch")
    if not spec:
        raise ArtifactError(
            f"artifact {str(artifact.path)!r} carries no PyTorch weights: the torch backend runs "
            "BERT encoders with a pooled head (sentiment-minilm, bench/random_bert.py); "
            "use backend onnxruntime or tensorrt for this artifact")
    encoder = spec["encoder"]
    if encoder.startswith(PACKAGE_PREFIX):  # installed, not copied into the artifact
        encoder_dir = package_model_dir(encoder[len(PACKAGE_PREFIX):])
    else:
        encoder_dir = artifact.path / encoder
    adapters = spec.get("adapters")
    return load_pooled_bert(encoder_dir, artifact.path / spec["head"], artifact.path / adapters if adapters else None)


__all__ = ["DEFAULT_MODEL", "NAMED_MODELS", "MissingEncoderError", "NamedModel", "artifact_weights", "check_model",
           "resolve_model"]
