"""ClassifyText's configuration: one typed, documented schema.

The same field list drives the Python constructor's validation, the expansion
service's published configuration schema, the Beam YAML provider and the
configuration reference (docs/configuration.md), so they cannot disagree.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Optional

from .backends import BACKENDS, BackendOptions
from .backends.base import PRECISIONS, REDUCED_PRECISIONS
from .models import DEFAULT_MODEL
from .errors import ConfigError

# The backend settings' defaults are BackendOptions': written once, there.
_BACKEND = BackendOptions()

# Checkpoint position limits of BERT-family encoders; a longer setting cannot work.
MAX_SEQ_LEN_LIMIT = 512
# Rows a table: one RunInference batch of schema'd rows in ClassifyText (its max_batch_size default),
# the main job (--batch-size) and ReadFiles. Per-batch costs (a Beam call, a table, the GPU's
# launches) vanish at this size; 64, the default until 2026-12-07, made a Beam YAML file on CSV
# 2x slower than the main job on the 2-core CPU box (docs/performance.md). Memory stays bounded:
# the classifier runs a batch in groups of its backend's token budget.
TABLE_ROWS = 8192


# Functional form: with postponed annotations a class body would hand Beam the string 'str'.
ErrorHandling = NamedTuple("ErrorHandling", [("output", str)])
ErrorHandling.__doc__ = "Beam YAML's ``error_handling``: the name of the output for rows that cannot be classified."


def _doc(text: str, **extra: Any) -> dict:
    return {"doc": text, **extra}


@dataclass
class ClassifyTextConfig:
    model: str = field(default=DEFAULT_MODEL, metadata=_doc(
        "Named model (`sentiment-minilm`) or the path or URL (any Beam filesystem) of an artifact "
        "directory made by `beam-tensorrt export`."))
    backend: str = field(default="auto", metadata=_doc(
        "Inference backend: `auto` (TensorRT if importable with a GPU, else PyTorch on a GPU, "
        "else ONNX Runtime), `onnxruntime`, `tensorrt` or `torch`.", choices=BACKENDS))
    text_field: str = field(default="text", metadata=_doc("Input field holding the text to classify."))
    label_field: str = field(default="label", metadata=_doc("Output field for the predicted label."))
    score_field: str = field(default="score", metadata=_doc("Output field for the probability of that label."))
    probabilities_field: Optional[str] = field(default=None, metadata=_doc(
        "If set, output field for the list of every label's probability, in the model's label order."))
    truncated_field: Optional[str] = field(default=None, metadata=_doc(
        "If set, output boolean field that is true where the text was cut at `max_seq_len` tokens."))
    allow_empty_text: bool = field(default=False, metadata=_doc(
        "Classify empty and whitespace-only texts too. By default they go to the error output (or fail "
        "the pipeline without `error_handling`): a model's label for no text means nothing."))
    max_seq_len: int = field(default=_BACKEND.max_seq_len, metadata=_doc(
        "Tokens kept per text (longer texts are truncated); at most 512.", min=1, max=MAX_SEQ_LEN_LIMIT))
    min_batch_size: int = field(default=1, metadata=_doc(
        "Smallest batch Beam's `BatchElements` forms of rows that arrive one at a time (strings, "
        "dicts, rows Arrow does not carry, or with `max_batch_duration_secs`).", min=1))
    max_batch_size: int = field(default=TABLE_ROWS, metadata=_doc(
        "Largest batch: of Beam's batches of rows one at a time (Beam grows them up to this while larger "
        "batches pay), and of the tables schema'd rows are classified in (Beam's batches of up to 4,096 "
        "rows, or a Parquet row group, cut to this size). Streaming batches end with the runner's "
        "bundles first.", min=1))
    max_batch_duration_secs: Optional[int] = field(default=None, metadata=_doc(
        "Streaming: longest time a batch waits to fill. Also turns on Beam's length-aware "
        "bucketing, so texts of similar length share a batch.", min=1))
    intra_op_threads: int = field(default=_BACKEND.intra_op_threads, metadata=_doc(
        "ONNX Runtime threads per inference call (0: one per core).", min=0))
    device: str = field(default=_BACKEND.device, metadata=_doc("`auto`, `cpu`, `cuda` or `cuda:N`."))
    packing: bool = field(default=_BACKEND.packing, metadata=_doc(
        "GPU backends: run several short texts per sequence (pooled-BERT models), so that almost no "
        "computed token is padding. Off: one text a sequence, padded to its group's longest."))
    cuda_graphs: bool = field(default=_BACKEND.cuda_graphs, metadata=_doc(
        "GPU backends: replay CUDA graphs for batch shapes that recur (less host time a batch). Off: "
        "every batch launched kernel by kernel (a profiler that cannot trace graphs, a debugging run)."))
    precision: str = field(default=_BACKEND.precision, metadata=_doc(
        "What the GPU computes in: `fp16`, `fp32`, or with backend `tensorrt` `int8` or `fp8` (`fp8`: "
        "Ada or Hopper GPUs). A reduced-precision plan is built ahead, calibrated and checked against "
        "fp16, by `beam-tensorrt build --precision` into the engine cache the workers use.", choices=PRECISIONS))
    engine_cache: Optional[str] = field(default=_BACKEND.engine_cache, metadata=_doc(
        "TensorRT: directory or Beam filesystem URL where workers share built engine plans."))
    model_watch_pattern: Optional[str] = field(default=None, metadata=_doc(
        "Streaming: watch this file pattern (any Beam filesystem) for new model artifacts, e.g. "
        "`gs://bucket/models/*/manifest.json`, and swap to the newest without stopping the pipeline "
        "(Beam's model refresh). Write each version to a new directory, its manifest last."))
    model_watch_interval_secs: int = field(default=360, metadata=_doc(
        "Seconds between checks of `model_watch_pattern`.", min=1))
    model_copies: Optional[int] = field(default=None, metadata=_doc(
        "Load this many copies of the model per machine, shared by all its SDK processes (Beam's "
        "`model_copies`): each SDK process tokenizes its rows and sends token ids to a copy. Unset: one "
        "per SDK process, shared by its threads.", min=1))
    error_handling: Optional[ErrorHandling] = field(default=None, metadata=_doc(
        "Beam YAML's error handling, `{output: NAME}`: rows that cannot be classified go to the output "
        "NAME with the reason (fields `element`, `msg`, `stack`). Unset: such a row fails the pipeline."))

    @property
    def error_output(self) -> Optional[str]:
        """The error output's name, or None: a row that cannot be classified fails the pipeline."""
        return self.error_handling.output if self.error_handling is not None else None

    def backend_options(self) -> BackendOptions:
        """The settings a backend opens the model with: the one path from this config to it."""
        return BackendOptions(max_seq_len=self.max_seq_len, device=self.device, packing=self.packing,
                              intra_op_threads=self.intra_op_threads, engine_cache=self.engine_cache,
                              precision=self.precision, cuda_graphs=self.cuda_graphs)

    def validate(self) -> "ClassifyTextConfig":
        hints = typing.get_type_hints(type(self))
        self.error_handling = _error_handling(self.error_handling)
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
            value = getattr(self, f.name)
            if value is None:
                continue
            meta = f.metadata
            if "choices" in meta and value not in meta["choices"]:
                raise ConfigError(f.name, f"{value!r} is not one of {', '.join(meta['choices'])}")
            if "min" in meta and value < meta["min"]:
                raise ConfigError(f.name, f"{value} is below the minimum {meta['min']}")
            if "max" in meta and value > meta["max"]:
                raise ConfigError(f.name, f"{value} is above the maximum {meta['max']}")
            if isinstance(value, str) and f.name != "engine_cache" and not value.strip():
                raise ConfigError(f.name, "must not be empty")
        if self.min_batch_size > self.max_batch_size:
            raise ConfigError("min_batch_size", f"{self.min_batch_size} exceeds max_batch_size {self.max_batch_size}")
        if not (self.device in ("auto", "cpu", "cuda") or
                (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ConfigError("device", f"{self.device!r} is not auto, cpu, cuda or cuda:N")
        if self.precision in REDUCED_PRECISIONS and self.backend != "tensorrt":
            raise ConfigError("precision", f"{self.precision} is computed by TensorRT alone: set backend to "
                                           f"tensorrt (it is {self.backend})")
        outputs = [n for n in (self.label_field, self.score_field, self.probabilities_field, self.truncated_field)
                   if n is not None]
        for name in outputs:
            if outputs.count(name) > 1:
                raise ConfigError("label_field", f"output field name {name!r} is used twice")
        if self.text_field in outputs:
            raise ConfigError("text_field", f"{self.text_field!r} is also an output field: the label or score "
                                            "would replace the text; rename one of them")
        self._check_model()
        return self

    def _check_model(self) -> None:
        from .errors import ArtifactError, MissingEncoderError
        from .models import check_model

        try:
            check_model(self.model)
        except (ArtifactError, MissingEncoderError) as e:
            raise ConfigError("model", str(e)) from None

    @property
    def output_fields(self) -> list[tuple[str, Any]]:
        fields: list[tuple[str, Any]] = [(self.label_field, str), (self.score_field, float)]
        if self.probabilities_field:
            fields.append((self.probabilities_field, typing.List[float]))
        if self.truncated_field:
            fields.append((self.truncated_field, bool))
        return fields

    def to_json(self) -> str:
        """The fields that differ from their defaults, as JSON (``from_json`` reads it back): how the
        config reaches processes of its own, such as a worker pool's preloaded workers."""
        import json

        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if getattr(self, f.name) != f.default}
        if self.error_handling is not None:
            values["error_handling"] = self.error_handling._asdict()
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ClassifyTextConfig":
        import json

        return cls.from_kwargs(json.loads(text))

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> "ClassifyTextConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        for key in kwargs:
            if key not in known:
                raise ConfigError(key, f"unknown field; known fields: {', '.join(sorted(known))}")
        return cls(**kwargs).validate()


def _error_handling(value: Any) -> Optional[ErrorHandling]:
    """``error_handling`` as given by Python (a dict), Beam YAML (a dict) or Java (a Row)."""
    if value is None or isinstance(value, ErrorHandling):
        return value
    if hasattr(value, "_asdict"):  # a Row or NamedTuple, from Java or another SDK
        value = dict(value._asdict())
    if not isinstance(value, Mapping) or not isinstance(value.get("output"), str):
        raise ConfigError("error_handling", "expected a mapping with a string 'output' (the error output's name)")
    unknown = set(value) - {"output"}
    if unknown:
        raise ConfigError("error_handling", f"unknown key(s) {sorted(unknown)}; only 'output' is supported")
    if not value["output"].strip():
        raise ConfigError("error_handling", "'output' must not be empty")
    return ErrorHandling(value["output"])


def _check_type(name: str, value: Any, hint: Any) -> None:
    optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
    if value is None:
        if not optional:
            raise ConfigError(name, "is required")
        return
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    # bool is an int in Python; as a config value it is almost always a mistake.
    if base is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(name, f"expected an integer, got {type(value).__name__} {value!r}")
    if base is str and not isinstance(value, str):
        raise ConfigError(name, f"expected a string, got {type(value).__name__} {value!r}")
    if base is bool and not isinstance(value, bool):
        raise ConfigError(name, f"expected true or false, got {type(value).__name__} {value!r}")


def config_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(ClassifyTextConfig))


def field_type(f: dataclasses.Field) -> tuple[type, bool]:
    """(base Python type, optional?) of a config field."""
    hint = typing.get_type_hints(ClassifyTextConfig)[f.name]
    if typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None)), True
    return hint, False
