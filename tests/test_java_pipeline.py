"""The Java SDK pipeline (java_examples/) run for real: Java SDK -> PortableRunner -> Prism job server ->
ClassifyText in the Python worker pool of a real `beam-tensorrt serve`. Builds Prism (go install) and the
Maven project on first run; both are cached (~/.cache/beam-tensorrt/prism-*, ~/.m2)."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_java_sentiment_pipeline_end_to_end(tmp_path):
    missing = [tool for tool in ("mvn", "java", "go") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    texts = tmp_path / "texts.txt"
    texts.write_text("A gorgeous, heartfelt film with a wonderful cast.\nA tedious, joyless and badly acted slog.\n"
                     "Funny, warm and beautifully made.\n", encoding="utf-8")
    out, errors = tmp_path / "out" / "labels.jsonl", tmp_path / "out" / "errors.jsonl"
    env = dict(os.environ, BEAM_TENSORRT_BIN=str(Path(sys.executable).parent))
    start = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "java_examples" / "run_local.sh"), str(texts), str(out), str(errors)],
                          env=env, capture_output=True, text=True, timeout=1500)
    print(f"Java pipeline (incl. any first-time Prism/Maven builds): {time.monotonic() - start:.0f} s")
    print(proc.stderr[-1500:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["text"][:12], r["label"]) for r in rows) == [
        ("A gorgeous, ", "POSITIVE"), ("A tedious, j", "NEGATIVE"), ("Funny, warm ", "POSITIVE")]
    assert all(set(r) == {"id", "text", "label", "score"} and 0.5 <= r["score"] <= 1 for r in rows)
    assert errors.exists() and errors.read_text() == ""
    # A healthy run is quiet: no SEVERE reports, stack traces or terminal colour codes.
    for noise in ("SEVERE", "Exception", "Traceback", "\x1b["):
        assert noise not in proc.stdout + proc.stderr, (noise, proc.stderr[-3000:])
