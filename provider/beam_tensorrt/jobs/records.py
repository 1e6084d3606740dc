"""Where the records of a CSV or TSV file end, found exactly as Python's ``csv`` module reads it, so
that the main job can cut a file into parts that workers parse alone without moving a record.

The dialect is ``csv.reader``'s default for CSV (``","``, quote ``'"'``, quotes doubled inside a
quoted value, no escape character, not strict) and ``delimiter="\\t", quoting=csv.QUOTE_NONE`` for
TSV, read as a file opened with ``newline=""``: a record ends at ``\\n``, ``\\r\\n`` or a lone
``\\r`` outside a quoted value, and a record with nothing in it (a blank line) is no row.

A quote is special only where that reader treats it so: at the start of a value (after the start
of the file, a delimiter or a record end), or after the quote that closed a quoted value (a doubled
quote). Anywhere else (``12" screen``) it is an ordinary character, and a value may go on after its
closing quote (``"a"b`` is ``ab``). Counting quotes alone (the parity of quotes before a newline)
is right only while every quote is special; one bare quote shifts it for the rest of the file. So
each buffer is first checked in bulk (numpy) for a quote that parity would take as opening but the
reader would not; only a buffer that has one is walked quote by quote in Python.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NL, CR, QUOTE = 10, 13, 34


@dataclass
class Ends:
    """Record ends found in one buffer: ``offsets`` of each record's last byte (its ``\\n`` or lone
    ``\\r``), absolute in the stream, and ``rows``: whether each record is a row (not blank)."""

    offsets: np.ndarray  # int64
    rows: np.ndarray  # bool


class RecordScanner:
    """Feed a stream's bytes in order (``feed``), then ``finish``; each call returns the record ends
    it could settle. The last byte fed is held back until the next is known (``\\r\\n`` or a lone
    ``\\r``), so a call may settle up to the byte before its last.

    Args:
        delimiter: the value separator (``","`` or ``"\\t"``).
        quoted: whether quotes are special (CSV) or ordinary characters (TSV).
        start: the stream's first byte's offset (after a byte-order mark, say).
    """

    def __init__(self, delimiter: str, quoted: bool, start: int = 0):
        self._delimiter = ord(delimiter)
        self._quoted = quoted
        self._held = b""
        self._offset = start  # absolute offset of the next byte to settle
        self._prev = -1  # the byte before the next one to settle (-1: the stream's start)
        self._inside = 0  # 1 inside a quoted value
        self._last_close = -2  # offset of the last quote that closed a quoted value
        self._last_end = start - 1  # offset of the last record end
        self.bare_quotes = 0  # quotes read as ordinary characters (a buffer walked one by one)

    @property
    def inside_quotes(self) -> bool:
        """Whether the bytes settled so far end inside a quoted value."""
        return bool(self._inside)

    @property
    def last_end(self) -> int:
        return self._last_end

    def feed(self, chunk: bytes) -> Ends:
        if not chunk:
            return _no_ends()
        data, self._held = self._held + chunk[:-1], chunk[-1:]
        return self._settle(data, next_byte=self._held[0])

    def finish(self) -> Ends:
        """The record ends in the held byte. After it, ``tail_is_row`` says whether bytes after the
        last record end form a row (a last record without a newline)."""
        data, self._held = self._held, b""
        ends = self._settle(data, next_byte=-1)
        return ends

    def tail_is_row(self, end_of_stream: int) -> bool:
        """Whether bytes ``(last_end, end_of_stream)`` hold a record with something in it."""
        return end_of_stream - 1 > self._last_end

    def _settle(self, data: bytes, next_byte: int) -> Ends:
        if not data:
            return _no_ends()
        buf = np.frombuffer(data, dtype=np.uint8)
        base = self._offset
        toggles = self._toggles(buf, base) if self._quoted else np.empty(0, np.int64)
        newlines = np.flatnonzero(buf == NL)
        crs = np.flatnonzero(buf == CR)
        if len(crs):  # a \r ends a record unless a \n follows it
            after = np.where(crs + 1 < len(buf), buf[np.minimum(crs + 1, len(buf) - 1)], next_byte)
            crs = crs[after != NL]
            candidates = np.union1d(newlines, crs) if len(crs) else newlines
        else:
            candidates = newlines
        if len(toggles) or self._inside:  # outside quotes: an even number of toggles before, from outside
            before = np.searchsorted(toggles, candidates)
            candidates = candidates[(self._inside + before) % 2 == 0]
            self._inside = (self._inside + len(toggles)) % 2
        ends = candidates.astype(np.int64) + base
        rows = self._rows(ends, buf, base)
        if len(ends):
            self._last_end = int(ends[-1])
        self._offset = base + len(buf)
        self._prev = int(buf[-1])
        return Ends(ends, rows)

    def _rows(self, ends: np.ndarray, buf: np.ndarray, base: int) -> np.ndarray:
        """Whether each record has something in it (its bytes less its terminator)."""
        if not len(ends):
            return np.zeros(0, dtype=bool)
        previous = np.concatenate(([self._last_end], ends[:-1]))
        local = ends - base
        crlf = np.zeros(len(ends), dtype=bool)
        at = local >= 1
        crlf[at] = (buf[local[at]] == NL) & (buf[local[at] - 1] == CR)
        first = ~at  # the record ends at the buffer's first byte: the byte before is self._prev
        crlf[first] = (buf[0] == NL) & (self._prev == CR)
        return ends - previous - np.where(crlf, 2, 1) > 0

    def _toggles(self, buf: np.ndarray, base: int) -> np.ndarray:
        """Offsets (in ``buf``) of the quotes that open or close a quoted value, in order."""
        quotes = np.flatnonzero(buf == QUOTE)
        if not len(quotes):
            return quotes
        inside_before = (self._inside + np.arange(len(quotes))) % 2
        opening = quotes[inside_before == 0]
        if len(opening):  # were every quote special, these would open a value: check they may
            before = np.where(opening > 0, buf[np.maximum(opening - 1, 0)], self._prev)
            at_value_start = ((before == self._delimiter) | (before == NL) | (before == CR)
                              | ((opening == 0) & (self._prev == -1)))
            # a doubled quote: right after the quote before it, which closed the value
            adjacent = np.concatenate(([quotes[0] == 0 and self._last_close == base - 1], np.diff(quotes) == 1))
            doubled = adjacent[inside_before == 0]
            if not (at_value_start | doubled).all():
                return self._walk(buf, quotes, base)
        closes = quotes[inside_before == 1]
        if len(closes):
            self._last_close = int(closes[-1]) + base
        return quotes

    def _walk(self, buf: np.ndarray, quotes: np.ndarray, base: int) -> np.ndarray:
        """The toggling quotes, one quote at a time, as the reader's state machine decides."""
        inside, last_close, prev = self._inside, self._last_close, self._prev
        delimiter = self._delimiter
        toggles = []
        for q in quotes.tolist():
            if inside:
                inside, last_close = 0, q + base
                toggles.append(q)
                continue
            before = int(buf[q - 1]) if q else prev
            if before in (delimiter, NL, CR, -1) or last_close == q + base - 1:
                inside = 1
                toggles.append(q)
            else:
                self.bare_quotes += 1
        self._last_close = last_close
        # self._inside is advanced by the caller from the number of toggles
        return np.array(toggles, dtype=np.int64)


def _no_ends() -> Ends:
    return Ends(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
