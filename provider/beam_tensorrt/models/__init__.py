"""Named models and artifact resolution: ``model`` is a known name or an artifact directory."""
from __future__ import annotations

from pathlib import Path

from ..artifact import ModelArtifact
from . import sentiment_minilm
from .bert import PooledBert, load_pooled_bert

DEFAULT_MODEL = sentiment_minilm.NAME
NAMED_MODELS = {sentiment_minilm.NAME: sentiment_minilm}


def check_model(model: str) -> None:
    """Cheap construction-time check: the name is known and its parts are installed,
    or the path is a complete artifact. Raises ArtifactError / MissingEncoderError."""
    if model in NAMED_MODELS:
        NAMED_MODELS[model].encoder_dir()
        return
    if "://" in model:
        return  # remote (gs://, s3://...) artifacts are checked when workers fetch them
    ModelArtifact.load(model, verify_checksum=True)  # a corrupt file fails here, not on every worker


def resolve_model(model: str) -> ModelArtifact:
    """Return a local, loadable artifact (building a named model's artifact on first use)."""
    if model in NAMED_MODELS:
        return NAMED_MODELS[model].ensure_artifact()
    if "://" in model:
        from ..remote import fetch_artifact

        return ModelArtifact.load(fetch_artifact(model), verify_checksum=True)
    return ModelArtifact.load(Path(model), verify_checksum=True)


def artifact_weights(artifact: ModelArtifact) -> PooledBert:
    """The numpy weights of a pooled-BERT artifact (``source.torch`` in its manifest), for backends
    that run the model themselves instead of its ONNX file."""
    spec = artifact.manifest.source.get("torch")
    if not spec:
        raise ValueError(
            f"artifact {str(artifact.path)!r} carries no PyTorch weights: the torch backend runs "
            "BERT encoders with a pooled head (sentiment-minilm, bench/random_bert.py); "
            "use backend onnxruntime or tensorrt for this artifact")
    encoder = spec["encoder"]
    if encoder == f"package:{sentiment_minilm.ENCODER_PACKAGE}":  # installed, not copied into the artifact
        encoder_dir = sentiment_minilm.encoder_dir()
    else:
        encoder_dir = artifact.path / encoder
    adapters = spec.get("adapters")
    return load_pooled_bert(encoder_dir, artifact.path / spec["head"], artifact.path / adapters if adapters else None)
