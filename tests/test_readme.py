"""README.md is the user's manual, with its longer parts in docs/: every code block in them either
runs here, as written, or says where it runs; the configuration reference is the generated one."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from beam_tensorrt.reference import BEGIN, END, config_reference_markdown
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
# The manual's pages: README and what it sends readers to in docs/ (records of runs excluded).
MANUAL = [ROOT / "README.md", *(ROOT / "docs" / name for name in (
    "flink-and-kafka.md", "gpu.md", "worker-pool.md", "model-refresh.md", "configuration.md", "architecture.md"))]
BLOCK = re.compile(r"(?:<!-- (test|not run by the tests): ?(.*?) -->\n)?```(\w*)\n(.*?)```", re.S)
RUNNABLE = {"bash", "python", "yaml"}
OUT = ROOT / "out"


def blocks() -> list[tuple[str, str, str, str]]:
    """(marker kind, marker text, language, code) of every fenced block."""
    return [(m.group(1) or "", m.group(2) or "", m.group(3), m.group(4))
            for page in MANUAL for m in BLOCK.finditer(page.read_text(encoding="utf-8"))]


def block(name: str) -> str:
    found = [code for kind, text, _, code in blocks() if kind == "test" and text == name]
    assert len(found) == 1, f"README has {len(found)} blocks marked 'test: {name}'"
    return found[0]


def run_bash(code: str, timeout=600, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def read_lines(pattern: str) -> list[dict]:
    return [json.loads(line) for path in sorted(OUT.glob(pattern)) for line in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def needs_the_venv():
    # The README's commands use the project's virtual environment, as a user of `make` has it.
    if not (ROOT / ".venv" / "bin" / "beam-tensorrt").exists():
        pytest.skip("README commands use .venv (made by `make demo` / `make test`)")


def test_every_code_block_is_run_or_says_where_it_runs():
    tests = {name[len("test_"):] for name in globals() if name.startswith("test_")}
    for kind, text, language, code in blocks():
        if language not in RUNNABLE:
            continue
        assert kind, f"a {language} block has no marker (<!-- test: NAME --> or <!-- not run by the tests: WHY -->):\n{code}"
        if kind == "test":
            assert text in tests, f"no test named test_{text} runs the block marked 'test: {text}'"
        else:
            assert text.strip(), f"'not run by the tests' needs a reason:\n{code}"


def test_readme_config_reference_is_current():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = page[page.index(BEGIN):page.index(END) + len(END)]
    assert section == config_reference_markdown(), "run `beam-tensorrt config-reference` into docs/configuration.md"


def test_readme_is_a_manual_of_at_most_400_lines_whose_links_exist():
    assert len(README.splitlines()) <= 400
    for path in re.findall(r"`((?:docs|tests|bench|scripts|examples|yaml_pipelines|java_examples)/[\w./-]+)`", README):
        assert (ROOT / path.rstrip("/")).exists() or "*" in path, f"README names {path}, which does not exist"


def test_readme_quickstart_is_the_ci_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make demo" in block("make_demo")


def test_make_demo():
    proc = run_bash(block("make_demo"))
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 20 and all(r["label"] == r["expected"] for r in rows)


def test_cli_classify():
    proc = run_bash(block("cli_classify"))
    rows = read_lines("labelled.jsonl")
    assert len(rows) == 20 and all(r["label"] == r["expected"] for r in rows)
    assert (OUT / "rejected.jsonl").read_text() == ""  # no row was rejected: the errors file is empty
    assert proc.stderr.strip().splitlines()[-1].startswith("beam-tensorrt: classified 20 rows")


def test_python_pipeline():
    proc = subprocess.run([sys.executable, "-c", block("python_pipeline")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^1 A lovely, moving film. POSITIVE 0\.9\d$", proc.stdout, re.M), proc.stdout
    assert "\n2 field 'text' is empty (set allow_empty_text to classify such texts)" in proc.stdout
    # Nothing from us; Beam's import may log its own known warnings (a library leaves them be).
    from beam_tensorrt.logs import BEAM_NOISE

    assert all(any(noise in line for noise in BEAM_NOISE) for line in proc.stderr.splitlines()), proc.stderr


def test_arrow_batches():
    proc = subprocess.run([sys.executable, "-c", block("arrow_batches")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"\[\{'id': 1, 'text': 'A lovely, moving film.', 'label': 'POSITIVE', 'score': 0\.9", proc.stdout), \
        proc.stdout
    assert "Row(element={'id': 2, 'text': None}, msg=\"field 'text' is null\"" in proc.stdout


def test_yaml_in_process(tmp_path):
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(block("yaml_in_process"))
    for old in OUT.glob("labelled-*"):
        old.unlink()
    run_bash(f".venv/bin/beam-tensorrt yaml {pipeline}")
    rows = read_lines("labelled-*")
    assert sorted((r["title"], r["label"]) for r in rows) == [
        ("Night Train", "POSITIVE"), ("Summer Song", "POSITIVE"), ("The Long Wait", "NEGATIVE")]


def test_yaml_with_errors():
    run_bash(block("yaml_with_errors"))
    assert sorted((r["id"], r["label"]) for r in read_lines("reviews-*")) == [(1, "POSITIVE"), (2, "NEGATIVE"),
                                                                             (4, "POSITIVE")]
    assert read_lines("review_errors-*") == [{"id": 3, "reason": "field 'body' is null"}]


def test_yaml_remote():
    run_bash(block("yaml_remote"))
    assert sorted(r["label"] for r in read_lines("remote-*")) == ["NEGATIVE", "NEGATIVE", "POSITIVE", "POSITIVE"]


def test_yaml_remote_gives_up_saying_why_when_the_service_cannot_start():
    import socket

    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", 8097))
        except OSError:
            pytest.skip("port 8097 is in use here already")
        taken.listen()
        # An earlier run's log says "listening": the block must not take it for this service's.
        OUT.mkdir(exist_ok=True)
        (OUT / "serve.log").write_text("beam-tensorrt expansion service listening on 127.0.0.1:8097\n")
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block("yaml_remote")], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    assert proc.returncode != 0 and "cannot listen on 127.0.0.1:8097: the port is in use" in proc.stderr


@pytest.mark.slow
def test_java_local():
    """The Java SDK pipeline for real: Java SDK -> PortableRunner -> Prism -> ClassifyText in the Python
    worker pool of a real `beam-tensorrt serve`. Builds Prism (go install) and the Maven project on
    first run; both are cached (~/.cache/beam-tensorrt/prism-*, ~/.m2)."""
    missing = [tool for tool in ("mvn", "java", "go") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    for old in ("labels.jsonl", "errors.jsonl"):
        (OUT / old).unlink(missing_ok=True)
    proc = run_bash(block("java_local"), timeout=1500, env=dict(os.environ))
    rows = read_lines("labels.jsonl")
    texts = [t for t in (ROOT / "examples" / "texts.txt").read_text().splitlines() if t]
    assert sorted(r["text"] for r in rows) == sorted(texts)
    assert sorted(r["label"] for r in rows) == ["NEGATIVE", "NEGATIVE", "POSITIVE", "POSITIVE"]
    assert all(set(r) == {"id", "text", "label", "score"} and 0.5 <= r["score"] <= 1 for r in rows)
    assert (OUT / "errors.jsonl").read_text() == ""
    # A healthy run is quiet: no SEVERE reports, stack traces or terminal colour codes.
    for noise in ("SEVERE", "Exception", "Traceback", "\x1b["):
        assert noise not in proc.stdout + proc.stderr, (noise, proc.stderr[-3000:])


@pytest.mark.slow
def test_the_java_examples_model_option_reaches_the_service(tmp_path):
    """--model goes to ClassifyText's config in the service: a model that does not exist fails the
    expansion, and the Java run, naming it."""
    missing = [tool for tool in ("mvn", "java", "go") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    env = dict(os.environ, JAVA_PIPELINE_ARGS="--model=no-such-model-here")
    proc = subprocess.run(["bash", str(ROOT / "java_examples" / "run_local.sh"), str(ROOT / "examples" / "texts.txt"),
                           str(tmp_path / "labels.jsonl")], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode != 0
    assert "no-such-model-here" in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "labels.jsonl").exists()
