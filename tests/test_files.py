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


def test_the_commands_leave_nothing_in_the_temp_folder(tmp_path):
    """`serve` with a YAML pipeline expanded and run through it, and a `classify` job: Beam's
    folders (one per pipeline an expansion builds, the job server's staging) go with the command."""
    import json
    import subprocess
    import sys

    from conftest import EXAMPLES, ROOT
    from service_fixture import start_service

    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    env = dict(os.environ, TMPDIR=str(system_temp))
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(system_temp)  # for the service, started with this process's environment
    try:
        service = start_service(tmp_path)
    finally:
        os.environ["TMPDIR"] = old or ""
    try:
        variables = {"input": str(EXAMPLES / "texts.txt"), "output": str(tmp_path / "remote"),
                     "address": service.address}
        proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "yaml", "yaml_pipelines/classify_remote.yaml",
                               f"--jinja_variables={json.dumps(variables)}"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert list(tmp_path.glob("remote*")), "the pipeline wrote nothing"
    finally:
        assert service.stop() == 0
    proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "classify", "--input", str(EXAMPLES / "reviews.tsv"),
                           "--output", str(tmp_path / "o.jsonl")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in system_temp.iterdir()) == []
