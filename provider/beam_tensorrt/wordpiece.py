"""BERT WordPiece tokenization of plain-ASCII texts in Python, with the Rust tokenizer's ids.

The Rust tokenizer spends most of a row normalizing and pre-tokenizing it character by character,
keeping offsets nobody here reads; on English prose that is ~0.25 ms a review-length text a core
(~4,000 rows/s), so a 16-core host cannot tokenize as fast as one GPU classifies. For a text of
printable ASCII, BERT's normalizer is ``str.lower`` (tab, newline and carriage return become
spaces), its pre-tokenizer splits at whitespace and then one regular expression splits each chunk
(runs of letters and digits; each punctuation character alone), and WordPiece maps each word to the
same pieces every time, so a whitespace-separated chunk's ids (``film.`` -> ``film``, ``.``) are
looked up in a dict filled from the tokenizer's own WordPiece model. One core then does 5.0-7.3x
the rows of one Rust thread, encode and pad (33,275 vs 4,561 review-length rows/s, 226k vs 45k SST-2
phrases: ``bench.tokenizer`` on the 2-core CPU box).

Exactness is by construction and checked differentially against the Rust tokenizer in the tests.
BERT's normalizer maps each character on its own and nothing joins across a plain space, so a text
is the concatenation of its space-separated chunks' tokens: chunks of printable ASCII (plus tab,
newline, carriage return) take this path, the others (an accented word, a curly quote) go to the
Rust tokenizer as chunks, all of a batch's in one call. A text holding a control character or a
character an added token (``[CLS]``, ``[MASK]``...) starts with (matched on the raw text), or with
more chunks for Rust than ``RUST_CHUNKS_AT_MOST`` allows, is the Rust tokenizer's whole, as is every
text of a tokenizer that is not BERT's normalizer + pre-tokenizer + WordPiece with type ids all
zero (``AsciiWordPiece.of`` returns None).
"""
from __future__ import annotations

import itertools
import json
import re
from typing import Optional

# Whole words (a run of ASCII letters and digits) or one ASCII punctuation character: BERT's
# pre-tokenizer on a text without control characters (whitespace separates, and is dropped).
_WORDS = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")
# What BERT's normalizer removes (control characters other than tab, newline, carriage return):
# such a text joins the pieces around them, and is left to the Rust tokenizer.
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Distinct chunks remembered; past this the dict starts again (a corpus of random strings).
CACHE_WORDS = 1 << 20
# A non-ASCII text is chunked when at most this share of its chunks needs the Rust tokenizer (an
# accented word or a quote here and there, as in English reviews); a text mostly of other scripts is
# tokenized whole, in one item of the Rust call rather than many.
RUST_CHUNKS_AT_MOST = 1 / 8
# Characters scanned a token kept: English prose runs ~4.5 characters a WordPiece token, so a long
# text's start holds more words than are kept and the rest is never scanned.
SCAN_CHARS_PER_TOKEN = 6


class WordPieceEncoding:
    """What the rest of the tokenizer reads of an encoding: ids (special tokens included), whether
    the text was cut at ``max_seq_len``, and its length."""

    __slots__ = ("ids", "overflowing")

    def __init__(self, ids: list[int], overflowing: bool):
        self.ids, self.overflowing = ids, overflowing

    @property
    def type_ids(self) -> list[int]:
        return [0] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class _Pieces(dict):
    """A whitespace-free chunk of ASCII text (``don't.``) -> the WordPiece ids of its words, asked of
    the tokenizer's own model the first time. Each chunk gives at least one id (it holds a word)."""

    def __init__(self, model):
        super().__init__()
        self._model = model

    def __missing__(self, chunk: str) -> tuple[int, ...]:
        if len(self) >= CACHE_WORDS:
            self.clear()
        ids = tuple(token.id for word in _WORDS.findall(chunk) for token in self._model.tokenize(word))
        self[chunk] = ids
        return ids


class AsciiWordPiece:
    """Encodes a plain-ASCII text as the Rust ``tokenizer`` would, truncated at ``max_seq_len``.

    Made by ``of`` (``tokenizer``: a copy with padding and truncation off, which also encodes the
    non-ASCII chunks; ``prefix``/``suffix``: the special tokens around a text).

    Args of ``of``:
        tokenizer: a ``tokenizers.Tokenizer`` (its truncation and padding are not read).
        max_seq_len: tokens kept, special tokens included.

    Example::

        fast = AsciiWordPiece.of(tokenizer, 128)   # None: not a BERT WordPiece tokenizer
        encoding = fast.encode("A fine film.")     # None: the text needs the Rust tokenizer
    """

    def __init__(self, tokenizer, max_seq_len: int, lowercase: bool, prefix: list[int], suffix: list[int]):
        self._pieces = _Pieces(tokenizer.model)
        self._chunks = tokenizer  # non-ASCII chunks, whole: no truncation, no padding
        self._lower = lowercase
        self._prefix, self._suffix = prefix, suffix
        self._limit = max_seq_len - len(prefix) - len(suffix)  # tokens of the text kept
        firsts = {token.content[:1] for token in tokenizer.get_added_tokens_decoder().values() if token.content}
        firsts |= {c.upper() for c in firsts} | {c.lower() for c in firsts}
        self._needs_rust = re.compile(f"[{_CONTROL}{re.escape(''.join(sorted(firsts)))}]")
        self._encode_chunks = getattr(self._chunks, "encode_batch_fast", None) or self._chunks.encode_batch
        self._scan_chars = SCAN_CHARS_PER_TOKEN * max_seq_len

    @classmethod
    def of(cls, tokenizer, max_seq_len: int) -> Optional["AsciiWordPiece"]:
        """The fast path for ``tokenizer``, or None when it is not BERT's normalizer (or none) +
        BERT's pre-tokenizer + WordPiece with type ids all zero and special tokens around the text."""
        from tokenizers import Tokenizer

        spec = json.loads(tokenizer.to_str())
        normalizer = spec.get("normalizer") or {"type": "BertNormalizer", "lowercase": False}
        if (normalizer.get("type") != "BertNormalizer" or (spec.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer"
                or (spec.get("model") or {}).get("type") != "WordPiece"):
            return None
        tokenizer = Tokenizer.from_str(tokenizer.to_str())  # a copy: its padding and truncation off
        tokenizer.no_padding()
        tokenizer.no_truncation()
        probe = "probe"
        inner = tokenizer.encode(probe, add_special_tokens=False).ids
        outer = tokenizer.encode(probe, add_special_tokens=True)
        empty = tokenizer.encode("", add_special_tokens=True).ids
        ids = outer.ids
        starts = [i for i in range(len(ids) - len(inner) + 1) if ids[i:i + len(inner)] == inner]
        if len(starts) != 1 or any(outer.type_ids):
            return None
        prefix, suffix = ids[:starts[0]], ids[starts[0] + len(inner):]
        if empty != prefix + suffix or max_seq_len <= len(prefix) + len(suffix):
            return None
        return cls(tokenizer, max_seq_len, bool(normalizer.get("lowercase", True)), prefix, suffix)

    def encode_batch(self, texts: list[str]) -> list[Optional[WordPieceEncoding]]:
        """``encode`` for each text, and the chunked path for a non-ASCII text (one call into the
        Rust tokenizer for all of them); None for a text the Rust tokenizer must take whole."""
        encodings: list[Optional[WordPieceEncoding]] = [self.encode(text) for text in texts]
        plans: list[tuple[int, list, bool]] = []  # (text, its chunks' ids or Rust chunk indices, cut)
        rust: list[str] = []
        for i, text in enumerate(texts):
            if encodings[i] is None and not self._needs_rust.search(text):
                planned = self._chunked(text, rust)
                if planned is not None:
                    plans.append((i, *planned))
        if not plans:
            return encodings
        rust_ids = [e.ids for e in self._encode_chunks(rust, add_special_tokens=False)]
        limit = self._limit
        for i, plan, cut in plans:
            pieces = list(itertools.chain.from_iterable(rust_ids[p] if isinstance(p, int) else p for p in plan))
            overflowing = len(pieces) > limit
            if cut and not overflowing:
                continue  # the start did not fill max_seq_len: the Rust tokenizer takes the text whole
            del pieces[limit:]
            encodings[i] = WordPieceEncoding(self._prefix + pieces + self._suffix, overflowing)
        return encodings

    def _chunked(self, text: str, rust: list[str]) -> Optional[tuple[list, bool]]:
        """A text's stretches between plain spaces (of its start, cut at a space, when it is long):
        the ids of each ASCII stretch, the index in ``rust`` of each chunk holding a non-ASCII
        character (appended to it), and whether the text was cut; None when too many chunks need
        the Rust tokenizer."""
        head = text
        if len(text) > self._scan_chars:
            end = text.rfind(" ", 0, self._scan_chars + 1)
            head = text[:end] if end > 0 else text
        most = RUST_CHUNKS_AT_MOST * (head.count(" ") + 1)
        plan: list = []
        pos = 0
        while True:
            found = _NON_ASCII.search(head, pos)
            if found is None:
                break
            if len(plan) // 2 + 1 > most:
                return None
            space = head.rfind(" ", pos, found.start())
            start = space + 1 if space >= 0 else pos
            end = head.find(" ", found.end())
            end = len(head) if end < 0 else end
            plan.append(self._ascii_ids(head[pos:start]))
            plan.append(len(rust))
            rust.append(head[start:end])
            pos = end
        plan.append(self._ascii_ids(head[pos:]))
        return plan, head is not text

    def _ascii_ids(self, text: str) -> tuple[int, ...]:
        chunks = (text.lower() if self._lower else text).split()
        return tuple(itertools.chain.from_iterable(map(self._pieces.__getitem__, chunks)))

    def encode(self, text: str) -> Optional[WordPieceEncoding]:
        """``text``'s encoding, or None when the text is not plain ASCII (or holds a control
        character or an added token's first character): the Rust tokenizer's then."""
        if not text.isascii() or self._needs_rust.search(text):
            return None
        limit = self._limit
        head = text[:self._scan_chars] if len(text) > self._scan_chars else text
        chunks = (head.lower() if self._lower else head).split()
        # The last chunk of a cut text may be cut too. Each chunk gives at least one token, so with
        # more chunks than tokens kept that chunk gives none of the kept tokens, only the overflow
        # (which it gives whole or cut): otherwise the whole text is split.
        if head is not text and len(chunks) <= limit:
            chunks = (text.lower() if self._lower else text).split()
        pieces = list(itertools.chain.from_iterable(map(self._pieces.__getitem__, chunks[:limit + 1])))
        overflowing = len(pieces) > limit
        if overflowing:
            del pieces[limit:]
        return WordPieceEncoding(self._prefix + pieces + self._suffix, overflowing)
