from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SST2 = Path(os.environ.get("SST2_DIR", ROOT.parent / "shared" / "data" / "sst2"))
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    if not (SST2 / "dev.tsv").is_file():
        pytest.skip(f"SST-2 data not found at {SST2} (set SST2_DIR)")
    return SST2


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
    from beam_tensorrt.tooling.onnx_bert import build_bert_classifier

    path = tmp_path_factory.mktemp("packed") / "model.packed.onnx"
    onnx.save_model(build_bert_classifier(sentiment_minilm.weights(), packed=True), str(path))
    return path


@pytest.fixture(scope="session")
def reviews() -> list[dict]:
    import csv

    with open(EXAMPLES / "reviews.tsv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


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
