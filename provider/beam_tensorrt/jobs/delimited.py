"""CSV and TSV for the main job: the header, parts cut where Python's ``csv`` module ends records
(``records.RecordScanner``), and each part read into an Arrow table by Arrow's reader where it reads
as that module does, by the module itself where it would not (a part that is not UTF-8, a quoted
value left open at the end of the file, whatever else Arrow refuses)."""
from __future__ import annotations

import csv
import io
from typing import Sequence

import numpy as np
import pyarrow as pa

from ..errors import UsageError
from . import parts as _parts
from .parts import BOM, BadRow, Part, cuts, numbered, open_file
from .records import RecordScanner

DELIMITERS = {"tsv": "\t", "csv": ","}


def header(path: str, fmt: str) -> tuple[str, ...]:
    """The column names: the file's first record, read as Python's ``csv`` module reads it."""
    with open_file(path) as f:
        start = len(BOM) if f.read(len(BOM)) == BOM else 0
        f.seek(start)
        scanner = RecordScanner(DELIMITERS[fmt], quoted=fmt == "csv", start=start)
        data = b""
        while chunk := f.read(1 << 16):
            data += chunk
            if len(scanner.feed(chunk).offsets):
                break
        else:
            scanner.finish()
        end = scanner.last_end + 1 - start if scanner.last_end >= start else len(data)
    names = next(iter(records(data[:end], fmt)), [])
    if not names or not "".join(names).strip():
        raise UsageError(f"--input {path!r} has no header row (a {fmt.upper()} file's first line names its columns)")
    return tuple(n.strip() for n in names)


def records(data: bytes, fmt: str) -> list[list[str]]:
    """Python's ``csv`` reader over ``data`` in the documented dialect (bytes that are not UTF-8
    kept as surrogates), blank records included as ``[]``, values of any length (the module's
    default limit, 128 kB, is lifted while it reads, as Arrow has none)."""
    text = io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(data)))
    try:
        if fmt == "tsv":
            return list(csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE))
        return list(csv.reader(text))
    finally:
        csv.field_size_limit(limit)


def plan(index: int, path: str, fmt: str, part_bytes: int) -> list[Part]:
    """Parts of a TSV or CSV file, cut after record ends as Python's ``csv`` module finds them
    (``records``), less the header; a part's rows are its records with something in them."""
    parts: list[Part] = []
    with open_file(path) as f:
        start = len(BOM) if f.read(len(BOM)) == BOM else 0
        f.seek(start)
        scanner = RecordScanner(DELIMITERS[fmt], quoted=fmt == "csv", start=start)
        offset, part_start, part_first, rows = start, None, 1, 0
        chunk = b""

        def settle(ends) -> None:
            nonlocal part_start, part_first, rows
            offsets, is_row = ends.offsets, ends.rows
            if part_start is None:  # the first record is the header
                if not len(offsets):
                    return
                part_start = int(offsets[0]) + 1
                offsets, is_row = offsets[1:], is_row[1:]
            counted = np.cumsum(is_row)
            done = 0
            for cut in cuts(offsets, part_start, part_bytes):
                i = int(np.searchsorted(offsets, cut - 1))
                n = rows + int(counted[i]) - done
                if n:
                    parts.append(Part(index, part_start, cut, part_first, n))
                part_start, part_first, rows, done = cut, part_first + n, 0, int(counted[i])
            rows += (int(counted[-1]) if len(counted) else 0) - done

        while chunk := f.read(_parts.SCAN_CHUNK):
            settle(scanner.feed(chunk))
            offset += len(chunk)
        settle(scanner.finish())
        if part_start is None:
            return parts  # a header and nothing else
        if scanner.tail_is_row(offset):
            rows += 1  # a last record without a newline
        if rows:
            # A quoted value still open at the end of the file runs to its end in Python's reader
            # (Arrow's rejects the record): that part is read by Python's reader.
            parts.append(Part(index, part_start, offset, part_first, rows, exact=scanner.inside_quotes))
    return parts


def read(data: bytes, header: Sequence[str], fmt: str, part: Part, bad: list[BadRow]) -> pa.Table:
    import pyarrow.csv as pcsv

    if part.exact or not _is_utf8(data):
        # Arrow's reader cannot hand a row of the wrong length whose bytes are not UTF-8 to its
        # handler (it fails the whole part): Python's reader takes such a part.
        return read_by_python(data, header, fmt, part, bad)
    invalid: list[tuple[int, str, int]] = []

    def on_invalid(row) -> str:
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    names = list(header)
    try:
        table = pcsv.read_csv(
            pa.py_buffer(data),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=False, block_size=max(len(data), 1) + 1),
            parse_options=pcsv.ParseOptions(delimiter=DELIMITERS[fmt], quote_char=False if fmt == "tsv" else '"',
                                            newlines_in_values=fmt == "csv", invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, check_utf8=False,
                                                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid:  # whatever else Arrow's reader refuses, Python's reads
        return read_by_python(data, header, fmt, part, bad)
    rows = None
    if invalid:
        skipped = np.array([n for n, _, _ in invalid], dtype=np.int64)
        every = np.arange(1, table.num_rows + len(invalid) + 1, dtype=np.int64)
        rows = np.setdiff1d(every, skipped) + part.first_row - 1
        for number, text, got in invalid:
            bad.append(BadRow(part.file, part.first_row + number - 1, text,
                              f"expected {len(names)} columns, got {got}"))
    return numbered(table, part.file, part.first_row, rows)


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (Arrow's check, without a copy)."""
    offsets = np.array([0, len(data)], dtype=np.int32)
    try:
        pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]).validate(full=True)
        return True
    except pa.ArrowInvalid:
        return False


def read_by_python(data: bytes, header: Sequence[str], fmt: str, part: Part,
                              bad: list[BadRow]) -> pa.Table:
    """The part read by Python's ``csv`` module itself (its values' bytes kept as they were)."""
    names = list(header)
    values: list[list[bytes]] = [[] for _ in names]
    numbers: list[int] = []
    row = part.first_row
    for record in records(data, fmt):
        if not record:
            continue  # a blank line: no row
        if len(record) != len(names):
            bad.append(BadRow(part.file, row, DELIMITERS[fmt].join(record).encode("utf-8", "surrogateescape")
                              .decode("utf-8", "replace"), f"expected {len(names)} columns, got {len(record)}"))
        else:
            for column, value in zip(values, record):
                column.append(value.encode("utf-8", "surrogateescape"))
            numbers.append(row)
        row += 1
    table = pa.table({n: pa.array(v, pa.binary()).view(pa.string()) for n, v in zip(names, values)})
    return numbered(table, part.file, part.first_row, np.array(numbers, dtype=np.int64))
