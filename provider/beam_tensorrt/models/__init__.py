"""Named models and artifact resolution: ``model`` is a known name or an artifact directory."""
from __future__ import annotations

from pathlib import Path

from ..artifact import ArtifactError, ModelArtifact
from . import sentiment_minilm

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


def model_labels(model: str) -> list[str] | None:
    if model in NAMED_MODELS:
        return list(NAMED_MODELS[model].LABELS)
    try:
        return ModelArtifact.load(model).manifest.labels
    except (ArtifactError, OSError):
        return None


def resolve_model(model: str) -> ModelArtifact:
    """Return a local, loadable artifact (building a named model's artifact on first use)."""
    if model in NAMED_MODELS:
        return NAMED_MODELS[model].ensure_artifact()
    if "://" in model:
        from ..remote import fetch_artifact

        return ModelArtifact.load(fetch_artifact(model), verify_checksum=True)
    return ModelArtifact.load(Path(model), verify_checksum=True)
