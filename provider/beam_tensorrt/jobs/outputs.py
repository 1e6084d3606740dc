"""The main job's output. Workers write each table they classified, and the rows they rejected, to
files of their own in one temporary folder, named by their place in the input (file, first row) and
their row counts; the job then puts them together in input order (one output file, or ``--shards
N``) and removes the folder, also when the job fails or is interrupted. An output is written only
when the whole job succeeded, atomically where the filesystem allows: an earlier file of that name
is replaced whole or left alone. Nothing here imports Beam."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from ..errors import RejectedRow
from .parts import FILE_COLUMN, HIDDEN, ROW_COLUMN

# ClassifyTextBatches' truncation column, always asked for so the summary can count truncated rows;
# dropped from the output unless the user asked for one (--truncated-field).
TRUNCATED = "__beam_tensorrt_truncated"
_NAME = re.compile(r"^(\d+)-(\d+)\.(\d+)\.(\d+)\.(\w+)$")
_ERRORS = re.compile(r"^(\d+)-(\d+)\.(\d+)\.errors\.jsonl$")
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "tsv": "tsv", "parquet": "arrow"}  # temporary files' own


@dataclass
class Counts:
    classified: int = 0
    errors: int = 0
    truncated: int = 0


def temp_folder(output: str) -> str:
    """A folder for the workers' files: beside a local output (same filesystem), else the system's."""
    parent = os.path.dirname(os.path.abspath(output)) if "://" not in output else None
    if parent:
        os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=".beam-tensorrt-", dir=parent)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def json_line(value: Any) -> str:
    # default=str: Parquet columns may hold timestamps, dates and decimals, which JSON lacks
    return json.dumps(to_jsonable(value), ensure_ascii=False, default=str)


def _text_columns(table: pa.Table) -> pa.Table:
    """TSV and CSV hold no lists or structs: such columns are written as JSON text."""
    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            values = [None if v is None else json_line(v) for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(values, pa.string()))
    return table


def encode(table: pa.Table, fmt: str, header: bool = True) -> bytes:
    """``table`` in the output format (a temporary file's content; Parquet outputs go through Arrow's
    IPC format and are encoded once, when assembled); ``header``: CSV and TSV start with one."""
    if fmt == "jsonl":
        return "".join(json_line(row) + "\n" for row in table.to_pylist()).encode("utf-8")
    sink = io.BytesIO()
    if fmt in ("csv", "tsv"):
        import pyarrow.csv as pcsv

        pcsv.write_csv(_text_columns(table), sink, pcsv.WriteOptions(delimiter="\t" if fmt == "tsv" else ",",
                                                                      quoting_style="needed", include_header=header))
    else:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    return sink.getvalue()


def _empty_numbered(schema: pa.Schema) -> pa.Table:
    return schema.empty_table().append_column(FILE_COLUMN, pa.array([], pa.int32())).append_column(
        ROW_COLUMN, pa.array([], pa.int64()))


def write_table(folder: str, fmt: str, table: pa.Table, keep_truncated: Optional[str], keep_empty: bool = False) -> None:
    """Write a classified table (hidden columns dropped) to ``folder``, named by its place."""
    if not table.num_rows and not keep_empty:
        return
    file, row = (table.column(FILE_COLUMN)[0].as_py(), table.column(ROW_COLUMN)[0].as_py()) if table.num_rows else (0, 0)
    truncated = 0
    if TRUNCATED in table.column_names:
        truncated = int(pa.compute.sum(table.column(TRUNCATED)).as_py() or 0)
        if keep_truncated:
            table = table.rename_columns([keep_truncated if n == TRUNCATED else n for n in table.column_names])
    table = table.drop_columns([n for n in (*HIDDEN, TRUNCATED) if n in table.column_names])
    name = f"{file:06d}-{row:012d}.{table.num_rows}.{truncated}.{EXTENSIONS[fmt]}"
    _publish(Path(folder) / name, encode(table, fmt))


def error_record(element: Any, msg: str, stack: str, files: Sequence[str]) -> tuple[int, int, dict]:
    """(file index, row, the errors file's record) of a rejected row: where it is, what it held, why."""
    file, row = -1, 0
    if isinstance(element, dict) and ROW_COLUMN in element:
        element = dict(element)
        file, row = int(element.pop(FILE_COLUMN)), int(element.pop(ROW_COLUMN))
        element.pop(TRUNCATED, None)
    record = {"file": files[file] if file >= 0 else None, "row": row, "element": element, "msg": msg}
    if stack:
        record["stack"] = stack
    return file, row, record


def write_errors(folder: str, records: Sequence[tuple[int, int, dict]]) -> None:
    """Write rejected rows (``error_record``s, sorted by place) to ``folder`` in one file."""
    if not records:
        return
    records = sorted(records, key=lambda r: (r[0], r[1]))
    file, row, _ = records[0]
    name = f"{max(file, 0):06d}-{row:012d}.{len(records)}.errors.jsonl"
    _publish(Path(folder) / name, "".join(json_line(r) + "\n" for _, _, r in records).encode("utf-8"))


def write_rejected(folder: str, rejected: RejectedRow) -> None:
    """Record the row that stops a job without an errors file (``first_rejected`` reads it back)."""
    record = {"reason": rejected.reason, "file": rejected.file, "row": rejected.row, "shown": rejected.shown}
    _publish(Path(folder) / f"rejected-{uuid.uuid4().hex}.json", json.dumps(record).encode("utf-8"))


def first_rejected(folder: str) -> Optional[RejectedRow]:
    """The first row (in input order) recorded by ``write_rejected``, or None."""
    records = []
    for path in Path(folder).glob("rejected-*.json"):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(path.read_text(encoding="utf-8")))
    if not records:
        return None
    r = min(records, key=lambda r: (r["file"] or "", r["row"]))
    return RejectedRow.of(r["reason"], r["file"], r["row"], r["shown"])


def _publish(path: Path, data: bytes) -> None:
    """Write under a temporary name, then rename: progress counts only whole files."""
    tmp = path.with_name("." + path.name)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def counts(folder: str) -> Counts:
    """What the workers have written so far (the progress line, and the summary at the end)."""
    c = Counts()
    try:
        names = os.listdir(folder)
    except OSError:
        return c
    for name in names:
        if m := _NAME.match(name):
            c.classified += int(m.group(3))
            c.truncated += int(m.group(4))
        elif m := _ERRORS.match(name):
            c.errors += int(m.group(3))
    return c


ARROW_TYPES = {str: pa.string(), float: pa.float64(), bool: pa.bool_()}


def output_schema(columns: Optional[pa.Schema], predictions: Sequence[tuple[str, Any]]) -> Optional[pa.Schema]:
    """The output's schema: the input's declared columns, then the prediction fields (``(name,
    Python type)``, as ``ClassifyTextConfig.output_fields`` lists them); None where the input
    declares none (JSON lines)."""
    if columns is None:
        return None
    added = [(name, ARROW_TYPES.get(kind, pa.list_(pa.float64()))) for name, kind in predictions]
    return pa.schema([*columns, *added])


def assemble(folder: str, output: str, fmt: str, shards: int, errors_path: Optional[str],
             schema: Optional[pa.Schema] = None) -> tuple[Counts, list[str]]:
    """Put the workers' files together in input order: ``output`` (or ``shards`` files named after
    it) and the errors file; returns the counts and the files written. ``schema``: what an output
    with no row holds (Parquet's columns, a CSV header)."""
    names = sorted(n for n in os.listdir(folder) if _NAME.match(n))
    if not names and schema is not None:  # no row: an empty table keeps the columns
        write_table(folder, fmt, _empty_numbered(schema), None, keep_empty=True)
        names = sorted(n for n in os.listdir(folder) if _NAME.match(n))
    errors = sorted(n for n in os.listdir(folder) if _ERRORS.match(n))
    written = []
    targets = shard_names(output, shards)
    for target, group in zip(targets, _split(names, len(targets))):
        _assemble_one([Path(folder) / n for n in group], target, fmt)
        written.append(target)
    if errors_path:  # written also when empty: a script counting its lines finds 0, not a missing file
        if errors or "://" not in errors_path:
            _concatenate([Path(folder) / n for n in errors], errors_path, skip_first_line=False)
        else:
            _empty_remote(errors_path)
    return counts(folder), written


def _empty_remote(path: str) -> None:
    """An empty file on a Beam filesystem, where it can make one: Beam's S3 filesystem cannot (an
    upload of no part is refused), so there an earlier run's file is removed and none is left."""
    from apache_beam.io.filesystems import FileSystems

    try:
        FileSystems.create(path).close()
    except Exception:
        if FileSystems.exists(path):
            FileSystems.delete([path])


def shard_names(output: str, shards: int) -> list[str]:
    if shards <= 1:
        return [output]
    stem, dot, ext = output.rpartition(".")
    return [f"{stem}-{i:05d}-of-{shards:05d}.{ext}" for i in range(shards)]


def _split(names: list[str], n: int) -> list[list[str]]:
    """``names`` in order, cut into ``n`` runs of about the same number of rows."""
    rows = [int(_NAME.match(name).group(3)) for name in names]  # type: ignore[union-attr]
    total, done = sum(rows), 0
    groups: list[list[str]] = []
    current: list[str] = []
    for name, count in zip(names, rows):
        current.append(name)
        done += count
        if len(groups) < n - 1 and done >= total * (len(groups) + 1) / n:
            groups.append(current)
            current = []
    groups.append(current)
    return groups + [[] for _ in range(n - len(groups))]


def _assemble_one(paths: list[Path], target: str, fmt: str) -> None:
    if fmt == "parquet":
        _write_parquet(paths, target)
    else:
        _concatenate(paths, target, skip_first_line=fmt in ("csv", "tsv"))


def _opened(target: str):
    """A writable file for ``target``, replaced atomically where it is local."""
    from apache_beam.io.filesystems import FileSystems

    if "://" in target:
        return FileSystems.create(target), None
    tmp = Path(target).with_name(f".{Path(target).name}.writing")
    return open(tmp, "wb"), tmp


def _commit(target: str, tmp: Optional[Path]) -> None:
    if tmp is not None:
        os.replace(tmp, target)


def _concatenate(paths: list[Path], target: str, skip_first_line: bool) -> None:
    out, tmp = _opened(target)
    try:
        with out:
            for i, path in enumerate(paths):
                with open(path, "rb") as f:
                    if skip_first_line and i:
                        f.readline()  # the header, written once
                    shutil.copyfileobj(f, out, 1 << 22)
        _commit(target, tmp)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def _write_parquet(paths: list[Path], target: str) -> None:
    import pyarrow.parquet as pq

    tables = [pa.ipc.open_file(pa.memory_map(str(p))).read_all() for p in paths]
    schema = pa.unify_schemas([t.schema for t in tables], promote_options="permissive") if tables else pa.schema([])
    out, tmp = _opened(target)
    try:
        with out, pq.ParquetWriter(out, schema) as writer:
            for table in tables:
                writer.write_table(_conform(table, schema))
        _commit(target, tmp)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns, in its order (absent ones null, others cast)."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)
