"""Artifacts on a Beam filesystem are copied once into the local cache, whole or not at all."""
import shutil

import pytest

from beam_tensorrt.artifact import ModelArtifact
from beam_tensorrt.remote import fetch_artifact


def test_an_artifact_is_fetched_once_and_loads(default_artifact, tmp_path, monkeypatch):
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "store" / "v1"
    shutil.copytree(default_artifact.path, source)
    local = fetch_artifact(str(source))
    assert ModelArtifact.load(local, verify_checksum=True).manifest.labels == ["NEGATIVE", "POSITIVE"]
    shutil.rmtree(source)  # a second fetch is served from the cache
    assert fetch_artifact(str(source)) == local


def test_a_missing_artifact_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="is empty or does not exist"):
        fetch_artifact(str(tmp_path / "nowhere"))
