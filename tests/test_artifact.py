"""Artifact directories: a missing, incomplete or corrupt artifact fails when the pipeline is built,
naming the path."""
import pytest

from beam_tensorrt import ClassifyText


def test_artifact_problems_fail_at_construction_naming_the_path(tmp_path, default_artifact):
    import shutil

    from beam_tensorrt.errors import ConfigError

    broken = tmp_path / "broken"
    shutil.copytree(default_artifact.path, broken)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(ConfigError, match=f"'model'.*corrupt manifest.*{broken}"):
        ClassifyText(model=str(broken))
    (broken / "manifest.json").write_text((default_artifact.path / "manifest.json").read_text())
    with open(broken / "model.onnx", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ConfigError, match=f"'model'.*{broken}.*does not match its manifest"):
        ClassifyText(model=str(broken))
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match="lacks tokenizer.json"):
        ClassifyText(model=str(broken))
