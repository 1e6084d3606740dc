"""Beam's RunInference, imported without its torch-importing model manager."""
import subprocess
import sys

INSTALLED_SCRIPT = r"""
import sys
import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from beam_tensorrt import ClassifyText
with beam.Pipeline("FnApiRunner") as p:
    labels = (p | beam.Create([beam.Row(text="What a lovely day.")]) | ClassifyText(backend="auto")
              | beam.Map(lambda r: r.label))
    assert_that(labels, equal_to(["POSITIVE"]))
imported = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "scipy", "transformers"})
assert not imported, f"imported {imported}"
"""


def test_torch_installed_yet_not_imported_by_a_pipeline():
    """Where torch is installed (this environment), a ClassifyText pipeline on the CPU still never
    imports it: not Beam's RunInference (whose model manager imports torch on import, see
    beam_inference.py), not the `auto` backend choice."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed here: test_import_and_classify_without_torch covers this")
    proc = subprocess.run([sys.executable, "-c", INSTALLED_SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
