"""The main job: classify a file with ClassifyText in a Beam pipeline, write JSON lines.

Parquet input is read as Arrow tables and classified a table at a time (``ClassifyTextBatches``);
the other formats a row at a time (``ClassifyText``).

Files are read and written through Beam's FileSystems, so ``--input`` and ``--output`` may be local
paths or any filesystem Beam has installed (``gs://``, ``s3://``, ``hdfs://``...).
"""
from __future__ import annotations

import csv
import io
import json
import threading
from typing import Any, Callable, Literal, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.typehints.row_type import RowTypeConstraint

from .formats import RejectedRow, UsageError, check_output, input_format
from .classify_text import ClassifyText

def check_input(path: str) -> None:
    input_format(path)
    try:
        found = FileSystems.match([path])[0].metadata_list
    except Exception as e:  # an unknown scheme, a filesystem Beam has not installed, no credentials...
        raise UsageError(f"--input {path!r}: cannot be read: {e}") from None
    if not found:
        raise UsageError(f"--input {path!r}: no such file")


def _first_line(path: str) -> str:
    with FileSystems.open(path) as f:
        return io.TextIOWrapper(f, encoding="utf-8", newline="").readline()


def _header(path: str, delimiter: str) -> list[str]:
    header = next(csv.reader([_first_line(path)], delimiter=delimiter,
                             quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL), [])
    if not header:
        raise UsageError(f"--input {path!r} has no header row")
    return [h.strip() for h in header]


def count_rows(path: str) -> int:
    """Rows a file holds (lines, less a header row for TSV/CSV; Parquet's metadata): the progress
    bar's total."""
    if input_format(path) == "parquet":
        import pyarrow.parquet as pq

        with FileSystems.open(path) as f:
            return pq.ParquetFile(f).metadata.num_rows
    lines, last = 0, b"\n"
    with FileSystems.open(path) as f:
        while chunk := f.read(1 << 22):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"  # a last line without a newline
    return max(0, lines - (input_format(path) in ("tsv", "csv")))


class _ParseDelimited(beam.DoFn):
    """One line -> a schema'd row; a line with the wrong number of columns -> the error output."""

    def __init__(self, header: list[str], delimiter: str):
        self._header = header
        self._delimiter = delimiter

    def process(self, line: str):
        quoting: Literal[0, 1, 2, 3] = csv.QUOTE_NONE if self._delimiter == "\t" else csv.QUOTE_MINIMAL
        values = next(csv.reader([line], delimiter=self._delimiter, quoting=quoting), [])
        if len(values) != len(self._header):
            yield beam.pvalue.TaggedOutput("errors", {"element": line, "msg": f"expected {len(self._header)} columns, "
                                                      f"got {len(values)}", "stack": ""})
            return
        yield beam.Row(**dict(zip(self._header, values)))


class _ParseJson(beam.DoFn):
    def process(self, line: str):
        try:
            obj = json.loads(line)
        except ValueError as e:
            yield beam.pvalue.TaggedOutput("errors", {"element": line, "msg": f"invalid JSON: {e}", "stack": ""})
            return
        if not isinstance(obj, dict):
            yield beam.pvalue.TaggedOutput("errors", {"element": line, "msg": "JSON line is not an object", "stack": ""})
            return
        yield obj


def to_jsonable(value: Any) -> Any:
    if isinstance(value, beam.Row) or (isinstance(value, tuple) and hasattr(value, "_asdict")):
        return {k: to_jsonable(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def to_json_line(value: Any) -> str:
    # default=str: Parquet columns may hold timestamps, dates and decimals, which JSON lacks
    return json.dumps(to_jsonable(value), ensure_ascii=False, default=str)


def read_rows(p: beam.Pipeline, path: str, text_field: str):
    """Return (rows, parse_errors) PCollections for a file on any Beam filesystem."""
    fmt = input_format(path)
    if fmt == "txt":
        rows = (p | "Read" >> beam.io.ReadFromText(path)
                  | "ToRows" >> beam.Map(lambda line: beam.Row(**{text_field: line})).with_output_types(
                      RowTypeConstraint.from_fields([(text_field, str)])))
        return rows, None
    if fmt == "jsonl":
        parsed = (p | "Read" >> beam.io.ReadFromText(path)
                    | "ParseJson" >> beam.ParDo(_ParseJson()).with_outputs("errors", main="rows"))
        return parsed.rows, parsed.errors
    delimiter = "\t" if fmt == "tsv" else ","
    header = _header(path, delimiter)
    parsed = (p | "Read" >> beam.io.ReadFromText(path, skip_header_lines=1)
                | "Parse" >> beam.ParDo(_ParseDelimited(header, delimiter)).with_outputs("errors", main="rows"))
    rows = parsed.rows | "Typed" >> beam.Map(lambda r: r).with_output_types(
        RowTypeConstraint.from_fields([(h, str) for h in header]))
    return rows, parsed.errors


class Progress:
    """Rows done so far, counted by the pipeline's last steps (the job runs in this process)."""

    _lock = threading.Lock()
    done = 0
    errors = 0

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.done, cls.errors = 0, 0

    @classmethod
    def add(cls, done: int = 0, errors: int = 0) -> None:
        with cls._lock:
            cls.done += done
            cls.errors += errors


class _Count(beam.DoFn):
    """Counts rows into ``Progress`` (class state: a runner in this process shares it), a few
    dozen at a time: a local file may be one bundle, so counting per bundle would show nothing."""

    EVERY = 64

    def __init__(self, kind: str):
        self._kind = kind

    def start_bundle(self):
        self._n = 0

    def process(self, element):
        self._n += 1
        if self._n == self.EVERY:
            self.finish_bundle()
        yield element

    def finish_bundle(self):
        Progress.add(**{self._kind: self._n})
        self._n = 0


def _reject(error) -> None:
    element = error["element"] if isinstance(error, dict) else error.element
    msg = error["msg"] if isinstance(error, dict) else error.msg
    raise RejectedRow(f"{msg}: {to_json_line(element)[:200]} (pass --errors FILE to write such rows there and "
                      "keep going)")


def classify_file(input_path: str, output_path: str, *, errors_path: Optional[str] = None,
                  runner: str = "FnApiRunner", pipeline_args: Optional[list[str]] = None,
                  on_start: Callable[[], None] = lambda: None, **config: Any) -> dict[str, int]:
    """Classify every row of ``input_path`` into ``output_path`` (JSON lines, every input field plus
    the label and score). Rows that cannot be classified go to ``errors_path`` with the reason, or,
    without it, stop the job with a ``RejectedRow`` naming the first one. Returns the row counts.

    Args:
        input_path, output_path, errors_path: local paths or any Beam filesystem URL.
        runner: Beam runner (FnApiRunner: Beam's local runner, in this process).
        pipeline_args: more Beam pipeline options.
        on_start: called once the pipeline is built, just before it runs.
        **config: ClassifyText configuration fields.
    """
    options = PipelineOptions([f"--runner={runner}"] + list(pipeline_args or []))
    FileSystems.set_options(options)  # filesystem options (credentials, endpoints) for the checks below too
    check_output("--output", output_path)
    if errors_path:
        check_output("--errors", errors_path)
        if FileSystems.exists(errors_path):  # a stale file from an earlier run would read as this run's
            FileSystems.delete([errors_path])
    check_input(input_path)
    # Errors always go to an output: without an errors file our own step rejects the first one, with
    # a message that names the CLI's flag rather than ClassifyText's error_handling.
    Progress.reset()
    p = beam.Pipeline(options=options)
    parse_errors = None
    if input_format(input_path) == "parquet":
        from .classify_text_batches import BATCHING_FIELDS, ClassifyTextBatches

        # The file's row groups are the batches.
        batches = ClassifyTextBatches(error_handling={"output": "errors"},
                                      **{k: v for k, v in config.items() if k not in BATCHING_FIELDS})
        result = p | "Read" >> beam.io.ReadFromParquetBatched(input_path) | "ClassifyTextBatches" >> batches
        classified = result["output"] | "ToRows" >> beam.FlatMap(lambda table: table.to_pylist())
    else:
        transform = ClassifyText(error_handling={"output": "errors"}, **config)
        rows, parse_errors = read_rows(p, input_path, transform.config.text_field)
        result = rows | "ClassifyText" >> transform
        classified = result["output"]
    (classified | "Count" >> beam.ParDo(_Count("done")) | "ToJson" >> beam.Map(to_json_line)
                      | "Write" >> beam.io.WriteToText(output_path, shard_name_template="", num_shards=1))
    errors = [result["errors"]] + ([parse_errors] if parse_errors is not None else [])
    errors = errors | "AllErrors" >> beam.Flatten() | "CountErrors" >> beam.ParDo(_Count("errors"))
    if errors_path:
        # Written only when some row was rejected: Beam's S3 writer fails on an empty file (its
        # multipart upload needs a part), and no file says "no errors" as well as an empty one.
        (errors | "ErrorsToJson" >> beam.Map(to_json_line)
                | "WriteErrors" >> beam.io.WriteToText(errors_path, shard_name_template="", num_shards=1,
                                                       skip_if_empty=True))
    else:
        errors | "RejectRow" >> beam.Map(_reject)
    on_start()
    p.run().wait_until_finish()
    return {"classified": _count_lines(output_path), "errors": _count_lines(errors_path) if errors_path else 0}


def _count_lines(path: Optional[str]) -> int:
    if not path or not FileSystems.exists(path):
        return 0
    with FileSystems.open(path) as f:
        return sum(1 for _ in io.TextIOWrapper(f, encoding="utf-8"))
