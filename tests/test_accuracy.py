"""Accuracy of the default model on SST-2 dev (a fixed subset in CI; all rows with BEAM_TENSORRT_FULL_EVAL=1)."""
import os

import numpy as np

from beam_tensorrt.classifier import TextClassifier
from conftest import read_sst2


def test_sst2_dev_accuracy(sst2_dir, default_artifact):
    full = os.environ.get("BEAM_TENSORRT_FULL_EVAL") == "1"
    texts, labels = read_sst2(sst2_dir / "dev.tsv", limit=None if full else 2000)
    clf = TextClassifier.open(default_artifact, "onnxruntime", 128)
    predicted = []
    for i in range(0, len(texts), 128):
        predicted += [p.label == "POSITIVE" for p in clf.classify(texts[i:i + 128])]
    accuracy = float(np.mean(np.array(predicted) == np.array(labels, dtype=bool)))
    print(f"sst2 dev accuracy on {len(texts)} rows: {accuracy:.4f}")
    assert accuracy >= 0.80
