"""SST-2 for tests, benchmarks and training (never the product): the one reader, the split that holds
out whole sentences, and calibration metrics.

SST-2's ``train.tsv`` and ``dev.tsv`` hold the phrases of the same source sentences, so a
phrase-level split measures memory. ``honest_split`` holds out whole *sentences* (phrases that are
not part of a longer phrase) and removes from training every phrase inside a held-out sentence.
"""
from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import numpy as np

SEED_SPLIT = 20261126


def read_tsv(path: Path) -> list[tuple[str, int]]:
    """(text, label) pairs of an SST-2 TSV file (header ``sentence<TAB>label``)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [(r["sentence"].strip(), int(r["label"])) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def sub_spans(words: list[str]) -> set[str]:
    """Every contiguous run of words, the whole included."""
    return {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def honest_split(phrases: dict[str, int], n_val: int, n_test: int, seed: int = SEED_SPLIT, min_words: int = 4):
    """(train phrases, val sentences, test sentences), each a list of (text, label).

    A sentence is a phrase that is no part of a longer phrase. Held-out sentences are drawn among
    those of at least ``min_words`` words; every phrase inside a held-out sentence leaves training."""
    inside_longer: set[str] = set()
    for p in phrases:
        words = p.split()
        if len(words) > 1:
            inside_longer |= sub_spans(words) - {p}
    sentences = sorted(p for p in phrases if p not in inside_longer and len(p.split()) >= min_words)
    held = random.Random(seed).sample(sentences, n_val + n_test)
    val, test = held[:n_val], held[n_val:]
    leaving: set[str] = set()
    for s in held:
        leaving |= sub_spans(s.split())
    train = [(p, y) for p, y in phrases.items() if p not in leaving]
    return train, [(s, phrases[s]) for s in val], [(s, phrases[s]) for s in test]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(logits: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    probs = softmax(logits)
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(conf[inside].mean() - (pred[inside] == labels[inside]).mean())
    return float(ece)


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(softmax(logits)[np.arange(len(labels)), labels] + 1e-12).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation NLL (golden-section search on log T)."""
    lo, hi = math.log(0.05), math.log(20.0)
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(60):
        if nll(logits / math.exp(a), labels) < nll(logits / math.exp(b), labels):
            hi = b
        else:
            lo = a
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    return math.exp((lo + hi) / 2)
