"""Batched tokenization with the fast (Rust) tokenizer from a model's ``tokenizer.json``."""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

PAD_MULTIPLE = 8
# What a model takes: padded batches (a row a sequence) or packed ones (several rows a sequence).
PADDED_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PACKED_INPUTS = ("input_ids", "segment_ids", "token_type_ids", "position_ids")
# Tokens per packed sequence: several short rows share one (see PackedBatch). Measured on SST-2 with
# two-pointer packing: 0.97 of the tokens are real at 128 (0.95 at 64), against 0.37-0.54 padded
# (bench/NOTES.md); attention over 128 tokens adds ~3% to a BERT-base's work.
PACK_WIDTH = 128
# A text longer than this many characters per token of max_seq_len is tokenized from its start only
# (cut at a space): English prose runs ~4.5 characters a WordPiece token, so the start already gives
# more tokens than fit and the rest would be tokenized only to be thrown away. On review-length texts
# (~1,000 characters, max_seq_len 128) the Rust tokenizer then does 1.33x the rows a second, and no
# row of 8,192 reviews needed its whole text (at 5 characters, 1.56x but 0.5% tokenized twice; at 4,
# nearly all). See TextTokenizer.encode for why the result is the same.
CUT_CHARS_PER_TOKEN = 6
# Threads of the Rust tokenizer at which it does the rows a second of ``wordpiece``'s Python path on
# one core (5.0-7.3x a Rust thread, encode + pad, phrases to reviews: ``bench.tokenizer`` on the CPU
# box): with fewer, plain-ASCII texts take the Python path (see ``python_wordpiece``).
RUST_THREADS_PER_PYTHON_CORE = 5
TOKENIZER_THREADS = "RAYON_NUM_THREADS"  # the variable the Rust tokenizer reads for its thread count


def python_wordpiece(env=os.environ) -> bool:
    """Whether plain-ASCII texts take ``wordpiece``'s Python path here: the Rust tokenizer runs
    ``RAYON_NUM_THREADS`` threads (a thread a core without it), and only with as many threads as
    ``RUST_THREADS_PER_PYTHON_CORE`` does it match one core of Python. The launchers give each of a
    host's worker processes its share of the cores (two on a 16-core GPU host): Python there."""
    given = env.get(TOKENIZER_THREADS, "")
    threads = int(given) if given.isdigit() and int(given) > 0 else (os.cpu_count() or 1)
    return threads < RUST_THREADS_PER_PYTHON_CORE


@dataclass
class TokenBatch:
    """Arrays ready for any backend: int64, shape [batch, padded_len]."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    truncated: np.ndarray  # bool [batch]: the text was cut at max_seq_len

    def feeds(self, input_names: Sequence[str]) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in input_names}

    def rows_of(self, logits: np.ndarray) -> np.ndarray:
        """Per-row results: a padded model returns one a row already (as ``PackedBatch.rows_of``)."""
        return logits

    @property
    def lengths(self) -> np.ndarray:
        return self.attention_mask.sum(axis=1)


def _start_of(text: str, chars: int) -> str:
    """``text`` up to its last space within ``chars`` characters (the text itself if none)."""
    end = text.rfind(" ", 0, chars + 1)
    return text[:end] if end > 0 else text


def cuts_at_spaces_exactly(tokenizer) -> bool:
    """Whether tokenizing a text's start, cut at a space, gives the whole text's first tokens: a
    WordPiece model after BERT's normalizer (each character on its own) and a pre-tokenizer that
    splits at every space, with no added token holding a space (those are matched on the raw text).
    Byte-level BPE, SentencePiece (Metaspace) and anything else are left whole."""
    import json

    spec = json.loads(tokenizer.to_str())
    normalizer = (spec.get("normalizer") or {}).get("type")
    pre_tokenizer = (spec.get("pre_tokenizer") or {}).get("type")
    return (normalizer in (None, "BertNormalizer")
            and pre_tokenizer in ("BertPreTokenizer", "Whitespace", "WhitespaceSplit")
            and (spec.get("model") or {}).get("type") == "WordPiece"
            and not any(" " in token.get("content", "") for token in spec.get("added_tokens") or []))


def round_up(n: int, multiple: int = PAD_MULTIPLE) -> int:
    return max(multiple, -(-n // multiple) * multiple)


class TextTokenizer:
    """Tokenizes a batch in one call into the Rust tokenizer.

    Rows are truncated at ``max_seq_len`` and the batch is padded only to its
    longest row rounded up to a multiple of 8 (tensor cores like multiples of 8;
    a fixed 512 would waste most of the compute on short text).

    Args:
        tokenizer_json: the model's ``tokenizer.json``.
        max_seq_len: tokens kept per text, special tokens included.
        pad_token_id: default: the tokenizer's ``[PAD]`` (or ``<pad>``), else 0.
        python_path: plain-ASCII texts by ``wordpiece``'s Python path (the same ids); None:
            where ``python_wordpiece`` says it is faster.
    """

    def __init__(self, tokenizer_json: str | Path, max_seq_len: int, pad_token_id: int | None = None,
                 python_path: bool | None = None):
        from tokenizers import Tokenizer

        from .wordpiece import AsciiWordPiece

        self.max_seq_len = int(max_seq_len)
        self._tok = Tokenizer.from_file(str(tokenizer_json))
        # Whatever the file configures (all-MiniLM's pads to a fixed 128), we pad ourselves.
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=self.max_seq_len)
        if pad_token_id is None:
            pad_token_id = self._find_pad_id()
        self.pad_token_id = int(pad_token_id)
        # Without offsets (which nothing here reads) the Rust side does less work per row.
        self._encode_batch = getattr(self._tok, "encode_batch_fast", None) or self._tok.encode_batch
        self._cut_at = self.max_seq_len * CUT_CHARS_PER_TOKEN if cuts_at_spaces_exactly(self._tok) else None
        # A single sentence's type ids come from the post-processor's template, not from the text:
        # when that template gives 0 everywhere (BERT, RoBERTa), skip reading them row by row.
        self._types_all_zero = not any(self._tok.encode("probe sentence", add_special_tokens=True).type_ids)
        # Plain-ASCII texts in Python where that is faster (``python_wordpiece``; None: decide so).
        use_python = python_wordpiece() if python_path is None else python_path
        self._ascii = AsciiWordPiece.of(self._tok, self.max_seq_len) if use_python else None

    def _find_pad_id(self) -> int:
        for token in ("[PAD]", "<pad>", "<PAD>"):
            tid = self._tok.token_to_id(token)
            if tid is not None:
                return tid
        return 0

    def encode(self, texts: Sequence[str]) -> list:
        """Unpadded encodings, truncated at ``max_seq_len``: plain-ASCII texts by ``wordpiece``'s
        Python path where it is on (the same ids), the others by the Rust tokenizer (``_rust``)."""
        fast = self._ascii
        if fast is None:
            return self._rust(texts)
        texts = list(texts)
        encodings = fast.encode_batch(texts)
        rest = [i for i, encoding in enumerate(encodings) if encoding is None]
        if rest:
            for i, encoding in zip(rest, self._rust([texts[i] for i in rest])):
                encodings[i] = encoding
        return encodings

    def _rust(self, texts: Sequence[str]) -> list:
        """The Rust tokenizer's encodings (one call for the whole list, a second for the rare long
        text whose start proved too short).

        A text longer than ``max_seq_len * CUT_CHARS_PER_TOKEN`` characters is tokenized up to
        its last space within that many characters. Where the tokenizer splits words at spaces
        and normalizes each character on its own (``cuts_at_spaces_exactly``), the start's tokens
        are the first tokens of the whole text; when the start alone overflows ``max_seq_len``,
        the truncated encoding (ids, type ids, overflow flag) is the whole text's. A start that
        does not overflow is tokenized again whole.
        """
        texts = list(texts)
        cut_at = self._cut_at
        if cut_at is None:
            return self._encode_batch(texts, add_special_tokens=True)
        starts = [t if len(t) <= cut_at else _start_of(t, cut_at) for t in texts]
        encodings = self._encode_batch(starts, add_special_tokens=True)
        redo = [i for i, (text, start) in enumerate(zip(texts, starts))
                if start is not text and not encodings[i].overflowing]
        if redo:
            for i, encoding in zip(redo, self._encode_batch([texts[i] for i in redo], add_special_tokens=True)):
                encodings[i] = encoding
        return encodings

    def pad(self, encodings: Sequence, lengths: np.ndarray | None = None) -> TokenBatch:
        """Pad encodings to their longest, rounded up to a multiple of 8 (``lengths``: their
        token counts, when the caller has them already)."""
        n = len(encodings)
        if lengths is None:
            lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=n)
        longest = int(lengths.max()) if n else 1
        width = min(round_up(longest), round_up(self.max_seq_len))
        # One scatter per array instead of a Python loop per row: row-major order of the mask's
        # True cells is exactly the order of the concatenated token lists.
        mask = np.arange(width)[None, :] < lengths[:, None]
        total = int(lengths.sum())
        ids = np.full((n, width), self.pad_token_id, dtype=np.int64)
        ids[mask] = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=total)
        types = np.zeros((n, width), dtype=np.int64)
        if not self._types_all_zero:
            types[mask] = np.fromiter(itertools.chain.from_iterable(e.type_ids for e in encodings), dtype=np.int64,
                                      count=total)
        return TokenBatch(ids, mask.astype(np.int64), types, self._truncated(encodings, lengths))

    def _truncated(self, encodings: Sequence, lengths: np.ndarray) -> np.ndarray:
        truncated = np.zeros(len(encodings), dtype=bool)
        # Only a row that reached max_seq_len can have been cut; ask the tokenizer about those alone.
        for i in np.flatnonzero(lengths >= self.max_seq_len):
            truncated[i] = bool(encodings[int(i)].overflowing)
        return truncated

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        return self.pad(self.encode(texts))

    def pack(self, encodings: Sequence, lengths: np.ndarray, width: int = PACK_WIDTH) -> "PackedBatch":
        """Pack encodings several to a sequence of ``width`` tokens (at least the longest row's
        length, rounded up to a multiple of 8); see ``PackedBatch``."""
        width = max(round_up(int(lengths.max())) if len(lengths) else 1, min(width, round_up(self.max_seq_len)))
        sequence, slot, offset, n = pack_rows(lengths, width)
        total = int(lengths.sum())
        starts = np.cumsum(lengths) - lengths  # where each row starts in the concatenated tokens
        within = np.arange(total) - np.repeat(starts, lengths)  # position inside its row
        flat = np.repeat(sequence * width + offset, lengths) + within
        ids = np.full(n * width, self.pad_token_id, dtype=np.int64)
        ids[flat] = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=total)
        segments = np.zeros(n * width, dtype=np.int64)
        segments[flat] = np.repeat(slot + 1, lengths)
        positions = np.zeros(n * width, dtype=np.int64)
        positions[flat] = within
        types = np.zeros(n * width, dtype=np.int64)
        if not self._types_all_zero:
            types[flat] = np.fromiter(itertools.chain.from_iterable(e.type_ids for e in encodings), dtype=np.int64,
                                      count=total)
        shape = (n, width)
        return PackedBatch(ids.reshape(shape), segments.reshape(shape), types.reshape(shape),
                           positions.reshape(shape), sequence, slot, self._truncated(encodings, lengths), int(total))


@dataclass
class PackedBatch:
    """Rows packed several to a sequence: what packing backends take.

    Row r's tokens sit in sequence ``sequence[r]`` with segment id ``slot[r] + 1`` (0 marks padding)
    and positions counting from 0 within the row; a packing model attends within segments and
    returns one result per slot, ``[sequences, width, labels]``: row r's is ``[sequence[r], slot[r]]``.
    """

    input_ids: np.ndarray
    segment_ids: np.ndarray
    token_type_ids: np.ndarray
    position_ids: np.ndarray
    sequence: np.ndarray  # [rows]
    slot: np.ndarray  # [rows]
    truncated: np.ndarray  # bool [rows]
    real_tokens: int

    def feeds(self, input_names: Sequence[str]) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in input_names}

    def rows_of(self, logits: np.ndarray) -> np.ndarray:
        """Per-row results ``[rows, labels]`` from a packing model's ``[sequences, width, labels]``."""
        return logits[self.sequence, self.slot]

    def split(self, max_sequences: int) -> list[tuple[np.ndarray, "PackedBatch"]]:
        """(row indices, sub-batch) of at most ``max_sequences`` sequences each."""
        n = self.input_ids.shape[0]
        if n <= max_sequences:
            return [(np.arange(len(self.sequence)), self)]
        parts = []
        for a in range(0, n, max_sequences):
            b = min(a + max_sequences, n)
            rows = np.flatnonzero((self.sequence >= a) & (self.sequence < b))
            parts.append((rows, PackedBatch(
                self.input_ids[a:b], self.segment_ids[a:b], self.token_type_ids[a:b], self.position_ids[a:b],
                self.sequence[rows] - a, self.slot[rows], self.truncated[rows],
                int((self.segment_ids[a:b] > 0).sum()))))
        return parts


def pack_rows(lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Two-pointer packing: each sequence takes the longest rows left that fit, then fills up with
    the shortest. Returns per row (sequence, slot, token offset in the sequence) and the number of
    sequences. Every row must fit ``width``."""
    n = len(lengths)
    order = np.argsort(-np.asarray(lengths), kind="stable").tolist()
    ls = [int(lengths[i]) for i in order]
    sequence = np.empty(n, dtype=np.int64)
    slot = np.empty(n, dtype=np.int64)
    offset = np.empty(n, dtype=np.int64)
    i, j, seq = 0, n - 1, 0
    while i <= j:
        used, k = 0, 0
        while i <= j and used + ls[i] <= width:
            r = order[i]
            sequence[r], slot[r], offset[r] = seq, k, used
            used += ls[i]
            k += 1
            i += 1
        while i <= j and used + ls[j] <= width:
            r = order[j]
            sequence[r], slot[r], offset[r] = seq, k, used
            used += ls[j]
            k += 1
            j -= 1
        if k == 0:
            raise ValueError(f"a row of {ls[i]} tokens does not fit a packed sequence of {width}")
        seq += 1
    return sequence, slot, offset, seq


def plan_sub_batches(lengths: Sequence[int] | np.ndarray, token_budget: int, max_rows: int) -> list[np.ndarray]:
    """Split a batch into groups of similar length so that padding is small.

    Rows are sorted by length; a group grows while ``rows * padded_len`` stays within
    ``token_budget`` and ``rows <= max_rows``. Returns index arrays into the original batch.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    groups: list[np.ndarray] = []
    start = 0
    for i in range(1, len(order) + 1):
        if i == len(order):
            groups.append(order[start:i])
            break
        rows = i + 1 - start
        padded = round_up(int(lengths[order[i]]))
        if rows > max_rows or rows * padded > token_budget:
            groups.append(order[start:i])
            start = i
    return [g for g in groups if len(g)]
