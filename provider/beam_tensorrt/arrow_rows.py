"""Schema'd rows as Arrow tables and back, with Beam's batched DoFns.

A PCollection of schema'd rows may travel in batches: Beam's ``ReadFromParquet`` (and so Beam YAML's)
yields whole row groups as ``pyarrow.Table`` batches, and ``WriteToParquet`` consumes them the same
way. A DoFn whose ``process_batch`` takes ``pa.Table`` receives such batches as they are (Beam passes
a batch through when producer and consumer agree on its type) and receives rows from a per-row
producer gathered into tables by Beam's Arrow batch converter. ``ClassifyText`` uses these two DoFns
to classify schema'd rows a table at a time instead of a Beam element at a time.
"""
from __future__ import annotations

from typing import Any, Optional

import apache_beam as beam


def arrow_schema_of(row_type: Any) -> "Optional[Any]":
    """The Arrow schema of a Beam row type, or None when Beam's Arrow converter does not carry it
    field for field (a nested row, a logical type without an Arrow twin)."""
    import pyarrow as pa
    from apache_beam.typehints.arrow_type_compatibility import arrow_schema_from_beam_schema
    from apache_beam.typehints.schemas import typing_to_runner_api

    try:
        schema = arrow_schema_from_beam_schema(typing_to_runner_api(row_type).row_type.schema)
    except (TypeError, ValueError, KeyError, NotImplementedError):
        return None
    if any(pa.types.is_struct(f.type) or pa.types.is_map(f.type) for f in schema):
        return None  # nested rows come back from Arrow as dicts, which a row coder does not take
    return schema


class RowBatchesToTables(beam.DoFn):
    """A batched PCollection of schema'd rows -> one ``pa.Table`` element per batch, cut into tables
    of at most ``max_rows`` rows (slices: no copy)."""

    def __init__(self, max_rows: int):
        self._max_rows = max_rows

    def get_input_batch_type(self, input_element_type):
        import pyarrow as pa

        return pa.Table

    @beam.DoFn.yields_elements
    def process_batch(self, batch):
        for start in range(0, batch.num_rows, self._max_rows):
            yield batch.slice(start, self._max_rows)


class DataFramesToTables(RowBatchesToTables):
    """As ``RowBatchesToTables``, for rows that Beam's DataFrame readers (``ReadFromCsv``,
    ``ReadFromJson``) produce as ``pandas.DataFrame`` batches: each is turned into Arrow whole.
    (Beam would otherwise re-batch them row by row, and 2.77's re-batching into Arrow is broken.)"""

    def get_input_batch_type(self, input_element_type):
        import pandas as pd

        return pd.DataFrame

    @beam.DoFn.yields_elements
    def process_batch(self, batch):
        import pyarrow as pa

        table = pa.Table.from_pandas(batch, preserve_index=False)
        for start in range(0, table.num_rows, self._max_rows):
            yield table.slice(start, self._max_rows)


def producer_batch_type(pcoll: beam.PCollection) -> Any:
    """The type of the batches ``pcoll``'s producer yields (``pa.Table``, ``pd.DataFrame``...), or
    None when it yields rows one at a time (or cannot be told at construction). Asked through the
    batched DoFn's public ``get_output_batch_type``, which is None for a DoFn that yields rows."""
    from apache_beam.typehints.native_type_compatibility import convert_to_beam_type

    producer = pcoll.producer
    fn = getattr(getattr(producer, "transform", None), "fn", None)
    if not isinstance(fn, beam.DoFn):
        return None
    inputs = [p for p in producer.main_inputs.values()] if hasattr(producer, "main_inputs") else []
    try:
        batch_type = fn.get_output_batch_type(inputs[0].element_type if inputs else Any)
    except Exception:  # a DoFn's own batch-type logic: when it cannot tell, rows one at a time
        return None
    return None if batch_type is None else convert_to_beam_type(batch_type)


def to_tables(pcoll: beam.PCollection, max_rows: int, element_type: Any = None) -> beam.PCollection:
    """Schema'd rows -> ``pa.Table`` elements of at most ``max_rows`` rows: a producer's Arrow batches
    as they are, its pandas batches (Beam's DataFrame readers) converted whole, rows one at a time
    gathered into tables by Beam's Arrow batch converter. ``element_type``: the rows' type (by
    default the PCollection's)."""
    import pyarrow as pa

    batch_type = producer_batch_type(pcoll)
    if getattr(batch_type, "__name__", "") == "DataFrame":
        return pcoll | "RowsToTables" >> beam.ParDo(DataFramesToTables(max_rows))
    if batch_type is not None and batch_type != pa.Table:  # rows again, then Beam's Arrow batches
        pcoll = pcoll | "Unbatch" >> beam.Map(lambda row: row).with_output_types(element_type or pcoll.element_type)
    return pcoll | "RowsToTables" >> beam.ParDo(RowBatchesToTables(max_rows))


class TablesToRowBatches(beam.DoFn):
    """``pa.Table`` elements -> a batched PCollection of the rows of ``row_type``: each table is one
    batch, cast to the row type's Arrow schema, so that a batch consumer (``WriteToParquet``) takes
    it as it is and a per-row consumer gets rows from Beam's converter."""

    def __init__(self, row_type: Any):
        self._row_type = row_type

    def setup(self):
        import warnings

        from apache_beam.runners.worker.operations import InefficientExecutionWarning

        self._schema = arrow_schema_of(self._row_type)
        # A consumer of other batches (Beam's DataFrame writers: WriteToJson, WriteToCsv) gets these
        # tables as rows re-batched, which costs what rows one at a time would: not worth a warning.
        warnings.filterwarnings("ignore", message=r"(?s).*rebatched from type <class 'pyarrow\.lib\.Table'>",
                                category=InefficientExecutionWarning)

    def get_output_batch_type(self, input_element_type):
        import pyarrow as pa

        return pa.Table

    def infer_output_type(self, input_type):
        return self._row_type

    @beam.DoFn.yields_batches
    def process(self, table):
        if table.num_rows:
            yield table if table.schema.equals(self._schema) else table.cast(self._schema)


class TablesToRows(TablesToRowBatches):
    """As ``TablesToRowBatches``, but the rows leave one Beam element each, made column by column
    (about a third of the cost of Beam's Arrow-to-row conversion). For an output that always goes to
    a per-row consumer, such as another SDK's environment across an expansion service."""

    def get_output_batch_type(self, input_element_type):
        return None

    def setup(self):
        super().setup()
        self._make = self._row_type.user_type

    def process(self, table):
        if not table.num_rows:
            return
        table = table if table.schema.equals(self._schema) else table.cast(self._schema)
        make = self._make
        for values in zip(*(column.to_pylist() for column in table.columns)):
            yield make(*values)
