"""``ClassifyTextBatches``: ClassifyText for columnar batches (Arrow tables), without a Beam element
per row.

Beam's per-element machinery costs a Python SDK process roughly 10 µs a row (bench/NOTES.md), more
than a GPU needs to classify a short text. Pipelines whose data is columnar already (Parquet read
with ``ReadFromParquetBatched``, Arrow from a DataFrame) can keep one element per table: each table is
tokenized, packed and classified as a whole by RunInference (Beam's pre-batched mode,
``with_no_batching``), and comes out as a table with the prediction columns added.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple, Optional

import apache_beam as beam

from .beam_inference import PredictionResult
from .classifier import BatchPrediction, TextClassifier
from .config import ClassifyTextConfig
from .errors import ConfigError
from .handler import TextClassificationModelHandler, check_model_refresh, run_inference
from .rows import (ERRORS_TAG, empty_text_reason, error_row, fail_on_error_row, failed_batch_rows, null_text_reason,
                   output_clash, output_clash_reason, rejected)

if TYPE_CHECKING:
    import pyarrow as pa

# Beam's batching settings have no meaning here: the input's tables are the batches.
BATCHING_FIELDS = ("min_batch_size", "max_batch_size", "max_batch_duration_secs")


class RowsTable:
    """Rows that are not a table of their own (strings, dicts, rows whose fields Arrow does not
    carry, rows gathered by Beam's stateful batching) on their way through the table steps: a table
    of their texts, to which the prediction columns are added, and beside it the rows as they came,
    in the same order, for the output rows and the error output. Its length is its rows' count, as
    a table's is (RunInference's metrics count a batch by its length)."""

    __slots__ = ("table", "rows")

    def __init__(self, table: "pa.Table", rows: list):
        self.table = table  # the text column (then the prediction columns)
        self.rows = rows  # one a table row

    def __len__(self) -> int:
        return len(self.rows)

    def __reduce__(self):
        return RowsTable, (self.table, self.rows)

    def __repr__(self) -> str:
        return f"RowsTable({len(self.rows)} rows, columns {self.table.column_names})"


def _table_of(batch: Any) -> "pa.Table":
    """The table of a batch the table steps carry: a ``RowsTable``'s texts, or the table itself."""
    return batch.table if isinstance(batch, RowsTable) else as_table(batch)


def as_table(element: Any) -> "pa.Table":
    import pyarrow as pa

    if isinstance(element, pa.Table):
        return element
    if isinstance(element, pa.RecordBatch):
        return pa.Table.from_batches([element])
    raise TypeError(f"ClassifyTextBatches takes pyarrow Tables or RecordBatches, got {type(element).__name__}")


def text_column(table: "pa.Table", text_field: str) -> "pa.ChunkedArray":
    """The text column as strings, or ValueError with the reason every row of the table fails."""
    import pyarrow as pa

    if text_field not in table.column_names:
        raise ValueError(f"field '{text_field}' is missing (row has: {', '.join(table.column_names) or 'no fields'})")
    column = table.column(text_field)
    kind = column.type
    if pa.types.is_dictionary(kind) and (pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)):
        column = column.cast(kind.value_type)  # Parquet readers may hand strings dictionary-encoded
    elif pa.types.is_null(kind):
        return column.cast(pa.string())  # a column of nulls only: each row fails as null
    elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise ValueError(f"field '{text_field}' must be a string, got {kind}")
    return column


def check_utf8(column: "pa.ChunkedArray", text_field: str) -> tuple[dict[int, str], "pa.ChunkedArray"]:
    """({row: why its text is not valid UTF-8}, the column with such texts repaired). Arrow strings
    are UTF-8 by contract, but a file written elsewhere may break it, and Python cannot read them."""
    import pyarrow as pa

    try:
        column.validate(full=True)
        return {}, column
    except pa.ArrowInvalid:
        pass
    reasons: dict[int, str] = {}
    repaired: list[Optional[str]] = []
    for i, raw in enumerate(column.cast(pa.binary()).to_pylist()):  # the same bytes, unchecked
        if raw is None:
            repaired.append(None)
            continue
        try:
            repaired.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            reasons[i] = f"field '{text_field}' is not valid UTF-8 ({e.reason} at byte {e.start})"
            repaired.append(raw.decode("utf-8", "replace"))
    return reasons, pa.chunked_array([pa.array(repaired, pa.string())])


def _input_rows(batch: Any, table: "pa.Table", indices: Optional[list[int]] = None) -> list:
    """The input rows (all, or those at ``indices``) of ``batch`` whose table (texts checked and
    repaired, no prediction columns yet) is ``table``, as the error output shows them: a
    ``RowsTable``'s rows as they came, a table's rows as dicts."""
    if isinstance(batch, RowsTable):
        return list(batch.rows) if indices is None else [batch.rows[i] for i in indices]
    return (table if indices is None else table.take(indices)).to_pylist()


def _kept_rows(batch: Any, table: "pa.Table", keep: "Any") -> Any:
    """``batch`` (whose table is now ``table``) less the rows where the bool array ``keep`` is false."""
    import numpy as np
    import pyarrow as pa

    kept = table.filter(pa.array(keep))
    if isinstance(batch, RowsTable):
        return RowsTable(kept, [batch.rows[i] for i in np.flatnonzero(keep).tolist()])
    return kept


class _SplitTables(beam.DoFn):
    """Each table's classifiable rows go on as one table; the others to the error output, a row
    each, with the reason. Empty tables are dropped."""

    def __init__(self, text_field: str, output_names: list[str], fail_fast: bool, allow_empty: bool):
        self._text_field = text_field
        self._output_names = output_names
        self._fail_fast = fail_fast
        self._allow_empty = allow_empty

    def _reject(self, rows: Iterable[dict], reasons: Iterable[str]):
        for row, reason in zip(rows, reasons):
            yield rejected(row, reason, self._fail_fast)

    def process(self, element):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            table = _table_of(element)
        except TypeError as e:
            yield from self._reject([element], [str(e)])
            return
        if table.num_rows == 0:
            return
        clash = output_clash(self._output_names, table.column_names)
        try:
            if clash:
                raise ValueError(output_clash_reason(clash))
            column = text_column(table, self._text_field)
        except ValueError as e:
            yield from self._reject(_input_rows(element, table), [str(e)] * table.num_rows)
            return
        f = self._text_field
        invalid, column = check_utf8(column, f)
        if invalid:  # the rest is checked, classified and reported from a repaired copy
            table = table.set_column(table.column_names.index(f), f, column)
        bad = np.array(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if not self._allow_empty:
            blank = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0), False)
            bad |= blank.to_numpy(zero_copy_only=False)
        bad[list(invalid)] = True
        if not bad.any():
            yield element if isinstance(element, RowsTable) else table
            return
        rows = np.flatnonzero(bad).tolist()
        texts = column.take(pa.array(rows, pa.int64())).to_pylist()
        reasons = [invalid.get(i) or (null_text_reason(f) if text is None else empty_text_reason(f, text))
                   for i, text in zip(rows, texts)]
        yield from self._reject(_input_rows(element, table, rows), reasons)
        kept = _kept_rows(element, table, ~bad)
        if _table_of(kept).num_rows:
            yield kept


class TableModelHandler(TextClassificationModelHandler):
    """The text model handler, taking one Arrow table as a batch (used through ``with_no_batching``):
    one ``PredictionResult`` per table, whose ``inference`` is the table with the prediction
    columns added and whose failed rows are listed apart.

    Args:
        config: ClassifyText's configuration (the text field, the output columns, the model).
    """

    def __init__(self, config: ClassifyTextConfig):
        super().__init__(config.model, config.backend, config.backend_options(), model_copies=config.model_copies)
        self._c = config

    def run_inference(self, batch: "pa.Table | RowsTable", model: TextClassifier,  # type: ignore[override]
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        table = _table_of(batch)
        texts = table.column(self._c.text_field).to_pylist()
        # With model_copies the model is a proxy: classifier_for tokenizes here and runs there.
        prediction = self.classifier_for(model).predict(texts)
        classified = with_predictions(table, prediction, self._c)
        if isinstance(batch, RowsTable):
            classified = classified._replace(rows=batch.rows)
        return [PredictionResult(None, classified, self._model)]

    def get_num_bytes(self, batch: "pa.Table | RowsTable") -> int:  # type: ignore[override]
        import pyarrow.compute as pc

        # the texts' UTF-8 bytes, as the string handler counts them (not the column's offsets)
        return pc.sum(pc.binary_length(text_column(_table_of(batch), self._c.text_field))).as_py() or 0


class ClassifiedTable(NamedTuple):
    """A table with the prediction columns added, which of its rows failed (and why), and, for a
    ``RowsTable``, its rows as they came."""

    table: "pa.Table"
    failures: dict[int, str]  # row index -> reason; such rows' prediction columns mean nothing
    rows: Optional[list] = None


def with_predictions(table: "pa.Table", prediction: BatchPrediction, config: ClassifyTextConfig) -> ClassifiedTable:
    """``table`` with the configured prediction columns appended, built from whole arrays."""
    import numpy as np
    import pyarrow as pa

    probs = prediction.probabilities
    best = prediction.best
    columns = [
        (config.label_field, pa.array(prediction.labels, pa.string()).take(pa.array(best, pa.int64()))),
        (config.score_field, pa.array(probs.max(axis=1).astype(np.float64))),  # the probability of ``best``
    ]
    if config.probabilities_field:
        flat = pa.array(probs.astype(np.float64).ravel())
        offsets = pa.array(np.arange(0, probs.size + 1, probs.shape[1], dtype=np.int32))
        columns.append((config.probabilities_field, pa.ListArray.from_arrays(offsets, flat)))
    if config.truncated_field:
        columns.append((config.truncated_field, pa.array(prediction.truncated, pa.bool_())))
    for name, values in columns:
        table = table.append_column(name, values)
    return ClassifiedTable(table, dict(prediction.failures))


class _ToTables(beam.DoFn):
    """Classified tables (or ``RowsTable``s) out, less their failed rows, which go to the error
    output a row each."""

    def __init__(self, config: ClassifyTextConfig):
        self._c = config

    def process(self, result: PredictionResult):
        import numpy as np

        classified: ClassifiedTable = result.inference  # type: ignore[assignment]
        table, failures = classified.table, classified.failures
        batch = table if classified.rows is None else RowsTable(table, classified.rows)
        if not failures:
            yield batch
            return
        failed = sorted(failures)
        added = {n for n, _ in self._c.output_fields}
        inputs = table.select([n for n in table.column_names if n not in added])
        for i, row in zip(failed, _input_rows(batch, inputs, failed)):
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, error_row(row, failures[i]))
        keep = np.ones(table.num_rows, dtype=np.bool_)
        keep[failed] = False
        kept = _kept_rows(batch, table, keep)
        if _table_of(kept).num_rows:
            yield kept


class _FailedTablesToErrors(beam.DoFn):
    """A table whose inference raised -> one error row per input row, with the exception."""

    def process(self, failure):
        batch, exc_info = failure
        return failed_batch_rows(_input_rows(batch, _table_of(batch)), exc_info)


class ClassifyTextBatches(beam.PTransform):
    """ClassifyText for a PCollection of ``pyarrow.Table`` (or ``RecordBatch``) elements: each table
    comes out as one table with the prediction columns added, classified as a whole.

    For columnar pipelines (``beam.io.ReadFromParquetBatched``, DataFrames converted to Arrow) it
    skips Beam's per-row work, which bounds ``ClassifyText`` in one Python process well below what a
    GPU backend can do; the input's tables are the inference batches (RunInference's pre-batched
    mode), so size them at the source (Parquet row groups of a few thousand rows or more). The
    configuration is ClassifyText's, except Beam's batching fields (``min_batch_size``,
    ``max_batch_size``, ``max_batch_duration_secs``), which are rejected here. Output columns: the
    input's, then ``label`` (string), ``score`` (double) and, when configured, ``probabilities``
    (list of double) and ``truncated`` (bool).

    Rows that cannot be classified (text null, empty, whitespace or not valid UTF-8, the text column
    missing or not a string, a clash with an output name, a table whose inference failed) are taken
    out of their table and, with ``error_handling={"output": NAME}``, go to output NAME one row each as
    ``Row(element=<the row as a dict>, msg, stack)``; without it the pipeline fails with the reason.

    Example::

        with beam.Pipeline() as p:
            tables = p | beam.io.ReadFromParquetBatched("reviews-*.parquet", columns=["id", "text"])
            result = tables | ClassifyTextBatches(backend="tensorrt", error_handling={"output": "errors"})
            result["output"] | beam.io.WriteToParquetBatched("out/classified", schema=OUT_SCHEMA)

    Args:
        error_handling: ``{"output": NAME}`` routes rows that cannot be classified to the output NAME.
        model_metadata_pcoll: a PCollection of Beam ``ModelMetadata`` to swap models, as for
            ``ClassifyText``.
        config: a ``ClassifyTextConfig`` made (and validated) already, instead of the fields.
        **fields: ClassifyText's configuration fields (``model``, ``backend``, ``text_field``, ...).
    """

    def __init__(self, *, error_handling: Optional[Mapping[str, Any]] = None,
                 model_metadata_pcoll: Optional[beam.PCollection] = None,
                 config: Optional[ClassifyTextConfig] = None, **fields: Any):
        super().__init__()
        for name in BATCHING_FIELDS:
            if name in fields:
                raise ConfigError(name, "ClassifyTextBatches classifies each input table as one batch; "
                                        "size the tables at the source instead")
        if config is not None:  # validated where it was made: an application hands its own down
            if fields or error_handling is not None:
                raise ConfigError(next(iter(fields), "error_handling"), "give either config or fields, not both")
            self.config = config
        else:
            self.config = ClassifyTextConfig.from_kwargs(dict(fields, error_handling=error_handling))
        check_model_refresh(self.config, model_metadata_pcoll)
        self._model_metadata_pcoll = model_metadata_pcoll

    def model_handler(self) -> TableModelHandler:
        return TableModelHandler(self.config)

    def expand(self, pcoll):
        tables, errors = classify_tables(pcoll, self.config, self._model_metadata_pcoll)
        if errors is None:
            return tables
        return {"output": tables, self.config.error_output: errors}


def classify_tables(tables: beam.PCollection, config: ClassifyTextConfig,
                    model_metadata_pcoll: Optional[beam.PCollection] = None):
    """The steps of ``ClassifyTextBatches`` on a PCollection of tables: (classified tables, error
    rows), or (classified tables, None) without an error output, where a bad row fails the pipeline.
    ``ClassifyText`` calls it on the tables it makes of schema'd rows."""
    c = config
    error_output = c.error_output
    split = tables | "CheckText" >> beam.ParDo(
        _SplitTables(c.text_field, [n for n, _ in c.output_fields], fail_fast=error_output is None,
                     allow_empty=c.allow_empty_text)).with_outputs(ERRORS_TAG, main="valid")
    inference = run_inference(TableModelHandler(c).with_no_batching(), c, model_metadata_pcoll)
    if error_output is None:
        predictions = split.valid | "RunInference" >> inference
    else:
        predictions, failed = split.valid | "RunInference" >> inference.with_exception_handling()
    classified = predictions | "ToTables" >> beam.ParDo(_ToTables(c)).with_outputs(ERRORS_TAG, main="tables")
    if error_output is None:
        _ = classified[ERRORS_TAG] | "FailOnRowError" >> beam.Map(fail_on_error_row)
        return classified.tables, None
    # Untyped on purpose: an inferred row type would hold a Python-only 'Any' field, which a
    # cross-language client decoding this expansion's PCollections cannot read.
    failed_rows = failed.failed_inferences | "FailedTables" >> beam.ParDo(
        _FailedTablesToErrors()).with_output_types(Any)
    errors = (split[ERRORS_TAG], failed_rows, classified[ERRORS_TAG]) | "Errors" >> beam.Flatten().with_output_types(Any)
    return classified.tables, errors
