"""The model object RunInference holds: tokenizer + backend session + labels."""
from __future__ import annotations

import threading
from typing import NamedTuple, Sequence

import numpy as np

from .artifact import ModelArtifact
from .backends import BackendOptions, InferenceSession, open_session
from .tokenization import TextTokenizer, plan_sub_batches

# Padded tokens per backend call. Sorting a Beam batch by length and cutting it into groups of
# this many padded tokens keeps padding small on short, ragged text (SST-2: 2-60 tokens).
DEFAULT_TOKEN_BUDGET = 4096


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
    def __init__(self, artifact: ModelArtifact, session: InferenceSession, max_seq_len: int,
                 token_budget: int | None = None, max_rows: int = 256):
        self.artifact = artifact
        self.labels = list(artifact.manifest.labels)
        self.session = session
        self.tokenizer = TextTokenizer(artifact.tokenizer_path, max_seq_len)
        self.token_budget = token_budget or getattr(session, "token_budget", DEFAULT_TOKEN_BUDGET)
        self.max_rows = max_rows
        # Rust tokenizers are thread-safe, but Beam may share one model across DoFn threads;
        # a backend that is not re-entrant declares it and we serialise its calls.
        self._lock = threading.Lock() if not getattr(session, "thread_safe", True) else None

    @classmethod
    def open(cls, artifact: ModelArtifact, backend: str, max_seq_len: int,
             options: BackendOptions = BackendOptions()) -> "TextClassifier":
        return cls(artifact, open_session(backend, artifact, options), max_seq_len)

    def _run(self, batch) -> np.ndarray:
        feeds = batch.feeds(self.session.input_names)
        if self._lock is None:
            return np.asarray(self.session.run(feeds), dtype=np.float32)
        with self._lock:
            return np.asarray(self.session.run(feeds), dtype=np.float32)

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Logits and truncation flags in input order; runs length-sorted groups of the batch."""
        encodings = self.tokenizer.encode(texts)
        lengths = [len(e.ids) for e in encodings]
        groups = plan_sub_batches(lengths, self.token_budget, self.max_rows)
        batches = [self.tokenizer.pad([encodings[i] for i in group]) for group in groups]
        run_many = getattr(self.session, "run_many", None)
        if run_many is not None:  # overlaps host copies of one group with GPU work on another
            outputs = [np.asarray(o, dtype=np.float32)
                       for o in run_many([b.feeds(self.session.input_names) for b in batches])]
        else:
            outputs = [self._run(b) for b in batches]
        out = np.empty((len(texts), outputs[0].shape[1] if outputs else len(self.labels)), dtype=np.float32)
        truncated = np.zeros(len(texts), dtype=bool)
        for group, batch, logits in zip(groups, batches, outputs):
            out[group] = logits
            truncated[group] = batch.truncated
        return out, truncated

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
