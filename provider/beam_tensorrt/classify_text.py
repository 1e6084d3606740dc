"""``ClassifyText``: the schema'd PTransform that Python, Beam YAML and Java pipelines call."""
from __future__ import annotations

from typing import Any, Mapping, Optional

import apache_beam as beam
from apache_beam.typehints.row_type import RowTypeConstraint

from .arrow_rows import TablesToRowBatches, TablesToRows, arrow_schema_of, to_tables
from .beam_inference import KeyedModelHandler
from .classifier import ClassPrediction, RowFailure
from .classify_text_batches import classify_tables
from .config import ClassifyTextConfig
from .errors import ConfigError
from .handler import TextClassificationModelHandler, check_model_refresh, run_inference
from .local_parallelism import advise
from .rows import (ERRORS_TAG, InvalidRowError, check_text, error_row, fail_on_error_row, failed_batch_rows,
                   output_clash, output_clash_reason, rejected)


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


class _SplitByValidity(beam.DoFn):
    """Valid rows go on as (fields, text); the rest to the error output with the reason."""

    def __init__(self, text_field: str, output_names: list[str], fail_fast: bool, allow_empty: bool):
        self._text_field = text_field
        self._output_names = output_names
        self._fail_fast = fail_fast
        self._allow_empty = allow_empty

    def setup(self):
        self._outputs = frozenset(self._output_names)

    def process(self, element):
        try:
            fields = _fields_of(element, self._text_field)
            if not self._outputs.isdisjoint(fields):
                raise InvalidRowError(output_clash_reason(output_clash(self._output_names, fields)))
            text = check_text(fields, self._text_field, self._allow_empty)
        except InvalidRowError as e:
            yield rejected(element, str(e), self._fail_fast)
            return
        yield fields, text


class _ToOutputRow(beam.DoFn):
    def __init__(self, config: ClassifyTextConfig, element_of):
        self._c = config
        self._element_of = element_of

    def process(self, keyed):
        fields, result = keyed
        pred: ClassPrediction = result.inference
        if isinstance(pred, RowFailure):
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, error_row(self._element_of(fields), pred.reason))
            return
        out = dict(fields)
        out[self._c.label_field] = pred.label
        out[self._c.score_field] = pred.score
        if self._c.probabilities_field:
            out[self._c.probabilities_field] = pred.probabilities
        if self._c.truncated_field:
            out[self._c.truncated_field] = pred.truncated
        yield beam.Row(**out)


class _FieldsKeyedHandler(KeyedModelHandler):
    """Beam's KeyedModelHandler, keyed by the rest of each row, counting only the texts' bytes.

    Beam's own count pickles every batch's keys for the ``num_bytes`` metric: on 1,024 short rows
    that cost more than tokenizing them (bench/NOTES.md). The metric here is the text classified."""

    def __init__(self, texts: TextClassificationModelHandler):
        super().__init__(texts)
        self._texts = texts

    def get_num_bytes(self, batch) -> int:
        return self._texts.get_num_bytes([text for _, text in batch])


class _FailedBatchToErrors(beam.DoFn):
    """RunInference's failed batches -> one error row per input row, with the exception."""

    def __init__(self, element_of):
        self._element_of = element_of

    def process(self, failure):
        batch, exc_info = failure
        return failed_batch_rows((self._element_of(fields) for fields, _text in batch), exc_info)


class ClassifyText(beam.PTransform):
    """Classifies the text field of each row with a BERT-family model (TensorRT, PyTorch CUDA or ONNX
    Runtime), on Beam's RunInference.

    Output rows keep every input field and add the label and its probability (and, on request, every
    label's probability and a truncation flag). With a schema'd input the output has a Beam schema
    (input fields + added fields), so Beam YAML and Java pipelines read it.

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
        as_input = (lambda fields: fields[c.text_field]) if element_type is str else (
            (lambda fields: beam.Row(**fields)) if isinstance(element_type, RowTypeConstraint) else (lambda f: f))
        split = pcoll | "CheckText" >> beam.ParDo(
            _SplitByValidity(c.text_field, [n for n, _ in c.output_fields], fail_fast=c.error_output is None,
                             allow_empty=c.allow_empty_text)
        ).with_outputs(ERRORS_TAG, main="valid")
        inference = run_inference(_FieldsKeyedHandler(self.model_handler()), c, self._model_metadata_pcoll)
        if c.error_output is None:
            predictions = split.valid | "RunInference" >> inference
        else:
            predictions, failed = split.valid | "RunInference" >> inference.with_exception_handling()
        rows = predictions | "ToRows" >> beam.ParDo(_ToOutputRow(c, as_input)).with_output_types(
            out_type).with_outputs(ERRORS_TAG, main="rows")
        classified = rows.rows
        if c.error_output is None:
            _ = rows[ERRORS_TAG] | "FailOnRowError" >> beam.Map(fail_on_error_row)
            return classified
        error_type = RowTypeConstraint.from_fields([("element", element_type), ("msg", str), ("stack", str)])
        # Typed at every step: a cross-language client decodes each PCollection's schema, and one
        # inferred from beam.Row(element=...) would have a Python-only 'Any' field.
        failed_rows = failed.failed_inferences | "FailedBatches" >> beam.ParDo(
            _FailedBatchToErrors(as_input)).with_output_types(error_type)
        invalid = split[ERRORS_TAG] | "InvalidRows" >> beam.Map(lambda r: r).with_output_types(error_type)
        row_failures = rows[ERRORS_TAG] | "RowFailures" >> beam.Map(lambda r: r).with_output_types(error_type)
        errors = (invalid, failed_rows, row_failures) | "Errors" >> beam.Flatten().with_output_types(error_type)
        return {"output": classified, c.error_output: errors}

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
