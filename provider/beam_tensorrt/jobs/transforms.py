"""The main job's readers and writers as Beam transforms: ``ReadFiles`` and ``WriteFiles``, for Beam
YAML (``type: ReadFiles``) and Python pipelines.

Beam YAML's own ``ReadFromCsv``/``WriteToCsv`` go through pandas a row at a time and stop a
pipeline at a malformed row; on an H100 a CSV → ClassifyText → CSV pipeline ran 0.16x the main
job's CSV path (issue 38). These read the input the way ``beam-tensorrt classify`` does: each file
cut into parts that the workers read alone, each part's rows leaving as Arrow tables (Beam batches:
ClassifyText and ``WriteFiles`` take them whole, with no Beam element a row), and a row that cannot
be read (the wrong number of columns, not UTF-8) goes to the error output with its file, row
number and the reason. ``WriteFiles`` writes each bundle's tables into one file through Beam's
``fileio.WriteToFiles`` (temporary files, then moved to their final names).
"""
from __future__ import annotations

import io
from typing import Any, Mapping, Optional

import apache_beam as beam
from apache_beam.io import fileio

from ..arrow_rows import TablesToRowBatches, to_tables
from ..config import TABLE_ROWS
from ..errors import ConfigError, UsageError
from ..rows import ERRORS_TAG, fail_on_error_row
from . import PART_BYTES, inputs, outputs
from .parts import HIDDEN, Part, Source

WRITE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
EXTENSIONS = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}


def _error_output(error_handling: Optional[Mapping[str, Any]]) -> Optional[str]:
    if error_handling is None:
        return None
    output = error_handling.get("output") if isinstance(error_handling, Mapping) else None
    if not isinstance(output, str) or not output:
        raise ConfigError("error_handling", f"must be {{output: NAME}}, got {error_handling!r}")
    return output


def row_type_of(schema: Any) -> Any:
    """The Beam row type of an Arrow schema (what a PCollection of its rows is typed as)."""
    from apache_beam.typehints.arrow_type_compatibility import beam_schema_from_arrow_schema
    from apache_beam.typehints.row_type import RowTypeConstraint
    from apache_beam.typehints.schemas import named_tuple_from_schema

    return RowTypeConstraint.from_user_type(named_tuple_from_schema(beam_schema_from_arrow_schema(schema)))


class ReadFiles(beam.PTransform):
    """CSV, TSV, Parquet or text files (a file, a directory or a glob, on any Beam filesystem) ->
    schema'd rows, read in parts spread over the workers, as Arrow tables.

    The rows' schema is known when the pipeline is built: CSV and TSV columns are strings named
    by the header (every file's header must be the same), Parquet keeps its own types, a text
    file's lines are one string field. JSON lines files declare none: read them with Beam's
    ``ReadFromJson`` or with ``beam-tensorrt classify``.

    Example (Beam YAML)::

        - type: ReadFiles
          config: {path: "reviews-*.csv", error_handling: {output: unreadable}}

    Args:
        path: a file, a directory (its files with a known extension) or a glob, local or on any
            Beam filesystem; the format follows the extension (.csv, .tsv, .parquet, .txt).
        text_field: the field a text file's lines go to (``text``).
        error_handling: ``{output: NAME}``: rows that cannot be read go to the output NAME as
            ``element: {file, row, line}``, ``msg``, ``stack``; without it the first one fails the
            pipeline, naming its file and row.
    """

    def __init__(self, path: str, text_field: str = "text", error_handling: Optional[Mapping[str, Any]] = None):
        super().__init__()
        if not isinstance(path, str) or not path:
            raise ConfigError("path", f"must name a file, a directory or a glob, got {path!r}")
        try:
            self._src: Source = inputs.source(path, setting="path")
        except UsageError as e:
            raise ConfigError("path", str(e).removeprefix(f"path {path!r}: ")) from None
        if self._src.fmt == "jsonl":
            raise ConfigError("path", f"{path!r} holds JSON lines, whose fields are only known row by row: read it "
                                      "with Beam's ReadFromJson, or classify it with `beam-tensorrt classify`")
        if len(set(self._src.headers)) > 1:
            differ = [f for f, h in zip(self._src.files, self._src.headers) if h != self._src.headers[0]]
            raise ConfigError("path", f"the files' headers differ ({differ[0]} from {self._src.files[0]}): read them "
                                      "with one ReadFiles each")
        self._text_field = text_field
        self._error_output = _error_output(error_handling)
        self.part_bytes = PART_BYTES  # bytes of a text file a worker reads at a time
        self.schema = inputs.declared_schema(self._src, text_field)
        self.row_type = row_type_of(self.schema)

    def expand(self, pbegin):
        from apache_beam.typehints.row_type import RowTypeConstraint

        src, part_bytes = self._src, self.part_bytes
        read = (pbegin
                | "Files" >> beam.Create(list(range(len(src.files))))
                | "Plan" >> beam.FlatMap(lambda index: inputs.plan_file(src, index, part_bytes, TABLE_ROWS))
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(_ReadPart(src, self._text_field, self.schema)).with_outputs(ERRORS_TAG,
                                                                                                   main="tables"))
        rows = read.tables | "TablesToRows" >> beam.ParDo(TablesToRowBatches(self.row_type)).with_output_types(
            self.row_type)
        element_type = RowTypeConstraint.from_fields([("file", str), ("row", int), ("line", str)])
        error_type = RowTypeConstraint.from_fields([("element", element_type), ("msg", str), ("stack", str)])
        errors = read[ERRORS_TAG] | "ErrorRows" >> beam.Map(lambda r: r).with_output_types(error_type)
        if self._error_output is None:
            _ = errors | "FailOnUnreadableRow" >> beam.Map(fail_on_error_row)
            return rows
        return {"output": rows, self._error_output: errors}


class _ReadPart(beam.DoFn):
    """A part -> its rows as Arrow tables of the declared schema; unreadable rows -> the errors."""

    def __init__(self, src: Source, text_field: str, schema: Any):
        self._src, self._text_field, self._schema = src, text_field, schema

    def process(self, part: Part):
        tables, bad = inputs.read_part(self._src, part, self._text_field, TABLE_ROWS, check_text=True)
        for row in bad:
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, beam.Row(
                element=beam.Row(file=self._src.files[row.file], row=row.row, line=row.text),
                msg=f"{self._src.files[row.file]}, row {row.row}: {row.reason}", stack=""))
        for table in tables:
            yield table.drop_columns([n for n in HIDDEN if n in table.column_names]).cast(self._schema)


class WriteFiles(beam.PTransform):
    """Schema'd rows -> CSV, TSV, JSON lines or Parquet files ``PATH-SSSSS-of-NNNNN.EXT``, a file per
    bundle of each worker, written a table at a time (Beam's ``fileio.WriteToFiles``: temporary
    files moved to their final names once written). List fields are written to CSV and TSV as JSON.

    Example (Beam YAML)::

        - type: WriteFiles
          config: {path: out/labelled, format: csv}

    Args:
        path: the files' prefix (a folder and a name), local or on any Beam filesystem.
        format: ``csv``, ``tsv``, ``jsonl`` or ``parquet``.
    """

    def __init__(self, path: str, format: str):
        super().__init__()
        if not isinstance(path, str) or not path or path.endswith("/"):
            raise ConfigError("path", f"must be a folder and a file name prefix (out/labelled), got {path!r}")
        if format not in WRITE_FORMATS:
            raise ConfigError("format", f"must be one of {', '.join(WRITE_FORMATS)}, got {format!r}")
        self._path, self._format = path, format

    def expand(self, pcoll):
        from apache_beam.io.filesystems import FileSystems

        folder, prefix = FileSystems.split(self._path)
        fmt = self._format
        tables = to_tables(pcoll, TABLE_ROWS)
        written = tables | "Write" >> fileio.WriteToFiles(
            path=folder or ".", file_naming=fileio.default_file_naming(prefix, EXTENSIONS[fmt]),
            sink=lambda destination: TableSink(fmt))
        return written | "FileNames" >> beam.Map(lambda result: beam.Row(file_name=result.file_name))


class TableSink(fileio.FileSink):
    """A ``fileio.FileSink`` whose records are Arrow tables: CSV/TSV with one header a file, JSON
    lines, or Parquet (one row group a table, the first table's schema)."""

    def __init__(self, fmt: str):
        self._fmt = fmt

    def open(self, fh) -> None:
        self._fh, self._header, self._parquet = fh, True, None

    def write(self, table) -> None:
        if not table.num_rows:
            return
        if self._fmt == "parquet":
            import pyarrow.parquet as pq

            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(_Unclosed(self._fh), self._schema)
            self._parquet.write_table(table if table.schema.equals(self._schema) else table.cast(self._schema))
            return
        self._fh.write(outputs.encode(table, self._fmt, header=self._header))
        self._header = False

    def flush(self) -> None:
        if self._parquet is not None:
            self._parquet.close()  # the footer; the file itself is Beam's to close
            self._parquet = None


class _Unclosed(io.RawIOBase):
    """A file handle that Arrow's writer may close without closing it (Beam closes its own)."""

    def __init__(self, fh):
        super().__init__()
        self._fh, self._written = fh, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._fh.write(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def close(self) -> None:
        pass
