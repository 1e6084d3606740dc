"""The model object RunInference holds: tokenizer + backend session + labels."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from .artifact import ModelArtifact
from .backends import BackendOptions, InferenceSession, open_session
from .backends.shared import SessionLayout, SharedModelSession
from .tokenization import PackedBatch, TextTokenizer, TokenBatch, plan_sub_batches, round_up

# Rows tokenized and packed at a time for a packing session: enough for GEMMs that fill a GPU
# (~3,500 real tokens of SST-2), few enough that the next chunk's tokenization overlaps the device.
PACK_CHUNK_ROWS = 256
# Characters beyond which a text may not fit one packed sequence (PACK_WIDTH tokens, at ~4
# characters a token of English): such texts widen their chunk, so they are chunked together.
LONG_TEXT_CHARS = 384


class ClassPrediction(NamedTuple):
    label: str
    score: float  # probability of ``label``
    probabilities: list[float]  # in the order of the model's labels
    truncated: bool  # the text was cut at max_seq_len


class BatchPrediction(NamedTuple):
    """A batch's predictions as arrays, in input order."""

    labels: list[str]  # the model's, in its order (also where the model is a proxy to another process)
    best: np.ndarray  # [rows] index of the predicted label
    probabilities: np.ndarray  # [rows, labels]
    truncated: np.ndarray  # bool [rows]
    failures: dict[int, str]  # row -> why it could not be classified (its other values are meaningless)


class RowFailure(NamedTuple):
    """A row that could not be classified even alone (after out-of-memory retries in halves)."""

    reason: str


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__:
        return True
    text = str(exc).lower()
    return any(s in text for s in ("out of memory", "failed to allocate", "cudaerrormemoryallocation"))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TextClassifier:
    """Tokenizer + backend session + labels: what RunInference holds as the model.

    Shared by every thread of a Beam worker (the tokenizer and sessions are thread-safe). Each
    batch is sorted by length and cut into groups sized by the session (``token_budget``,
    ``max_group_rows``), tokenized chunk by chunk while the device runs the previous chunk.

    Args:
        artifact: the model artifact.
        session: a backend session (``backends.open_session``).
        max_seq_len: tokens kept per text.
        token_budget, max_rows: override the session's group sizes (tests, experiments).
    """

    def __init__(self, artifact: ModelArtifact, session: InferenceSession, max_seq_len: int,
                 token_budget: int | None = None, max_rows: int | None = None):
        self.artifact = artifact
        self.labels = list(artifact.manifest.labels)
        self.session = session
        self.tokenizer = TextTokenizer(artifact.tokenizer_path, max_seq_len)
        self.token_budget = token_budget or session.token_budget
        self.max_rows = max_rows or session.max_group_rows

    @classmethod
    def open(cls, artifact: ModelArtifact, backend: str = "auto",
             options: BackendOptions = BackendOptions()) -> "TextClassifier":
        """``artifact`` on ``backend``, opened with ``options``: the tokenizer keeps
        ``options.max_seq_len`` tokens, the session is built for them."""
        return cls(artifact, open_session(backend, artifact, options), options.max_seq_len)

    def session_layout(self) -> SessionLayout:
        """What a classifier in another process needs to tokenize for this one's session (model
        sharing: ``backends.shared``)."""
        s = self.session
        return SessionLayout(s.name, list(s.input_names), s.packed, self.token_budget, self.max_rows, self.artifact,
                             self.tokenizer.max_seq_len)

    def run_feeds(self, groups: list) -> list[np.ndarray]:
        """Logits of groups tokenized elsewhere (a classifier over ``SharedModelSession``), one fp32
        array a group."""
        return [np.asarray(r, dtype=np.float32) for r in self.session.run_many(groups)]

    @classmethod
    def over_shared(cls, holder) -> "TextClassifier":
        """A classifier in this process for the model ``holder`` (a proxy) holds in another: it
        tokenizes here and sends token ids there."""
        layout = holder.session_layout()
        return cls(layout.artifact, SharedModelSession(holder, layout), layout.max_seq_len,
                   token_budget=layout.token_budget, max_rows=layout.max_group_rows)

    def _run(self, batch: TokenBatch | PackedBatch) -> np.ndarray:
        return np.asarray(self.session.run(batch.feeds(self.session.input_names)), dtype=np.float32)

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        """Logits, truncation flags and per-row failures, in input order.

        Runs length-sorted groups of the batch. A group that runs out of memory is retried in
        halves; a row that fails alone is reported in the failures (its logits are NaN)."""
        out = np.full((len(texts), len(self.labels)), np.nan, dtype=np.float32)
        truncated = np.zeros(len(texts), dtype=bool)
        failures: dict[int, str] = {}
        try:
            self._pipelined(texts, out, truncated)
            return out, truncated, failures
        except Exception as e:
            if not is_out_of_memory(e):
                raise
        # Out of memory somewhere: again group by group, halving what does not fit.
        encodings = self.tokenizer.encode(texts)
        groups = plan_sub_batches([len(e) for e in encodings], self.token_budget, self.max_rows)
        for group in groups:
            self._run_or_split(list(group), encodings, out, truncated, failures)
        return out, truncated, failures

    def groups(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, TokenBatch | PackedBatch]]:
        """(row indices, batch) as this session takes them: packed, or padded in length groups."""
        return self.packed_groups(texts) if self.session.packed else self.token_groups(texts)

    def packed_groups(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, PackedBatch]]:
        """(row indices, packed batch) groups of at most ``max_rows`` sequences, tokenized a chunk
        of ``PACK_CHUNK_ROWS`` rows at a time.

        Rows keep their order, so each chunk holds the batch's mix of lengths and packs as tightly
        as the whole batch, into as many sequences as the next chunk: short and long texts
        together fill sequences (chunks sorted by length would pack the shortest rows into a few
        sequences and the longest into many). Texts over ``LONG_TEXT_CHARS`` come last, by length:
        one longer than a sequence widens every sequence of its chunk."""
        chars = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        order = np.argsort(np.where(chars > LONG_TEXT_CHARS, chars, 0), kind="stable")
        chunks = [order[start:start + PACK_CHUNK_ROWS] for start in range(0, len(texts), PACK_CHUNK_ROWS)]
        for chunk, encodings in self._encoded(texts, chunks):
            lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
            for rows, batch in self.tokenizer.pack(encodings, lengths).split(self.max_rows):
                yield chunk[rows], batch

    def token_groups(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, TokenBatch]]:
        """(row indices, padded batch) groups of similar length, tokenized one chunk at a time.

        Rows are ordered by character length (a free proxy for token count) and cut into chunks
        of ``max_rows``; each chunk is tokenized only when the previous one has been handed out,
        then cut into exact length groups within ``token_budget``."""
        by_chars = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
        chunks = [by_chars[start:start + self.max_rows] for start in range(0, len(texts), self.max_rows)]
        for chunk, encodings in self._encoded(texts, chunks):
            lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
            if len(chunk) * round_up(int(lengths.max())) <= self.token_budget:
                # The usual case on short text: the whole chunk is one group (order within it is free).
                yield chunk, self.tokenizer.pad(encodings, lengths)
                continue
            for group in plan_sub_batches(lengths, self.token_budget, self.max_rows):
                yield chunk[group], self.tokenizer.pad([encodings[i] for i in group], lengths[group])

    def _encoded(self, texts: Sequence[str], chunks: list[np.ndarray]) -> Iterator[tuple[np.ndarray, list]]:
        """(chunk, its encodings) for each chunk of row indices, in order; the next chunk is
        tokenized on a helper thread while the caller packs this one and hands it to the device
        (the Rust tokenizer releases the GIL, and the Python WordPiece path runs while the device call
        waits), so tokenization does not wait for them."""
        if len(chunks) <= 1:
            for chunk in chunks:
                yield chunk, self.tokenizer.encode([texts[i] for i in chunk])
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize-ahead") as ahead:
            pending = ahead.submit(self.tokenizer.encode, [texts[i] for i in chunks[0]])
            for k, chunk in enumerate(chunks):
                encodings = pending.result()
                if k + 1 < len(chunks):
                    pending = ahead.submit(self.tokenizer.encode, [texts[i] for i in chunks[k + 1]])
                yield chunk, encodings

    def _pipelined(self, texts: Sequence[str], out: np.ndarray, truncated: np.ndarray) -> None:
        """``run_many`` queues each group on the device as the generator hands it over, so the
        tokenization of chunk k+1 overlaps the device work on chunk k."""
        placed: list[tuple[np.ndarray, TokenBatch | PackedBatch]] = []

        def feeds():
            for rows, batch in self.groups(texts):
                placed.append((rows, batch))
                yield batch.feeds(self.session.input_names)

        results = self.session.run_many(feeds())
        if len(results) != len(placed):  # a backend breaking its contract must not go unnoticed
            raise RuntimeError(f"backend {self.session.name!r} returned {len(results)} results for "
                               f"{len(placed)} groups")
        for (rows, batch), logits in zip(placed, results):
            out[rows] = batch.rows_of(np.asarray(logits, dtype=np.float32))
            truncated[rows] = batch.truncated

    def _run_or_split(self, rows: list[int], encodings, out, truncated, failures) -> None:
        chosen = [encodings[i] for i in rows]
        lengths = np.fromiter(map(len, chosen), dtype=np.int64, count=len(chosen))
        batch = self.tokenizer.pack(chosen, lengths) if self.session.packed else self.tokenizer.pad(chosen, lengths)
        try:
            out[rows] = batch.rows_of(self._run(batch))
            truncated[rows] = batch.truncated
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            if len(rows) == 1:
                failures[rows[0]] = (f"out of memory even alone ({batch.input_ids.shape[1]} tokens): "
                                     f"{type(e).__name__}: {e}")
                return
            half = len(rows) // 2
            self._run_or_split(rows[:half], encodings, out, truncated, failures)
            self._run_or_split(rows[half:], encodings, out, truncated, failures)

    def predict(self, texts: Sequence[str]) -> "BatchPrediction":
        """The batch's predictions as arrays (no Python object per row): what batch-native callers
        turn into columns, and what ``classify`` turns into one tuple a row."""
        logits, truncated, failures = self.logits(texts)
        for i in np.flatnonzero(~np.isfinite(logits).all(axis=1)).tolist():
            failures.setdefault(i, f"the {self.session.name} backend returned non-finite logits {logits[i].tolist()}")
        probs = softmax(np.nan_to_num(logits))
        return BatchPrediction(self.labels, probs.argmax(axis=1), probs, truncated, failures)

    def classify(self, texts: Sequence[str]) -> list[ClassPrediction | RowFailure]:
        if not texts:
            return []
        p = self.predict(texts)
        labels = p.labels
        # Whole-array conversions to Python objects, then one tuple per row.
        rows = zip(p.best.tolist(), p.probabilities.max(axis=1).tolist(), p.probabilities.tolist(),
                   p.truncated.tolist())
        predictions: list[ClassPrediction | RowFailure] = [ClassPrediction(labels[b], s, ps, t) for b, s, ps, t in rows]
        for i, reason in p.failures.items():
            predictions[i] = RowFailure(reason)
        return predictions

    def close(self) -> None:
        self.session.close()
