"""ClassifyText's model handler for Beam YAML's own ``RunInference``.

Beam YAML users know ``type: RunInference`` with a ``model_handler: {type: ..., config: ...}``; Beam
2.77 registers two handler types (``VertexAIModelHandlerJSON``, ``HuggingFacePipelineModelHandler``)
through ``ModelHandlerProvider.register_handler_type``. This module registers a third,
``ClassifyTextModelHandler``, whose config is ClassifyText's (``ClassifyTextConfig``: the same
fields, validated at construction with the field named) and whose batches are ClassifyText's
(``min_batch_size``/``max_batch_size``/``max_batch_duration_secs``). Each output row gets the
inference field (Beam's ``inference_tag``, default ``inference``) holding a row of the configured
output fields (``label``, ``score``...).

Beam's RunInference has no error output here: a row that cannot be classified (no text, not a
string, empty) fails the pipeline with the reason; ``type: ClassifyText`` routes such rows to an
error output instead, and classifies Parquet row groups a table at a time (faster).

Imported by ``beam-tensorrt yaml`` for a pipeline that names the handler type (Beam's own
``python -m apache_beam.yaml.main`` has no way to load a handler type from a package).

Example (a pipeline's step)::

    - type: RunInference
      config:
        model_handler:
          type: ClassifyTextModelHandler
          config: {text_field: review, backend: auto}
"""
from __future__ import annotations

from typing import Any, Optional

from apache_beam.typehints.row_type import RowTypeConstraint
from apache_beam.yaml.yaml_ml import ModelHandlerProvider

from ..classifier import RowFailure
from ..config import ClassifyTextConfig
from ..handler import TextClassificationModelHandler
from ..rows import check_text

HANDLER_TYPE = "ClassifyTextModelHandler"


class ClassifyTextModelHandlerProvider(ModelHandlerProvider):
    """Beam YAML's ``ModelHandlerProvider`` for ``TextClassificationModelHandler``.

    Args:
        preprocess, postprocess: Beam YAML's own (a ``callable`` or a ``path`` and ``name``); the
            defaults take the row's ``text_field`` and make a row of the output fields.
        **config: ClassifyText's configuration fields (``model``, ``backend``, ``text_field``...).
    """

    def __init__(self, preprocess: Optional[dict[str, str]] = None, postprocess: Optional[dict[str, str]] = None,
                 **config: Any):
        self._config = ClassifyTextConfig.from_kwargs(config)
        c = self._config
        handler = TextClassificationModelHandler.from_config(
            c, min_batch_size=c.min_batch_size, max_batch_size=c.max_batch_size,
            max_batch_duration_secs=c.max_batch_duration_secs)
        super().__init__(handler, preprocess, postprocess)

    @staticmethod
    def validate(model_handler_spec: Any) -> None:
        """The config was validated when the provider was made (``ClassifyTextConfig``)."""

    def default_preprocess_fn(self):  # type: ignore[override]
        c = self._config
        return lambda row: check_text(row._asdict(), c.text_field, c.allow_empty_text)

    def default_postprocess_fn(self):  # type: ignore[override]
        c = self._config
        names = [name for name, _ in c.output_fields]
        row_type = self.inference_output_type()

        def to_row(result):
            prediction = result.inference
            if isinstance(prediction, RowFailure):
                raise ValueError(f"a row could not be classified: {prediction.reason}")
            values = {c.label_field: prediction.label, c.score_field: float(prediction.score)}
            if c.probabilities_field:
                values[c.probabilities_field] = [float(p) for p in prediction.probabilities]
            if c.truncated_field:
                values[c.truncated_field] = bool(prediction.truncated)
            return row_type.user_type(*(values[n] for n in names))

        return to_row

    def inference_output_type(self):
        return RowTypeConstraint.from_fields(self._config.output_fields)


def register() -> None:
    """Make ``ClassifyTextModelHandler`` a model handler type of Beam YAML's RunInference (once)."""
    ModelHandlerProvider.handler_types.setdefault(HANDLER_TYPE, ClassifyTextModelHandlerProvider)


__all__ = ["HANDLER_TYPE", "ClassifyTextModelHandlerProvider", "register"]
