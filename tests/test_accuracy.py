"""Accuracy and calibration of the default model, measured the honest way.

Held-out sentences: whole SST-2 sentences that no phrase of the model's training came from
(scripts/sst2.py, the split the training script used). SST-2 dev.tsv phrases overlap the
training sentences, so their figure is reported too but measures memory more than generalisation."""
import os

import numpy as np
import pytest

from beam_tensorrt.classifier import TextClassifier
from conftest import read_sst2


@pytest.fixture(scope="module")
def classifier(default_artifact):
    return TextClassifier.open(default_artifact, "onnxruntime")


@pytest.fixture(scope="module")
def held_out(sst2_dir):
    from scripts.sst2 import honest_split, read_tsv

    phrases = dict(read_tsv(sst2_dir / "train.tsv") + read_tsv(sst2_dir / "dev.tsv"))
    _, val, test = honest_split(phrases, 600, 600)
    return val, test


def logits_and_labels(classifier, items):
    logits = classifier.logits([t for t, _ in items])[0]
    return logits, np.array([y for _, y in items])


def test_held_out_sentences_accuracy_and_calibration(classifier, held_out):
    from scripts.sst2 import expected_calibration_error

    _, test = held_out
    logits, labels = logits_and_labels(classifier, test)
    accuracy = float((logits.argmax(1) == labels).mean())
    ece = expected_calibration_error(logits, labels)
    print(f"held-out test sentences ({len(test)}): accuracy {accuracy:.4f}, ECE {ece:.4f}")
    assert accuracy >= 0.88
    assert ece <= 0.06  # temperature-scaled: confidence tracks accuracy


def test_held_out_sentences_never_trained_on(held_out, sst2_dir):
    """Every held-out sentence and every phrase inside it is absent from what training used."""
    from scripts.sst2 import honest_split, read_tsv, sub_spans

    phrases = dict(read_tsv(sst2_dir / "train.tsv") + read_tsv(sst2_dir / "dev.tsv"))
    train, val, test = honest_split(phrases, 600, 600)
    trained = {p for p, _ in train}
    assert len(val) == len(test) == 600 and not {s for s, _ in val} & {s for s, _ in test}
    for sentence, _ in val + test:
        assert not sub_spans(sentence.split()) & trained


def test_sst2_dev_phrase_accuracy(sst2_dir, classifier):
    full = os.environ.get("BEAM_TENSORRT_FULL_EVAL") == "1"
    texts, labels = read_sst2(sst2_dir / "dev.tsv", limit=None if full else 2000)
    predicted = [p.label == "POSITIVE" for p in classifier.classify(texts)]
    accuracy = float(np.mean(np.array(predicted) == np.array(labels, dtype=bool)))
    print(f"sst2 dev.tsv phrase accuracy on {len(texts)} rows: {accuracy:.4f}")
    assert accuracy >= 0.90
