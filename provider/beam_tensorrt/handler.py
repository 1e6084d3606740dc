"""Beam ModelHandler: text -> ClassPrediction(label, score, probabilities), on RunInference."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable, Optional, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from .backends import BackendOptions
from .classifier import TextClassifier
from .models import DEFAULT_MODEL, resolve_model

log = logging.getLogger(__name__)

# Length buckets in characters (a proxy for tokens that needs no tokenizer at batching time):
# roughly 8, 16, 32, 64, 128 and 256 tokens of English.
CHAR_BUCKETS = [32, 64, 128, 256, 512, 1024]


def text_length(element: Any) -> int:
    """Length of an element for Beam's length-aware batching; elements may be keyed (key, text)."""
    text = element[1] if isinstance(element, tuple) else element
    return len(text)


class TextClassificationModelHandler(ModelHandler[str, PredictionResult, TextClassifier]):
    """Classifies strings with a model artifact on any backend.

    Batching is Beam's: ``min_batch_size``/``max_batch_size``, and with
    ``max_batch_duration_secs`` (streaming) Beam's length-aware bucketing keyed
    on text length, so short texts are not padded to long ones.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        backend: str = "auto",
        max_seq_len: int = 128,
        *,
        options: BackendOptions = BackendOptions(),
        min_batch_size: Optional[int] = None,
        max_batch_size: Optional[int] = None,
        max_batch_duration_secs: Optional[int] = None,
        length_aware: bool = True,
        model_copies: Optional[int] = None,
        large_model: bool = False,
    ):
        bucketing = length_aware and max_batch_duration_secs is not None
        super().__init__(
            min_batch_size=min_batch_size,
            max_batch_size=max_batch_size,
            max_batch_duration_secs=max_batch_duration_secs,
            batch_length_fn=text_length if bucketing else None,
            batch_bucket_boundaries=CHAR_BUCKETS if bucketing else None,
            model_copies=model_copies,
            large_model=large_model,
        )
        self._model = model
        self._backend = backend
        self._max_seq_len = max_seq_len
        self._options = options

    def load_model(self) -> TextClassifier:
        artifact = resolve_model(self._model)
        options = dataclasses.replace(self._options, max_seq_len=self._max_seq_len)
        classifier = TextClassifier.open(artifact, self._backend, self._max_seq_len, options)
        log.info("loaded %s on backend %s", artifact.manifest.name, classifier.session.name)
        return classifier

    def run_inference(self, batch: Sequence[str], model: TextClassifier,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        predictions = model.classify(batch)
        return [PredictionResult(text, pred, self._model) for text, pred in zip(batch, predictions)]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return len("".join(batch).encode("utf-8", "surrogatepass"))  # one encode, not one a row

    def get_metrics_namespace(self) -> str:
        return "BeamTensorRT_ClassifyText"

    def __repr__(self) -> str:
        return f"TextClassificationModelHandler(model={self._model!r}, backend={self._backend!r})"
