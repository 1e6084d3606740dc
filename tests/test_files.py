"""Local files: atomic publication, and a verified file hashed once per version."""
import os

from beam_tensorrt import files


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "deep" / "plan.json"
    files.atomic_write(target, b"one")
    files.atomic_write(target, b"two")
    assert target.read_bytes() == b"two" and os.listdir(target.parent) == ["plan.json"]


def test_a_verified_file_is_hashed_again_only_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "model.onnx"
    path.write_bytes(b"weights")
    digest = files.sha256_file(path)
    hashed: list = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p, *a: hashed.append(p) or real(p, *a))
    assert files.matches_sha256(path, digest) and files.matches_sha256(path, digest)
    assert len(hashed) == 1  # the second check read the stamp, not the file
    path.write_bytes(b"other weights")
    assert not files.matches_sha256(path, digest) and len(hashed) == 2
