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

Nothing here imports Beam: files are opened through Beam's FileSystems when it is loaded.
"""
from __future__ import annotations

import json
from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa

from ..errors import UsageError
from ..formats import input_format
from . import delimited
from . import parts as _parts
from .parts import BOM, FILE_COLUMN, HIDDEN, ROW_COLUMN, BadRow, Part, Source, cuts, numbered, open_file


def list_files(path: str, setting: str = "--input") -> list[str]:
    """The files ``path`` names: a file, a directory (its files with a known extension, not hidden),
    or a glob (``data/*.csv``), through Beam's FileSystems (local or ``gs://``, ``s3://``...);
    ``setting``: what named the path, for the error."""
    import os

    from apache_beam.io.filesystems import FileSystems

    from ..formats import INPUT_FORMATS, is_pattern, suffix

    directory = path.endswith("/") or ("://" not in path and os.path.isdir(path))
    pattern = path.rstrip("/") + "/*" if directory else path
    try:
        found = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception as e:  # an unknown scheme, a filesystem Beam has not installed, no credentials...
        raise UsageError(f"{setting} {path!r}: cannot be read: {e}") from None
    if directory:
        found = [f for f in found if suffix(f) in INPUT_FORMATS
                 and not f.rstrip("/").rsplit("/", 1)[-1].startswith((".", "_"))]
    if not found:
        what = "holds no file with a known extension" if directory else (
            "matches no file" if is_pattern(path) else "no such file")
        raise UsageError(f"{setting} {path!r}: {what}")
    return found


def source(path: str, setting: str = "--input") -> Source:
    """The job's input, its format checked (one for all files) and TSV/CSV headers read."""
    files = list_files(path, setting)
    formats = {input_format(f, setting) for f in files}
    if len(formats) > 1:
        raise UsageError(f"{setting} {path!r} holds files of several formats ({', '.join(sorted(formats))}); "
                         "name one with a glob, e.g. '*.csv'")
    fmt = formats.pop()
    headers = tuple(delimited.header(f, fmt) for f in files) if fmt in ("tsv", "csv") else ()
    return Source(tuple(files), fmt, headers)


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

        with open_file(src.files[0]) as f:
            return pq.ParquetFile(f).schema_arrow
    if src.fmt == "txt":
        return pa.schema([(text_field, pa.string())])
    return None


# -- planning ------------------------------------------------------------------------------------

def plan(src: Source, part_bytes: int, part_rows: int) -> list[Part]:
    """Cut the input into parts of about ``part_bytes`` (text) or ``part_rows`` (Parquet)."""
    return [part for index in range(len(src.files)) for part in plan_file(src, index, part_bytes, part_rows)]


def plan_file(src: Source, index: int, part_bytes: int, part_rows: int) -> list[Part]:
    """The parts of ``src.files[index]`` alone (its rows numbered from 1): what a worker plans for
    one file when the files are spread over the workers before they are cut."""
    path = src.files[index]
    return _plan_parquet(index, path, part_rows) if src.fmt == "parquet" else _plan_text(index, path, src.fmt, part_bytes)


def _plan_parquet(index: int, path: str, part_rows: int) -> list[Part]:
    import pyarrow.parquet as pq

    with open_file(path) as f:
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
        return delimited.plan(index, path, fmt, part_bytes)
    parts: list[Part] = []
    with open_file(path) as f:
        start = len(BOM) if f.read(len(BOM)) == BOM else 0
        f.seek(start)
        offset, part_start, part_first, rows = start, start, 1, 0  # rows: lines ended since the part's start
        last_byte = b"\n"
        while chunk := f.read(_parts.SCAN_CHUNK):
            ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("\n")) + offset
            for cut in cuts(ends, part_start, part_bytes):
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


# -- reading a part ------------------------------------------------------------------------------

def read_part(src: Source, part: Part, text_field: str, batch_rows: int,
              check_text: bool = False) -> tuple[list[pa.Table], list[BadRow]]:
    """The part's rows as Arrow tables of at most ``batch_rows`` rows, and the rows that could not be
    read. TSV and CSV values are strings; Parquet keeps its types; JSON lines' types are inferred.
    The text field's UTF-8 is left to ClassifyTextBatches to check unless ``check_text``."""
    unchecked = "" if check_text else text_field  # the field whose UTF-8 is left alone
    path = src.files[part.file]
    bad: list[BadRow] = []
    if src.fmt == "parquet":
        import pyarrow.parquet as pq

        tables = []
        with open_file(path) as f:
            row = part.first_row
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows,
                                                        row_groups=list(range(part.start, part.end))):
                tables.append(_utf8_checked(numbered(pa.Table.from_batches([batch]), part.file, row), unchecked, bad))
                row += batch.num_rows
        return tables, bad
    with open_file(path) as f:
        f.seek(part.start)
        data = f.read(part.end - part.start)
    if src.fmt == "txt":
        table = _read_text(data, text_field, part)
    elif src.fmt == "jsonl":
        table = _read_json_lines(data, text_field, part, bad)
    else:
        table = delimited.read(data, src.headers[part.file], src.fmt, part, bad)
    table = _utf8_checked(table, unchecked, bad)
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


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _read_text(data: bytes, text_field: str, part: Part) -> pa.Table:
    # Bytes viewed as strings, unchecked: ClassifyTextBatches sends text that is not UTF-8 to the error
    # output with its row, instead of the whole part failing here.
    texts = pa.array(_lines(data), pa.binary()).view(pa.string())
    return numbered(pa.table({text_field: texts}), part.file, part.first_row)


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
                return numbered(table, part.file, part.first_row)
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
    return numbered(table, part.file, part.first_row, np.array(numbers, dtype=np.int64))


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
