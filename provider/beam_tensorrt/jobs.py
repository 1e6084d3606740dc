"""The main job: classify a local file with ClassifyText in a Beam pipeline, write JSON lines."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.typehints.row_type import RowTypeConstraint

from .transform import ClassifyText

FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}


def input_format(path: str) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"--input {path!r}: unknown extension; use one of {', '.join(sorted(FORMATS))}")
    return fmt


def _header(path: str, delimiter: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        first = f.readline()
    header = next(csv.reader([first], delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL), [])
    if not header:
        raise ValueError(f"--input {path!r} has no header row")
    return [h.strip() for h in header]


class _ParseDelimited(beam.DoFn):
    """One line -> a schema'd row; a line with the wrong number of columns -> the error output."""

    def __init__(self, header: list[str], delimiter: str):
        self._header = header
        self._delimiter = delimiter

    def process(self, line: str):
        quoting = csv.QUOTE_NONE if self._delimiter == "\t" else csv.QUOTE_MINIMAL
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
    return json.dumps(to_jsonable(value), ensure_ascii=False)


def read_rows(p: beam.Pipeline, path: str, text_field: str):
    """Return (rows, parse_errors) PCollections for a local or Beam-filesystem file."""
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


def classify_file(input_path: str, output_path: str, *, errors_path: Optional[str] = None,
                  runner: str = "FnApiRunner", pipeline_args: Optional[list[str]] = None,
                  **config: Any) -> dict[str, int]:
    transform = ClassifyText(error_handling={"output": "errors"} if errors_path else None, **config)
    options = PipelineOptions([f"--runner={runner}"] + list(pipeline_args or []))
    with beam.Pipeline(options=options) as p:
        rows, parse_errors = read_rows(p, input_path, transform.config.text_field)
        result = rows | "ClassifyText" >> transform
        classified = result["output"] if isinstance(result, dict) else result
        (classified | "ToJson" >> beam.Map(to_json_line)
                    | "Write" >> beam.io.WriteToText(output_path, shard_name_template="", num_shards=1))
        if errors_path:
            errors = [result["errors"]] + ([parse_errors] if parse_errors is not None else [])
            (errors | "AllErrors" >> beam.Flatten() | "ErrorsToJson" >> beam.Map(to_json_line)
                    | "WriteErrors" >> beam.io.WriteToText(errors_path, shard_name_template="", num_shards=1))
        elif parse_errors is not None:
            parse_errors | "FailOnParseError" >> beam.Map(_raise_parse_error)
    return {"classified": _count_lines(output_path), "errors": _count_lines(errors_path) if errors_path else 0}


def _raise_parse_error(err: dict) -> None:
    raise ValueError(f"{err['msg']}: {err['element']!r:.200} (pass --errors FILE to keep going and collect such rows)")


def _count_lines(path: Optional[str]) -> int:
    if not path or not Path(path).exists():
        return 0
    with io.open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)
