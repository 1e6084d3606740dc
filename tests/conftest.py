from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from beam_tensorrt.backends.base import InferenceSession

ROOT = Path(__file__).resolve().parents[1]
# SST-2 (train and dev, MIT; tests/data/sst2/LICENSE) ships with the tests, so that a fresh clone runs the
# accuracy tests too; SST2_DIR names another copy (uncompressed .tsv files).
SST2_VENDORED = ROOT / "tests" / "data" / "sst2"
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def sst2_dir(tmp_path_factory) -> Path:
    if os.environ.get("SST2_DIR"):
        return Path(os.environ["SST2_DIR"])
    import gzip
    import shutil

    folder = tmp_path_factory.mktemp("sst2")
    for name in ("train.tsv", "dev.tsv"):
        with gzip.open(SST2_VENDORED / f"{name}.gz", "rb") as src, open(folder / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return folder


@pytest.fixture(scope="session")
def default_artifact():
    from beam_tensorrt.models import resolve_model

    return resolve_model("sentiment-minilm")


@pytest.fixture(scope="session")
def packed_onnx(tmp_path_factory):
    """The default model as a packed graph in fp32 (artifacts carry it in fp16, for TensorRT), for
    the fake TensorRT engine, which runs it with ONNX Runtime."""
    import onnx

    from beam_tensorrt.models import sentiment_minilm
    from beam_tensorrt.models.onnx_bert import build_bert_classifier

    path = tmp_path_factory.mktemp("packed") / "model.packed.onnx"
    onnx.save_model(build_bert_classifier(sentiment_minilm.MODEL.weights(), packed=True), str(path))
    return path


@pytest.fixture(scope="session")
def reviews() -> list[dict]:
    import csv

    with open(EXAMPLES / "reviews.tsv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture
def models_inferred_with(monkeypatch) -> list:
    """The type of every model that ClassifyText's and ClassifyTextBatches' handlers run batches on.
    Without ``model_copies`` it is the ``TextClassifier`` the SDK process loaded; with it, Beam's
    proxy to the copy that one process holds for every SDK process of the machine."""
    from beam_tensorrt.classify_text_batches import TableModelHandler
    from beam_tensorrt.handler import TextClassificationModelHandler

    seen: list = []
    for handler in (TextClassificationModelHandler, TableModelHandler):
        def run_inference(self, batch, model, inference_args=None, _original=handler.run_inference):
            seen.append(type(model).__name__)
            return _original(self, batch, model, inference_args)

        monkeypatch.setattr(handler, "run_inference", run_inference)
    return seen


@pytest.fixture
def rows_tokenized_here(monkeypatch) -> list:
    """The number of texts of every batch tokenized by a classifier in an SDK process over a model
    shared across processes (``model_copies``: its session a ``SharedModelSession``), rather than by
    the classifier holding the shared model."""
    from beam_tensorrt.backends.shared import SharedModelSession
    from beam_tensorrt.classifier import TextClassifier

    counted: list = []

    def groups(self, texts, _original=TextClassifier.groups):
        if isinstance(self.session, SharedModelSession):
            counted.append(len(texts))
        return _original(self, texts)

    monkeypatch.setattr(TextClassifier, "groups", groups)
    return counted


def read_sst2(path: Path, limit: int | None = None) -> tuple[list[str], list[int]]:
    from scripts.sst2 import read_tsv

    pairs = read_tsv(path)[:limit] if limit else read_tsv(path)
    return [t for t, _ in pairs], [y for _, y in pairs]


def python_without_torch_env() -> dict:
    """Environment for a subprocess in which `import torch` fails (see tests/notorch/)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "notorch")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


PY = sys.executable


def pytest_configure(config):
    """Every test process's temporary files (pytest's own, Beam's, the commands' and Java's it starts)
    in a folder of its own, removed when it ends: a test run leaves nothing in the system's."""

    from beam_tensorrt.files import private_temp_dir

    config._private_temp = private_temp_dir("beam-tensorrt-tests-")
    config._private_temp.__enter__()


def pytest_unconfigure(config):
    if getattr(config, "_private_temp", None) is not None:
        config._private_temp.__exit__(None, None, None)


class FlakyMemorySession(InferenceSession):
    """A real ONNX Runtime session that raises MemoryError above a batch size: fault injection."""

    name = "flaky"
    packed = False
    token_budget = 10**9

    def __init__(self, real, max_rows, poison=None):
        self.real, self.max_rows, self.poison = real, max_rows, poison
        self.input_names, self.max_group_rows = real.input_names, 256
        self.calls = []

    def run_many(self, groups):
        results = []
        for feeds in groups:
            rows = feeds["input_ids"].shape[0]
            self.calls.append(rows)
            if rows > self.max_rows or (self.poison is not None and (feeds["input_ids"] == self.poison).any()):
                raise MemoryError(f"out of memory for {rows} rows")
            results.append(self.real.run(feeds))
        return results

    def close(self):
        pass


REFRESH_START = 1_700_000_000  # window 1: [start, start + 10); window 2: [start + 10, start + 20)


def relabelled_copy(artifact, dest):
    """A copy of ``artifact`` whose labels are 'bad' and 'good': rows it classified are told apart."""
    import json
    import shutil

    shutil.copytree(artifact.path, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest.update(labels=["bad", "good"], name="sentiment-v2")
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def model_updates(new_artifact):
    """The side input of a model refresh: the configured model in window 1, ``new_artifact`` (its
    manifest, as a WatchFilePattern over */manifest.json reports it) from window 2 on."""
    from apache_beam.ml.inference.base import ModelMetadata

    return [(REFRESH_START + 1, ModelMetadata(model_id="", model_name="default")),
            (REFRESH_START + 11, ModelMetadata(model_id=str(new_artifact / "manifest.json"), model_name="v2"))]


def windowed(pcoll, label):
    """(timestamp, value) pairs -> values in fixed windows of 10 s."""
    import apache_beam as beam
    from apache_beam.transforms import window

    return (pcoll | f"{label}Stamp" >> beam.Map(lambda x: window.TimestampedValue(x[1], x[0]))
                  | f"{label}Window" >> beam.WindowInto(window.FixedWindows(10)))


def prism_binary() -> Path:
    """Beam 2.77's Prism runner, built once from its Go module (as java_examples/run_local.sh does);
    the calling test is skipped where Go is missing."""
    import os
    import shutil
    import subprocess

    import pytest

    folder = Path(os.environ.get("PRISM_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                  / "beam-tensorrt" / "prism-2.77.0")
    binary = folder / "prism"
    if not binary.exists():
        if shutil.which("go") is None:
            pytest.skip("Prism is built with Go, which is not on PATH")
        subprocess.run(["go", "install", "github.com/apache/beam/sdks/v2/go/cmd/prism@v2.77.0"],
                       env=dict(os.environ, GOBIN=str(folder)), check=True, capture_output=True, timeout=1200)
    return binary
