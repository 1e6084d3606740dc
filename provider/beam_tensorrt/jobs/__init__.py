"""The main job: classify files with ClassifyTextBatches in a Beam pipeline, columnar end to end.

The input is cut into parts (``inputs``), which a Reshuffle spreads over the job's SDK workers; each
worker reads a part into Arrow tables, classifies each table as one RunInference batch
(``ClassifyTextBatches``) and writes it (``outputs``): no Beam element, and no Python object, per
row. With several workers (the default on a GPU host) they come from a worker pool started with the
job, the model loaded in each before the first part arrives, and share the GPU.

Files are read and written through Beam's FileSystems, so paths may be local or any filesystem Beam
has installed (``gs://``, ``s3://``, ``hdfs://``...).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import apache_beam as beam

from ..config import TABLE_ROWS, ClassifyTextConfig, ErrorHandling
from ..errors import RejectedRow, UsageError
from ..formats import check_not_an_input, output_format
from ..rows import ERRORS_TAG
from . import inputs, outputs
from .parts import FILE_COLUMN, ROW_COLUMN, Part, Source

log = logging.getLogger(__name__)

# Bytes of text input per part: small enough that the parts spread evenly over the workers and the
# progress line moves, large enough that a part's fixed costs (a file opened, a table made) vanish.
PART_BYTES = 8 << 20
PARTS_PER_WORKER = 4


@dataclass
class JobResult:
    counts: outputs.Counts
    outputs: list[str]
    rows: int  # the input's rows, as planned


def classify_file(input_path: str, output_path: str, config: Optional[ClassifyTextConfig] = None, *,
                  errors_path: Optional[str] = None, workers: int = 1, gpus: Sequence[str] = (), shards: int = 1,
                  batch_rows: int = TABLE_ROWS, runner: str = "FnApiRunner", pipeline_args: Optional[list[str]] = None,
                  on_start: Callable[[int, str], None] = lambda rows, folder: None) -> JobResult:
    """Classify every row of ``input_path`` into ``output_path`` (its format by extension: JSON lines,
    CSV, TSV or Parquet; every input column kept, then the label and its score). Rows that cannot be
    classified go to ``errors_path`` (JSON lines: file, row, element, msg), or, without it, stop the
    job with a ``RejectedRow`` naming the first one.

    Args:
        input_path: a file, a directory or a glob, local or on any Beam filesystem.
        output_path, errors_path: local paths or any Beam filesystem URL.
        workers: SDK worker processes (more than one: a worker pool started for the job).
        gpus: the GPUs (``CUDA_VISIBLE_DEVICES`` names) the workers spread over, one each (``gpus``).
        shards: output files (``OUT-00000-of-0000N.ext``); 1: ``output_path`` itself.
        batch_rows: rows per Arrow table, each one RunInference batch.
        runner: Beam runner (FnApiRunner: Beam's local runner).
        pipeline_args: more Beam pipeline options.
        on_start: called with the input's row count and the workers' folder once the job is planned.
        config: ClassifyText's configuration, validated (default: every field's default); it reaches
            the transform as it is and the pool's workers as ``to_json``.
    """
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    out_fmt = output_format("--output", output_path)
    FileSystems.set_options(PipelineOptions([f"--runner={runner}", *(pipeline_args or [])]))
    config = config or ClassifyTextConfig().validate()
    src = inputs.source(input_path)
    for flag, path in (("--output", output_path), ("--errors", errors_path)):
        if path:
            for target in outputs.shard_names(path, shards if flag == "--output" else 1):
                check_not_an_input(flag, target, list(src.files))
    text_field = config.text_field
    declared = inputs.columns(src)
    if declared is not None and text_field not in declared:
        raise UsageError(f"--input {input_path!r}: {text_field!r} is not a column of the input "
                         f"(columns: {', '.join(declared)}); choose one with --text-field")
    part_rows = max(batch_rows, 1)
    planned = inputs.plan(src, PART_BYTES, part_rows)
    parts = _even(planned, workers * PARTS_PER_WORKER, src)
    total = inputs.count_rows(parts)
    folder = outputs.temp_folder(output_path)
    try:
        on_start(total, folder)
        with _runner(runner, workers, config, gpus) as (beam_runner, extra):
            options = PipelineOptions([f"--runner={runner}", *extra, *(pipeline_args or [])])
            pipeline, fields = _pipeline(options, beam_runner, src, parts, folder, out_fmt, errors_path, batch_rows,
                                         config)
            try:
                pipeline.run().wait_until_finish()
            except Exception:
                rejected = outputs.first_rejected(folder)
                if rejected is None:
                    raise
                raise rejected from None
        schema = outputs.output_schema(inputs.declared_schema(src, text_field), fields)
        counts, written = outputs.assemble(folder, output_path, out_fmt, shards, errors_path, schema)
        return JobResult(counts, written, total)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _even(parts: list[Part], wanted: int, src: Source) -> list[Part]:
    """Parts of a small input cut finer, so that every worker gets some (text formats only)."""
    if len(parts) >= wanted or src.fmt == "parquet":
        return parts
    size = sum(p.end - p.start for p in parts)
    finer = inputs.plan(src, max(1, size // wanted), 1)
    return finer if len(finer) > len(parts) else parts


@contextlib.contextmanager
def _runner(runner: str, workers: int, config: ClassifyTextConfig, gpus: Sequence[str] = ()) -> Iterator[tuple[Any, list[str]]]:
    """The runner object and options for ``workers`` SDK processes: Beam's local runner in this
    process for one (on the first of ``gpus``); for more, Beam's local runner with its workers from a
    worker pool started here, spread over ``gpus``, each booted and with the model loaded before the
    job (``worker_pool.local``)."""
    from ..gpus import ENV
    from ..worker_pool.local import pooled_local_runner, scoped_environ

    if workers <= 1 or runner != "FnApiRunner":
        # The one worker is this process, which has made no CUDA context yet: it takes the first GPU.
        with scoped_environ({ENV: gpus[0]} if gpus and runner == "FnApiRunner" else {}):
            yield None, []
        return
    with pooled_local_runner(workers, preload=config, gpus=gpus) as runner_and_options:
        yield runner_and_options


def _pipeline(options, beam_runner, src: Source, parts: list[Part], folder: str, out_fmt: str,
              errors_path: Optional[str], batch_rows: int, config: ClassifyTextConfig):
    from ..classify_text_batches import ClassifyTextBatches

    user_truncated = config.truncated_field
    # Truncation is always marked (the summary counts it), errors always routed (to the errors file).
    classify = ClassifyTextBatches(config=dataclasses.replace(
        config, truncated_field=outputs.TRUNCATED, error_handling=ErrorHandling(ERRORS_TAG)))
    p = beam.Pipeline(runner=beam_runner, options=options)
    read = (p | "Parts" >> beam.Create(parts) | "Spread" >> beam.Reshuffle()
              | "Read" >> beam.ParDo(_ReadPart(src, classify.config.text_field, batch_rows)).with_outputs(
                  ERRORS_TAG, main="tables"))
    result = read.tables | "ClassifyTextBatches" >> classify
    _ = result["output"] | "Write" >> beam.ParDo(_WriteTables(folder, out_fmt, user_truncated))
    _ = ((read[ERRORS_TAG], result[ERRORS_TAG]) | "AllErrors" >> beam.Flatten()
         | "WriteErrors" >> beam.ParDo(_WriteErrors(folder, src.files, errors_path is not None)))
    # the prediction fields as the output has them (the truncation column only if the user named it)
    fields = [(user_truncated if name == outputs.TRUNCATED else name, kind)
              for name, kind in classify.config.output_fields if name != outputs.TRUNCATED or user_truncated]
    return p, fields


class _ReadPart(beam.DoFn):
    """A part -> its rows as Arrow tables; rows that cannot be read -> the error output."""

    def __init__(self, src: Source, text_field: str, batch_rows: int):
        self._src, self._text_field, self._batch_rows = src, text_field, batch_rows

    def process(self, part: Part):
        tables, bad = inputs.read_part(self._src, part, self._text_field, self._batch_rows)
        for row in bad:
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, beam.Row(
                element={FILE_COLUMN: row.file, ROW_COLUMN: row.row, "line": row.text},
                msg=row.reason, stack=""))
        yield from tables

class _WriteTables(beam.DoFn):
    def __init__(self, folder: str, fmt: str, keep_truncated: Optional[str]):
        self._folder, self._fmt, self._keep_truncated = folder, fmt, keep_truncated

    def process(self, table):
        outputs.write_table(self._folder, self._fmt, table, self._keep_truncated)

class _WriteErrors(beam.DoFn):
    """Rejected rows -> one file per bundle; without an errors file, the first fails the job."""

    def __init__(self, folder: str, files: tuple[str, ...], keep_going: bool):
        self._folder, self._files, self._keep_going = folder, files, keep_going

    def start_bundle(self):
        self._records: list = []

    def process(self, error):
        element = error.element if not hasattr(error.element, "_asdict") else dict(error.element._asdict())
        record = outputs.error_record(element, error.msg, error.stack, self._files)
        if not self._keep_going:
            _, _, r = record
            shown = r["element"].get("line", r["element"]) if isinstance(r["element"], dict) else r["element"]
            rejected = RejectedRow.of(error.msg, r["file"], r["row"], outputs.json_line(shown)[:200])
            # Beam hands a worker process's exception back as text: the job reads the row from here.
            outputs.write_rejected(self._folder, rejected)
            raise rejected
        self._records.append(record)

    def finish_bundle(self):
        outputs.write_errors(self._folder, self._records)
        self._records = []
