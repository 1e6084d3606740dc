"""The main job's input: which files, cut into parts that workers read in parallel, each part read
into Arrow tables (no Python object per row on the way in).

A part is a byte range that starts and ends on a record boundary (TSV, CSV, JSON lines, text) or a
run of row groups (Parquet), so a worker reads it alone and knows the number of its first row. The
planning pass reads every text file once, as counting its rows for the progress bar did anyway: a
CSV record ends at a newline preceded by an even number of quote characters (RFC 4180 doubles the
quotes inside a quoted value), so values that span lines stay whole.

Every table carries two hidden columns, the file's index in the job and the row's 1-based number in
that file, so that rejected rows are reported with their place and outputs are assembled in input
order. Nothing here imports Beam: files are opened through Beam's FileSystems when it is loaded.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa

from ..formats import UsageError, input_format

FILE_COLUMN = "__beam_tensorrt_file"  # int32: the file's index in Source.files
ROW_COLUMN = "__beam_tensorrt_row"  # int64: the row's number in its file, from 1 (a header is not a row)
HIDDEN = (FILE_COLUMN, ROW_COLUMN)
SCAN_CHUNK = 1 << 26  # bytes read at a time by the planning pass
NEWLINE, QUOTE = 10, 34
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Source:
    """The job's input files, of one format; ``headers``: each TSV/CSV file's column names."""

    files: tuple[str, ...]
    fmt: str
    headers: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Part:
    """What one worker reads: bytes ``[start, end)`` of a text file, or row groups ``[start, end)``
    of a Parquet file, whose first row is row ``first_row`` of file ``file``."""

    file: int
    start: int
    end: int
    first_row: int
    rows: int


@dataclass(frozen=True)
class BadRow:
    """A row that could not even be read (not JSON, the wrong number of columns, not UTF-8)."""

    file: int
    row: int
    text: str
    reason: str


def _open(path: str):
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path, compression_type="uncompressed")


def list_files(path: str) -> list[str]:
    """The files ``path`` names: a file, a directory (its files with a known extension, not hidden),
    or a glob (``data/*.csv``), through Beam's FileSystems (local or ``gs://``, ``s3://``...)."""
    import os

    from apache_beam.io.filesystems import FileSystems

    from ..formats import INPUT_FORMATS, is_pattern, suffix

    directory = path.endswith("/") or ("://" not in path and os.path.isdir(path))
    pattern = path.rstrip("/") + "/*" if directory else path
    try:
        found = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception as e:  # an unknown scheme, a filesystem Beam has not installed, no credentials...
        raise UsageError(f"--input {path!r}: cannot be read: {e}") from None
    if directory:
        found = [f for f in found if suffix(f) in INPUT_FORMATS
                 and not f.rstrip("/").rsplit("/", 1)[-1].startswith((".", "_"))]
    if not found:
        what = "holds no file with a known extension" if directory else (
            "matches no file" if is_pattern(path) else "no such file")
        raise UsageError(f"--input {path!r}: {what}")
    return found


def source(path: str) -> Source:
    """The job's input, its format checked (one for all files) and TSV/CSV headers read."""
    files = list_files(path)
    formats = {input_format(f) for f in files}
    if len(formats) > 1:
        raise UsageError(f"--input {path!r} holds files of several formats ({', '.join(sorted(formats))}); "
                         "name one with a glob, e.g. '*.csv'")
    fmt = formats.pop()
    headers = tuple(_header(f, fmt) for f in files) if fmt in ("tsv", "csv") else ()
    return Source(tuple(files), fmt, headers)


def _header(path: str, fmt: str) -> tuple[str, ...]:
    with _open(path) as f:
        line = io.TextIOWrapper(f, encoding="utf-8-sig", errors="replace", newline="").readline()
    delimiter = "\t" if fmt == "tsv" else ","
    names = next(csv.reader([line], delimiter=delimiter,
                            quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL), [])
    if not names or not "".join(names).strip():
        raise UsageError(f"--input {path!r} has no header row (a {fmt.upper()} file's first line names its columns)")
    return tuple(n.strip() for n in names)


def columns(src: Source) -> Optional[list[str]]:
    """The input's columns where the format declares them (TSV/CSV headers, Parquet's schema);
    None for JSON lines and text."""
    if src.fmt in ("tsv", "csv"):
        return list(src.headers[0])
    if src.fmt == "parquet":
        import pyarrow.parquet as pq

        with _open(src.files[0]) as f:
            return list(pq.ParquetFile(f).schema_arrow.names)
    return None


# -- planning ------------------------------------------------------------------------------------

def plan(src: Source, part_bytes: int, part_rows: int) -> list[Part]:
    """Cut the input into parts of about ``part_bytes`` (text) or ``part_rows`` (Parquet)."""
    parts: list[Part] = []
    for index, path in enumerate(src.files):
        if src.fmt == "parquet":
            parts += _plan_parquet(index, path, part_rows)
        else:
            parts += _plan_text(index, path, src.fmt, part_bytes)
    return parts


def _plan_parquet(index: int, path: str, part_rows: int) -> list[Part]:
    import pyarrow.parquet as pq

    with _open(path) as f:
        meta = pq.ParquetFile(f).metadata
    parts, start, first, rows = [], 0, 1, 0
    for group in range(meta.num_row_groups):
        rows += meta.row_group(group).num_rows
        if rows >= part_rows or group == meta.num_row_groups - 1:
            parts.append(Part(index, start, group + 1, first, rows))
            start, first, rows = group + 1, first + rows, 0
    return parts


def _plan_text(index: int, path: str, fmt: str, part_bytes: int) -> list[Part]:
    """Parts of a text file, cut after record ends, with the number of each part's first row."""
    quoted = fmt == "csv"
    parts: list[Part] = []
    with _open(path) as f:
        head = f.read(len(BOM))
        start = len(BOM) if head == BOM else 0
        if fmt in ("tsv", "csv"):  # the header: up to its first record end
            f.seek(start)
            first = f.readline()
            start += len(first)
        f.seek(start)
        offset, parity = start, 0  # bytes read so far; quote characters seen, mod 2
        part_start, part_first, rows = start, 1, 0  # rows: records ended since the part's start
        last_byte = b"\n"
        while chunk := f.read(SCAN_CHUNK):
            data = np.frombuffer(chunk, dtype=np.uint8)
            newlines = np.flatnonzero(data == NEWLINE)
            if quoted:
                quotes = np.cumsum(data == QUOTE, dtype=np.int64)
                ends = newlines[(parity + quotes[newlines]) % 2 == 0] if len(newlines) else newlines
                parity = int(parity + (quotes[-1] if len(quotes) else 0)) % 2
            else:
                ends = newlines
            ends = ends + offset  # absolute offsets of the newlines that end records
            # Cut after the first record end past each target size within this chunk.
            while len(ends):
                target = part_start + part_bytes
                i = int(np.searchsorted(ends, target - 1))
                if i >= len(ends):
                    break
                cut = int(ends[i]) + 1
                n = rows + i + 1
                parts.append(Part(index, part_start, cut, part_first, n))
                part_start, part_first, rows = cut, part_first + n, 0
                ends = ends[i + 1:]
            rows += len(ends)
            offset += len(chunk)
            last_byte = chunk[-1:]
        if last_byte != b"\n" and offset > part_start:
            rows += 1  # a last record without a newline
        if rows:
            parts.append(Part(index, part_start, offset, part_first, rows))
    return parts


# -- reading a part ------------------------------------------------------------------------------

def read_part(src: Source, part: Part, text_field: str, batch_rows: int) -> tuple[list[pa.Table], list[BadRow]]:
    """The part's rows as Arrow tables of at most ``batch_rows`` rows, and the rows that could not be
    read. TSV and CSV values are strings; Parquet keeps its types; JSON lines' types are inferred."""
    path = src.files[part.file]
    bad: list[BadRow] = []
    if src.fmt == "parquet":
        import pyarrow.parquet as pq

        tables = []
        with _open(path) as f:
            row = part.first_row
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows,
                                                        row_groups=list(range(part.start, part.end))):
                tables.append(_numbered(pa.Table.from_batches([batch]), part.file, row))
                row += batch.num_rows
        return tables, bad
    with _open(path) as f:
        f.seek(part.start)
        data = f.read(part.end - part.start)
    if src.fmt == "txt":
        table = _read_text(data, text_field, part)
    elif src.fmt == "jsonl":
        table = _read_json_lines(data, text_field, part, bad)
    else:
        table = _read_delimited(data, src.headers[part.file], src.fmt, part, bad)
    return [table.slice(i, batch_rows) for i in range(0, table.num_rows, batch_rows)] or [], bad


def _numbered(table: pa.Table, file: int, first_row: int, rows: Optional[np.ndarray] = None) -> pa.Table:
    numbers = rows if rows is not None else np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
    table = table.append_column(FILE_COLUMN, pa.array(np.full(table.num_rows, file, dtype=np.int32)))
    return table.append_column(ROW_COLUMN, pa.array(numbers, pa.int64()))


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _read_text(data: bytes, text_field: str, part: Part) -> pa.Table:
    # Bytes viewed as strings, unchecked: ClassifyTextBatches sends text that is not UTF-8 to the error
    # output with its row, instead of the whole part failing here.
    texts = pa.array(_lines(data), pa.binary()).view(pa.string())
    return _numbered(pa.table({text_field: texts}), part.file, part.first_row)


def _read_delimited(data: bytes, header: Sequence[str], fmt: str, part: Part, bad: list[BadRow]) -> pa.Table:
    import pyarrow.csv as pcsv

    invalid: list[tuple[int, str, int]] = []

    def on_invalid(row) -> str:
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    names = list(header)
    table = pcsv.read_csv(
        pa.py_buffer(data),
        read_options=pcsv.ReadOptions(column_names=names, use_threads=False, block_size=max(len(data), 1) + 1),
        parse_options=pcsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",",
                                        quote_char=False if fmt == "tsv" else '"',
                                        newlines_in_values=fmt == "csv", invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, check_utf8=False,
                                            strings_can_be_null=False, quoted_strings_can_be_null=False))
    rows = None
    if invalid:
        skipped = np.array([n for n, _, _ in invalid], dtype=np.int64)
        every = np.arange(1, table.num_rows + len(invalid) + 1, dtype=np.int64)
        rows = np.setdiff1d(every, skipped) + part.first_row - 1
        for number, text, got in invalid:
            bad.append(BadRow(part.file, part.first_row + number - 1, text,
                              f"expected {len(names)} columns, got {got}"))
    return _numbered(table, part.file, part.first_row, rows)


def _read_json_lines(data: bytes, text_field: str, part: Part, bad: list[BadRow]) -> pa.Table:
    """Arrow's JSON reader for the part; where it refuses (a line that is not a JSON object, text
    that is not UTF-8, a field whose type changes between rows) or the text field is missing from a
    row, the part again line by line, so that only the bad rows are rejected, each with its reason."""
    import pyarrow.json as pjson

    if data.strip():
        try:
            table = pjson.read_json(pa.py_buffer(data), read_options=pjson.ReadOptions(
                use_threads=False, block_size=max(len(data), 1) + 1))
            # Arrow skips blank lines (rows here, rejected below): then its count falls short.
            if (table.num_rows == part.rows and text_field in table.column_names
                    and not table.column(text_field).null_count):
                return _numbered(table, part.file, part.first_row)
        except pa.ArrowInvalid:
            pass
    return _read_json_lines_one_by_one(data, text_field, part, bad)


def _read_json_lines_one_by_one(data: bytes, text_field: str, part: Part, bad: list[BadRow]) -> pa.Table:
    objects: list[dict] = []
    numbers: list[int] = []
    for i, raw in enumerate(_lines(data)):
        row = part.first_row + i
        reason, obj = _json_object(raw, text_field)
        if reason:
            bad.append(BadRow(part.file, row, raw.decode("utf-8", "replace"), reason))
            continue
        objects.append(obj)
        numbers.append(row)
    table = _table_of(objects, text_field)
    return _numbered(table, part.file, part.first_row, np.array(numbers, dtype=np.int64))


def _json_object(raw: bytes, text_field: str) -> tuple[str, Any]:
    """(why the line cannot be a row, or "", the object)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not valid UTF-8 ({e.reason} at byte {e.start})", None
    if not line.strip():
        return "an empty line, not a JSON object", None
    try:
        obj = json.loads(line)
    except ValueError as e:
        return f"invalid JSON: {e}", None
    if not isinstance(obj, dict):
        return f"a JSON {type(obj).__name__}, not an object", None
    if text_field not in obj:
        return f"field '{text_field}' is missing (row has: {', '.join(obj) or 'no fields'})", None
    text = obj[text_field]
    if text is not None and not isinstance(text, str):
        return f"field '{text_field}' must be a string, got {type(text).__name__}", None
    return "", obj


def _table_of(objects: list[dict], text_field: str) -> pa.Table:
    """Rows as a table; a field whose values Arrow cannot type together is kept as JSON text."""
    if not objects:
        return pa.table({text_field: pa.array([], pa.string())})
    try:
        return pa.Table.from_pylist(objects)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    names = list(dict.fromkeys(k for obj in objects for k in obj))
    columns = {}
    for name in names:
        values = [obj.get(name) for obj in objects]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[name] = pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values],
                                     pa.string())
    return pa.table(columns)


def count_rows(parts: Sequence[Part]) -> int:
    return sum(p.rows for p in parts)
