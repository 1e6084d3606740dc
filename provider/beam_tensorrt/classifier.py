"""The model object RunInference holds: tokenizer + backend session + labels."""
from __future__ import annotations

import threading
from typing import NamedTuple, Sequence

import numpy as np

from .artifact import ModelArtifact
from .backends import BackendOptions, InferenceSession, open_session
from .tokenization import TextTokenizer


class ClassPrediction(NamedTuple):
    label: str
    score: float  # probability of ``label``
    probabilities: list[float]  # in the order of the model's labels
    truncated: bool  # the text was cut at max_seq_len


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TextClassifier:
    def __init__(self, artifact: ModelArtifact, session: InferenceSession, max_seq_len: int):
        self.artifact = artifact
        self.labels = list(artifact.manifest.labels)
        self.session = session
        self.tokenizer = TextTokenizer(artifact.tokenizer_path, max_seq_len)
        # Rust tokenizers are thread-safe, but Beam may share one model across DoFn threads;
        # a backend that is not re-entrant declares it and we serialise its calls.
        self._lock = threading.Lock() if not getattr(session, "thread_safe", True) else None

    @classmethod
    def open(cls, artifact: ModelArtifact, backend: str, max_seq_len: int,
             options: BackendOptions = BackendOptions()) -> "TextClassifier":
        return cls(artifact, open_session(backend, artifact, options), max_seq_len)

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        batch = self.tokenizer(texts)
        feeds = batch.feeds(self.session.input_names)
        if self._lock is None:
            out = self.session.run(feeds)
        else:
            with self._lock:
                out = self.session.run(feeds)
        return np.asarray(out, dtype=np.float32), batch.truncated

    def classify(self, texts: Sequence[str]) -> list[ClassPrediction]:
        if not texts:
            return []
        logits, truncated = self.logits(texts)
        probs = softmax(logits)
        best = probs.argmax(axis=1)
        return [
            ClassPrediction(self.labels[b], float(p[b]), [float(x) for x in p], bool(t))
            for b, p, t in zip(best, probs, truncated)
        ]

    def close(self) -> None:
        self.session.close()
