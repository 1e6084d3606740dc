"""What the main job's input is made of, shared by its readers: the input's files, the parts that
workers read alone, the rows that cannot even be read, and the hidden columns that number each row
(the file's index in the job, the row's 1-based number in its file), so that rejected rows are
reported with their place and outputs are assembled in input order. Nothing here imports Beam."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa

FILE_COLUMN = "__beam_tensorrt_file"  # int32: the file's index in Source.files
ROW_COLUMN = "__beam_tensorrt_row"  # int64: the row's number in its file, from 1 (a header is not a row)
HIDDEN = (FILE_COLUMN, ROW_COLUMN)
SCAN_CHUNK = 1 << 26  # bytes read at a time by the planning pass
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
    exact: bool = False  # read with Python's csv module (Arrow's reader would not read it as that does)


@dataclass(frozen=True)
class BadRow:
    """A row that could not even be read (not JSON, the wrong number of columns, not UTF-8)."""

    file: int
    row: int
    text: str
    reason: str


def open_file(path: str):
    """``path`` opened for reading through Beam's FileSystems (local or any Beam filesystem)."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path, compression_type="uncompressed")


def cuts(ends: np.ndarray, part_start: int, part_bytes: int) -> list[int]:
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


def numbered(table: pa.Table, file: int, first_row: int, rows: Optional[np.ndarray] = None) -> pa.Table:
    numbers = rows if rows is not None else np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
    table = table.append_column(FILE_COLUMN, pa.array(np.full(table.num_rows, file, dtype=np.int32)))
    return table.append_column(ROW_COLUMN, pa.array(numbers, pa.int64()))


