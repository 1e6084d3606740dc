"""The main job's input: which files, cut into parts that workers read in parallel, each part read
into Arrow tables (no Python object per row on the way in).

A part is a byte range that starts and ends on a record boundary (TSV, CSV, JSON lines, text) or a
run of row groups (Parquet), so a worker reads it alone and knows the number of its first row. The
planning pass reads every text file once, as counting its rows for the progress bar did anyway.
The rows are exactly the reference parsers': Python's ``csv`` module for CSV and TSV (record ends
found as it finds them, ``records``), ``json`` for JSON lines (a line each), pyarrow for Parquet.
Arrow's readers read each part where they agree with the reference; where they would not (a part
that is not UTF-8, a quoted value left open at the end of the file, a JSON line Arrow refuses) the
reference reads it, so rows classified + rows rejected are always the reference's rows.

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

from ..formats import input_format
from ..errors import UsageError
from .records import RecordScanner

FILE_COLUMN = "__beam_tensorrt_file"  # int32: the file's index in Source.files
ROW_COLUMN = "__beam_tensorrt_row"  # int64: the row's number in its file, from 1 (a header is not a row)
HIDDEN = (FILE_COLUMN, ROW_COLUMN)
SCAN_CHUNK = 1 << 26  # bytes read at a time by the planning pass
NEWLINE = 10
BOM = b"\xef\xbb\xbf"
DELIMITERS = {"tsv": "\t", "csv": ","}


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
    exact: bool = False  # read with Python's csv module (Arrow's reader would not read it as that does)


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
    """The column names: the file's first record, read as Python's ``csv`` module reads it."""
    with _open(path) as f:
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
    names = next(iter(_records(data[:end], fmt)), [])
    if not names or not "".join(names).strip():
        raise UsageError(f"--input {path!r} has no header row (a {fmt.upper()} file's first line names its columns)")
    return tuple(n.strip() for n in names)


def _records(data: bytes, fmt: str) -> list[list[str]]:
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


def columns(src: Source) -> Optional[list[str]]:
    """The input's columns where the format declares them (TSV/CSV headers, Parquet's schema);
    None for JSON lines and text."""
    schema = declared_schema(src, "")
    return None if schema is None or src.fmt == "txt" else schema.names


def declared_schema(src: Source, text_field: str) -> Optional[pa.Schema]:
    """The rows' schema where the format declares it (TSV/CSV: a string a header name; Parquet: its
    own; text: the one text field); None for JSON lines, whose fields are only known row by row."""
    if src.fmt in ("tsv", "csv"):
        return pa.schema([(name, pa.string()) for name in src.headers[0]])
    if src.fmt == "parquet":
        import pyarrow.parquet as pq

        with _open(src.files[0]) as f:
            return pq.ParquetFile(f).schema_arrow
    if src.fmt == "txt":
        return pa.schema([(text_field, pa.string())])
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
    if fmt in ("tsv", "csv"):
        return _plan_delimited(index, path, fmt, part_bytes)
    parts: list[Part] = []
    with _open(path) as f:
        start = len(BOM) if f.read(len(BOM)) == BOM else 0
        f.seek(start)
        offset, part_start, part_first, rows = start, start, 1, 0  # rows: lines ended since the part's start
        last_byte = b"\n"
        while chunk := f.read(SCAN_CHUNK):
            ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == NEWLINE) + offset
            for cut in _cuts(ends, part_start, part_bytes):
                n = rows + int(np.searchsorted(ends, cut - 1)) + 1
                parts.append(Part(index, part_start, cut, part_first, n))
                part_start, part_first, rows = cut, part_first + n, 0
                ends = ends[ends >= cut]
            rows += len(ends)
            offset += len(chunk)
            last_byte = chunk[-1:]
        if last_byte != b"\n" and offset > part_start:
            rows += 1  # a last line without a newline
        if offset > part_start:
            parts.append(Part(index, part_start, offset, part_first, rows))
    return parts


def _cuts(ends: np.ndarray, part_start: int, part_bytes: int) -> list[int]:
    """Where to cut after the record ends ``ends`` (ascending offsets of their last bytes): after the
    first end at or past each target size, counted from ``part_start``."""
    cuts = []
    while len(ends):
        i = int(np.searchsorted(ends, part_start + part_bytes - 1))
        if i >= len(ends):
            break
        part_start = int(ends[i]) + 1
        cuts.append(part_start)
        ends = ends[i + 1:]
    return cuts


def _plan_delimited(index: int, path: str, fmt: str, part_bytes: int) -> list[Part]:
    """Parts of a TSV or CSV file, cut after record ends as Python's ``csv`` module finds them
    (``records``), less the header; a part's rows are its records with something in them."""
    parts: list[Part] = []
    with _open(path) as f:
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
            for cut in _cuts(offsets, part_start, part_bytes):
                i = int(np.searchsorted(offsets, cut - 1))
                n = rows + int(counted[i]) - done
                if n:
                    parts.append(Part(index, part_start, cut, part_first, n))
                part_start, part_first, rows, done = cut, part_first + n, 0, int(counted[i])
            rows += (int(counted[-1]) if len(counted) else 0) - done

        while chunk := f.read(SCAN_CHUNK):
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
                tables.append(_utf8_checked(_numbered(pa.Table.from_batches([batch]), part.file, row), text_field, bad))
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
    table = _utf8_checked(table, text_field, bad)
    return [table.slice(i, batch_rows) for i in range(0, table.num_rows, batch_rows)] or [], bad


def _utf8_checked(table: pa.Table, text_field: str, bad: list[BadRow]) -> pa.Table:
    """``table`` less the rows whose string fields other than the text are not valid UTF-8, which go
    to ``bad`` (no writer could write them). The text field's are ClassifyTextBatches' to reject,
    as for every source of tables."""
    invalid: dict[int, str] = {}
    for name in table.column_names:
        column = table.column(name)
        if name == text_field or not pa.types.is_string(column.type):
            continue
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        for i, raw in enumerate(column.cast(pa.binary()).to_pylist()):
            if raw is not None and i not in invalid:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    invalid[i] = f"field '{name}' is not valid UTF-8 ({e.reason} at byte {e.start})"
    if not invalid:
        return table
    files, rows = table.column(FILE_COLUMN).to_pylist(), table.column(ROW_COLUMN).to_pylist()
    shown = table.drop_columns(list(HIDDEN))
    for i, reason in sorted(invalid.items()):
        values = _row_bytes_as_text(shown.slice(i, 1))
        bad.append(BadRow(files[i], rows[i], json.dumps(values, ensure_ascii=False, default=str), reason))
    keep = np.ones(table.num_rows, dtype=bool)
    keep[list(invalid)] = False
    return table.filter(pa.array(keep))


def _row_bytes_as_text(row: pa.Table) -> dict:
    """A one-row table as a dict, its strings decoded with what is not UTF-8 replaced."""
    out = {}
    for name in row.column_names:
        column = row.column(name)
        if pa.types.is_string(column.type):
            raw = column.cast(pa.binary())[0].as_py()
            out[name] = None if raw is None else raw.decode("utf-8", "replace")
        else:
            out[name] = column[0].as_py()
    return out


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

    if part.exact or not _is_utf8(data):
        # Arrow's reader cannot hand a row of the wrong length whose bytes are not UTF-8 to its
        # handler (it fails the whole part): Python's reader takes such a part.
        return _read_delimited_by_python(data, header, fmt, part, bad)
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
        return _read_delimited_by_python(data, header, fmt, part, bad)
    rows = None
    if invalid:
        skipped = np.array([n for n, _, _ in invalid], dtype=np.int64)
        every = np.arange(1, table.num_rows + len(invalid) + 1, dtype=np.int64)
        rows = np.setdiff1d(every, skipped) + part.first_row - 1
        for number, text, got in invalid:
            bad.append(BadRow(part.file, part.first_row + number - 1, text,
                              f"expected {len(names)} columns, got {got}"))
    return _numbered(table, part.file, part.first_row, rows)


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (Arrow's check, without a copy)."""
    offsets = np.array([0, len(data)], dtype=np.int32)
    try:
        pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]).validate(full=True)
        return True
    except pa.ArrowInvalid:
        return False


def _read_delimited_by_python(data: bytes, header: Sequence[str], fmt: str, part: Part,
                              bad: list[BadRow]) -> pa.Table:
    """The part read by Python's ``csv`` module itself (its values' bytes kept as they were)."""
    names = list(header)
    values: list[list[bytes]] = [[] for _ in names]
    numbers: list[int] = []
    row = part.first_row
    for record in _records(data, fmt):
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
    return _numbered(table, part.file, part.first_row, np.array(numbers, dtype=np.int64))


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
                    and pa.types.is_string(table.schema.field(text_field).type)
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
    # Every row's fields (``Table.from_pylist`` would take the first row's alone).
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
