"""Model artifact directories: ``model.onnx`` + tokenizer files + ``manifest.json``."""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .files import matches_sha256, publish_directory, sha256_file, staging_dir
from .errors import ArtifactError

ARTIFACT_FORMAT = "beam-tensorrt-artifact/1"
MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class Manifest:
    name: str
    labels: list[str]
    max_seq_len: int  # the model's own limit (position embeddings)
    input_names: list[str]
    onnx_sha256: str
    source: dict[str, Any] = field(default_factory=dict)
    output_name: str = "logits"
    format: str = ARTIFACT_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


@dataclass
class ModelArtifact:
    path: Path
    manifest: Manifest

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILE

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_FILE

    @classmethod
    def load(cls, path: str | Path, verify_checksum: bool = False) -> "ModelArtifact":
        path = Path(path)
        if not path.is_dir():
            raise ArtifactError(f"model artifact {str(path)!r} is not a directory")
        manifest_path = path / MANIFEST
        for required in (manifest_path, path / ONNX_FILE, path / TOKENIZER_FILE):
            if not required.is_file():
                raise ArtifactError(f"model artifact {str(path)!r} lacks {required.name}")
        try:
            raw = json.loads(manifest_path.read_text())
            manifest = Manifest(**raw)
        except (ValueError, TypeError) as e:
            raise ArtifactError(f"corrupt manifest {str(manifest_path)!r}: {e}") from e
        if manifest.format != ARTIFACT_FORMAT:
            raise ArtifactError(f"{str(manifest_path)!r} has format {manifest.format!r}, expected {ARTIFACT_FORMAT!r}")
        if not manifest.labels:
            raise ArtifactError(f"{str(manifest_path)!r} lists no labels")
        artifact = cls(path, manifest)
        if verify_checksum and not matches_sha256(artifact.onnx_path, manifest.onnx_sha256):
            raise ArtifactError(
                f"{str(artifact.onnx_path)!r} does not match its manifest (sha256 {manifest.onnx_sha256[:12]}...): "
                "the file is corrupt or was replaced")
        return artifact


def write_artifact(out: Path, onnx_bytes_path: Path, tokenizer_json: Path, manifest: Manifest,
                   extra_files: dict[str, Path] | None = None) -> ModelArtifact:
    """Assemble an artifact in a staging directory beside ``out`` and publish it."""
    stage = staging_dir(out)
    shutil.copyfile(onnx_bytes_path, stage / ONNX_FILE)
    shutil.copyfile(tokenizer_json, stage / TOKENIZER_FILE)
    for name, src in (extra_files or {}).items():
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, stage / name)
    manifest.onnx_sha256 = sha256_file(stage / ONNX_FILE)
    (stage / MANIFEST).write_text(manifest.to_json())
    if out.exists():
        shutil.rmtree(out)
    publish_directory(stage, out, MANIFEST)
    return ModelArtifact.load(out)
