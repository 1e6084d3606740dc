"""The main job's file formats and the mistakes it reports, without importing Beam: the CLI checks
a command's paths with these before it pays for Beam's import."""
from __future__ import annotations

import glob
import os
from pathlib import PurePosixPath

from .errors import UsageError

INPUT_FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".txt": "txt",
                 ".parquet": "parquet"}
OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv",
                  ".parquet": "parquet"}
# Output formats whose readers expect the rows' errors as JSON lines: an errors file is always JSON lines.
ERRORS_FORMATS = {k: v for k, v in OUTPUT_FORMATS.items() if v == "jsonl"}


def suffix(path: str) -> str:
    return PurePosixPath(path.rstrip("/")).suffix.lower()


def is_pattern(path: str) -> bool:
    return glob.has_magic(path)


def input_format(path: str, setting: str = "--input") -> str:
    """The format of input file ``path``, by its extension; ``setting``: what named it, for the error."""
    fmt = INPUT_FORMATS.get(suffix(path))
    if fmt is None:
        raise UsageError(f"{setting} {path!r}: unknown extension; use one of {', '.join(sorted(INPUT_FORMATS))} "
                         "(or a directory or glob of such files)")
    return fmt


def output_format(flag: str, path: str, formats: dict[str, str] = OUTPUT_FORMATS) -> str:
    fmt = formats.get(suffix(path))
    if fmt is None:
        raise UsageError(f"{flag} {path!r}: the format follows the extension; name the file with one of "
                         f"{', '.join(sorted(formats))}")
    return fmt


def check_paths(input_path: str, output_path: str, errors_path: str | None) -> None:
    """What can be checked without a filesystem: extensions, and a local input that is missing
    (remote ones are checked through Beam's FileSystems when the job starts)."""
    local = "://" not in input_path and not is_pattern(input_path)
    is_dir = local and os.path.isdir(input_path)
    if suffix(input_path) and not is_dir:  # a file, or a pattern such as data/*.csv
        input_format(input_path)
    if local and not os.path.exists(input_path):
        raise UsageError(f"--input {input_path!r}: no such file or directory")
    if local and not is_dir:
        input_format(input_path)
    output_format("--output", output_path)
    _check_writable("--output", output_path)
    if errors_path:
        output_format("--errors", errors_path, ERRORS_FORMATS)
        _check_writable("--errors", errors_path)
        if os.path.abspath(errors_path) == os.path.abspath(output_path):
            raise UsageError(f"--errors {errors_path!r} is the --output file; name another")


def _check_writable(flag: str, path: str) -> None:
    if "://" not in path and os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a directory; name a file, e.g. {os.path.join(path, 'out' + suffix(path))}"
                         if suffix(path) else f"{flag} {path!r} is a directory; name a file in it")


def check_not_an_input(flag: str, path: str, inputs: list[str]) -> None:
    """Refuse an output path that is one of the input files (it would be overwritten by the job)."""
    if "://" in path:
        same = path in inputs
    else:
        target = os.path.realpath(path)
        same = any("://" not in f and os.path.realpath(f) == target for f in inputs)
    if same:
        raise UsageError(f"{flag} {path!r} is an input file: the job would overwrite what it reads; name another")
