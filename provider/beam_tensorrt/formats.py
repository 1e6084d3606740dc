"""The main job's file formats and the two mistakes it reports, without importing Beam: the CLI
checks a command's paths with these before it pays for Beam's import."""
from __future__ import annotations

import os
from pathlib import PurePosixPath

INPUT_FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".txt": "txt",
                 ".parquet": "parquet"}
OUTPUT_FORMATS = (".jsonl", ".json", ".ndjson")  # JSON lines, whatever the spelling


class UsageError(ValueError):
    """A mistake in how the job was asked for (a path, an extension): the message says what to do."""


class RejectedRow(ValueError):
    """A row that could not be classified, in a job without an errors file."""


def _suffix(path: str) -> str:
    return PurePosixPath(path.rstrip("/")).suffix.lower()


def input_format(path: str) -> str:
    fmt = INPUT_FORMATS.get(_suffix(path))
    if fmt is None:
        raise UsageError(f"--input {path!r}: unknown extension; use one of {', '.join(sorted(INPUT_FORMATS))}")
    return fmt


def check_output(flag: str, path: str) -> None:
    if _suffix(path) not in OUTPUT_FORMATS:
        raise UsageError(f"{flag} {path!r}: rows are written as JSON lines; name the file *.jsonl "
                         f"(accepted: {', '.join(OUTPUT_FORMATS)})")


def check_paths(input_path: str, output_path: str, errors_path: str | None) -> None:
    """What can be checked without a filesystem: extensions, and a local input that is missing
    (remote ones are checked through Beam's FileSystems when the job starts)."""
    input_format(input_path)
    check_output("--output", output_path)
    if errors_path:
        check_output("--errors", errors_path)
    if "://" not in input_path and not os.path.exists(input_path):
        raise UsageError(f"--input {input_path!r}: no such file")
