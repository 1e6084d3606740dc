"""``ClassifyText``: the schema'd PTransform that Python, Beam YAML and Java pipelines call."""
from __future__ import annotations

from typing import Any, Mapping, Optional

import apache_beam as beam
from apache_beam.typehints.row_type import RowTypeConstraint

from .arrow_rows import TablesToRowBatches, TablesToRows, arrow_schema_of, to_tables
from .classify_text_batches import RowsTable, classify_tables
from .config import ClassifyTextConfig
from .errors import ConfigError
from .handler import TextClassificationModelHandler, check_model_refresh, run_inference
from .local_parallelism import advise
from .rows import ERRORS_TAG, InvalidRowError, output_clash, output_clash_reason, rejected, text_of


def _fields_of(element: Any, text_field: str) -> dict[str, Any]:
    if type(element) is str:  # first: lines from a text source are the common case
        return {text_field: element}
    if isinstance(element, beam.Row) or (isinstance(element, tuple) and hasattr(element, "_asdict")):
        # beam.Row, or the NamedTuple a schema'd row is decoded to
        return dict(element._asdict())
    if isinstance(element, Mapping):
        return dict(element)
    if isinstance(element, str):
        return {text_field: element}
    raise InvalidRowError(f"expected a row, a dict or a string, got {type(element).__name__}")


class _TextLength:
    """A row's text length, for Beam's length-aware batching of rows (0 where there is no text: such a
    row goes to the error output whatever batch it is in)."""

    def __init__(self, text_field: str):
        self._text_field = text_field

    def __call__(self, element: Any) -> int:
        if isinstance(element, str):
            return len(element)
        text = element.get(self._text_field) if isinstance(element, Mapping) else getattr(element, self._text_field, None)
        return len(text) if isinstance(text, str) else 0


class _RowsToTables(beam.DoFn):
    """Beam's batches of rows (lists) -> ``RowsTable``s: a string column of their texts beside the
    rows. A row whose text cannot be a string (no such field, another type, not encodable), that
    is not a row at all, or that already has an output field goes to the error output here; null and
    blank texts are checked with every other table's (``classify_text_batches``)."""

    def __init__(self, text_field: str, output_names: list[str], fail_fast: bool):
        self._text_field = text_field
        self._output_names = output_names
        self._fail_fast = fail_fast

    def process(self, batch):
        import pyarrow as pa

        f = self._text_field
        rows, texts = [], []
        for element in batch:
            if type(element) is str and (element.isascii() or _encodes(element)):
                rows.append(element)  # lines of a text source, the common case: nothing else to check
                texts.append(element)
                continue
            try:
                fields = _fields_of(element, f)
                clash = output_clash(self._output_names, fields)
                if clash:
                    raise InvalidRowError(output_clash_reason(clash))
                text = text_of(fields, f)
            except InvalidRowError as e:
                yield rejected(element, str(e), self._fail_fast)
                continue
            rows.append(element)
            texts.append(text)
        if rows:
            yield RowsTable(pa.table({f: pa.array(texts, pa.string())}), rows)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:  # lone surrogates: text_of says why
        return False


class _RowsTablesToRows(beam.DoFn):
    """Classified ``RowsTable``s -> one output row each: the row's fields, then the prediction's."""

    def __init__(self, config: ClassifyTextConfig):
        self._c = config

    def process(self, batch: RowsTable):
        table, f = batch.table, self._c.text_field
        predictions = [(name, table.column(name).to_pylist()) for name, _ in self._c.output_fields]
        for i, element in enumerate(batch.rows):
            out = _fields_of(element, f)
            for name, values in predictions:
                out[name] = values[i]
            yield beam.Row(**out)


class ClassifyText(beam.PTransform):
    """Classifies the text field of each row with a BERT-family model (TensorRT, PyTorch CUDA or ONNX
    Runtime), on Beam's RunInference.

    Schema'd rows are classified as Arrow tables; rows that arrive one at a time (strings, dicts, rows
    Arrow does not carry) or with ``max_batch_duration_secs`` (streaming) are batched by Beam's
    ``BatchElements`` and go through the same table steps. Output rows keep every input field and add
    the label and its probability (and, on request, every label's probability and a truncation flag).
    With a schema'd input the output has a Beam schema (input fields + added fields), so Beam YAML and
    Java pipelines read it.

    Rows that cannot be classified (text missing, null, not a string, empty, invalid Unicode; a batch
    whose inference failed) go to an error output with the reason when ``error_handling`` names one,
    Beam YAML's idiom: the result is then ``{'output': classified, NAME: errors}`` with error rows
    ``element, msg, stack``. Without it such a row fails the pipeline with that reason. Invalid
    configuration raises ``ConfigError`` here, at construction, naming the field.

    Example::

        with beam.Pipeline() as p:
            rows = p | beam.Create([beam.Row(id=1, text="A lovely, moving film.")])
            result = rows | ClassifyText(max_batch_size=256, error_handling={"output": "errors"})
            result["output"] | beam.Map(print)  # Row(id=1, text=..., label='POSITIVE', score=0.95)

    Args:
        error_handling: ``{"output": NAME}`` routes rows that cannot be classified to the output NAME.
        model_metadata_pcoll: Python pipelines: a PCollection of Beam ``ModelMetadata`` whose
            ``model_id`` names a new artifact (directory, or a file in it) to swap to, as for
            ``RunInference``; see also the ``model_watch_pattern`` field.
        **config: the fields of ``config.ClassifyTextConfig`` (docs/configuration.md):
            ``model``, ``backend``, ``text_field``, ``label_field``, ``score_field``,
            ``probabilities_field``, ``truncated_field``, ``allow_empty_text``, ``max_seq_len``,
            ``min_batch_size``, ``max_batch_size``, ``max_batch_duration_secs``, ``intra_op_threads``,
            ``device``, ``packing``, ``engine_cache``, ``model_watch_pattern``, ``model_watch_interval_secs``,
            ``model_copies``.
    """

    # Schema'd rows leave as Beam batches (Arrow tables), which a batch consumer such as
    # WriteToParquet takes whole; True: one element a row, for an output that always goes to a
    # per-row consumer (the expansion service's: the client's environment).
    rows_out_one_at_a_time = False

    def __init__(self, *, error_handling: Optional[Mapping[str, Any]] = None,
                 model_metadata_pcoll: Optional[beam.PCollection] = None, **config: Any):
        super().__init__()
        self.config = ClassifyTextConfig.from_kwargs(dict(config, error_handling=error_handling))
        check_model_refresh(self.config, model_metadata_pcoll)
        self._model_metadata_pcoll = model_metadata_pcoll

    def model_handler(self) -> TextClassificationModelHandler:
        c = self.config
        return TextClassificationModelHandler.from_config(
            c, min_batch_size=c.min_batch_size, max_batch_size=c.max_batch_size,
            max_batch_duration_secs=c.max_batch_duration_secs)

    def _output_type(self, input_type: Any) -> tuple[Any, Any]:
        """(output row type, error element type) from the input's schema, checked at construction."""
        c = self.config
        if isinstance(input_type, type) and not isinstance(input_type, RowTypeConstraint):
            # A NamedTuple/dataclass with a schema, e.g. rows decoded by an expansion service.
            input_type = RowTypeConstraint.from_user_type(input_type) or input_type
        if isinstance(input_type, RowTypeConstraint):
            in_fields: list[tuple[str, Any]] = list(input_type._fields)
            names = [n for n, _ in in_fields]
            if c.text_field not in names:
                raise ConfigError("text_field", f"{c.text_field!r} is not a field of the input (fields: {', '.join(names)})")
            for name, _ in c.output_fields:
                if name in names:
                    key = next(f for f, v in (("label_field", c.label_field), ("score_field", c.score_field),
                                              ("probabilities_field", c.probabilities_field),
                                              ("truncated_field", c.truncated_field)) if v == name)
                    raise ConfigError(key, f"{name!r} is already a field of the input; choose another output name")
            return RowTypeConstraint.from_fields(in_fields + c.output_fields), input_type
        if input_type is str:
            return RowTypeConstraint.from_fields([(c.text_field, str)] + c.output_fields), str
        return Any, Any

    def columnar(self, element_type: Any) -> bool:
        """Whether rows of ``element_type`` are classified a table at a time: schema'd rows that Arrow
        carries, unless Beam's stateful batching (``max_batch_duration_secs``) was asked for."""
        return (isinstance(element_type, RowTypeConstraint) and self.config.max_batch_duration_secs is None
                and arrow_schema_of(element_type) is not None)

    def expand(self, pcoll):
        c = self.config
        advise(pcoll.pipeline.options, c.backend)
        out_type, element_type = self._output_type(pcoll.element_type)
        if self.columnar(element_type):
            return self._expand_columnar(pcoll, out_type, element_type)
        # Rows one at a time (strings, dicts, rows Arrow does not carry) or batched by Beam's stateful
        # batching: Beam's batches, as RunInference makes them, made tables of their texts, then the
        # same table steps.
        batches = pcoll | "Batch" >> beam.BatchElements(**self.batching())
        tables = batches | "RowsToTables" >> beam.ParDo(_RowsToTables(
            c.text_field, [n for n, _ in c.output_fields], fail_fast=c.error_output is None)
        ).with_outputs(ERRORS_TAG, main="tables")
        classified, errors = classify_tables(tables.tables, c, self._model_metadata_pcoll)
        rows = classified | "ToRows" >> beam.ParDo(_RowsTablesToRows(c)).with_output_types(out_type)
        if errors is None:
            return rows
        error_type = RowTypeConstraint.from_fields([("element", element_type), ("msg", str), ("stack", str)])
        # Typed: a cross-language client decodes each PCollection's schema, and one inferred from
        # beam.Row(element=...) would have a Python-only 'Any' field.
        errors = (tables[ERRORS_TAG], errors) | "AllErrors" >> beam.Flatten() | "ErrorRows" >> beam.Map(
            lambda r: r).with_output_types(error_type)
        return {"output": rows, c.error_output: errors}

    def batching(self) -> dict[str, Any]:
        """``beam.BatchElements``' arguments for rows one at a time: the configured batch bounds and,
        with ``max_batch_duration_secs`` (streaming), Beam's stateful batching, bucketed by text length
        so that short texts are not padded to long ones."""
        kwargs = dict(self.model_handler().batch_elements_kwargs())
        if "length_fn" in kwargs:
            kwargs["length_fn"] = _TextLength(self.config.text_field)
        return kwargs

    def _expand_columnar(self, pcoll, out_type, element_type):
        """Schema'd rows in batches of ``pa.Table`` (Beam's batched DoFns), classified by the steps of
        ``ClassifyTextBatches``: no Beam element a row inside the transform, and none at all between
        a batch producer and a batch consumer (Parquet in, Parquet out)."""
        c = self.config
        tables = to_tables(pcoll, c.max_batch_size, element_type)
        classified, errors = classify_tables(tables, c, self._model_metadata_pcoll)
        to_rows = TablesToRows(out_type) if self.rows_out_one_at_a_time else TablesToRowBatches(out_type)
        rows = classified | "TablesToRows" >> beam.ParDo(to_rows).with_output_types(out_type)
        if errors is None:
            return rows
        error_type = RowTypeConstraint.from_fields([("element", element_type), ("msg", str), ("stack", str)])
        errors = errors | "ErrorRows" >> beam.Map(_with_row_element).with_output_types(error_type)
        return {"output": rows, c.error_output: errors}


def _with_row_element(error: beam.Row) -> beam.Row:
    """An error row of the table steps (its element a dict) with its element as a row again."""
    element = error.element
    return beam.Row(element=beam.Row(**element) if isinstance(element, Mapping) else element,
                    msg=error.msg, stack=error.stack)
