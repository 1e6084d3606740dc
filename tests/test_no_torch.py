"""The inference path never imports torch: import and classify on CPU where torch cannot be imported."""
import subprocess
import sys

from conftest import EXAMPLES, python_without_torch_env

SCRIPT = r"""
import sys
import beam_tensorrt
from beam_tensorrt.classifier import TextClassifier
from beam_tensorrt.models import resolve_model
from beam_tensorrt.backends import resolve_auto
try:
    import torch
    raise SystemExit("torch was importable: the test's blocker is not active")
except ImportError:
    pass
assert resolve_auto() == "onnxruntime", resolve_auto()
clf = TextClassifier.open(resolve_model("sentiment-minilm"), "auto")
preds = clf.classify(["What a lovely day.", "This is dreadful."])
print([p.label for p in preds])
assert [p.label for p in preds] == ["POSITIVE", "NEGATIVE"]
assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")]
"""


def test_import_and_classify_without_torch():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=python_without_torch_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "['POSITIVE', 'NEGATIVE']" in proc.stdout


def test_cli_pipeline_without_torch(tmp_path):
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "classify", "--input",
                           str(EXAMPLES / "reviews.tsv"), "--output", str(out)],
                          env=python_without_torch_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 20
