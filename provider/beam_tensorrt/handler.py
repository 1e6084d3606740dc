"""Beam ModelHandler: text -> ClassPrediction(label, score, probabilities), on RunInference."""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

from .artifact import MANIFEST
from .backends import BackendOptions
from .beam_inference import ModelHandler, PredictionResult, RunInference
from .classifier import TextClassifier
from .config import ClassifyTextConfig
from .errors import ConfigError
from .models import DEFAULT_MODEL, resolve_model

if TYPE_CHECKING:
    import apache_beam as beam

log = logging.getLogger(__name__)

# Length buckets in characters (a proxy for tokens that needs no tokenizer at batching time):
# roughly 8, 16, 32, 64, 128 and 256 tokens of English.
CHAR_BUCKETS = [32, 64, 128, 256, 512, 1024]

# Classifiers a worker pool opened before its worker was handed a job (`worker-pool --preload`), by
# what they were opened with; the first handler that asks for the same takes it instead of loading.
_preloaded: dict[tuple, TextClassifier] = {}
_preloaded_lock = threading.Lock()


def preload(handler: "TextClassificationModelHandler") -> None:
    """Open ``handler``'s classifier now, for the first ``load_model`` in this process that asks for
    the same model, backend and backend options (a prestarted pool worker)."""
    classifier = handler.open_classifier()
    with _preloaded_lock:
        _preloaded[handler.session_key()] = classifier


def text_length(element: Any) -> int:
    """Length of an element for Beam's length-aware batching; elements may be keyed (key, text)."""
    text = element[1] if isinstance(element, tuple) else element
    return len(text)


class TextClassificationModelHandler(ModelHandler[str, PredictionResult, TextClassifier]):
    """A Beam ``ModelHandler`` that classifies strings with a model artifact on any backend; use it
    with Beam's ``RunInference`` directly (``ClassifyText`` wraps it with row handling).

    Batching and metrics are Beam's: ``min_batch_size``/``max_batch_size``, and with
    ``max_batch_duration_secs`` (streaming) Beam's length-aware bucketing keyed on text length, so
    short texts are not padded to long ones. Each prediction's ``inference`` is a
    ``ClassPrediction(label, score, probabilities, truncated)``, or a ``RowFailure(reason)`` for a row
    that failed alone. Model updates from RunInference's ``model_metadata_pcoll`` side input (for
    example ``WatchFilePattern`` over artifact directories) swap the artifact in place.

    Example::

        handler = TextClassificationModelHandler("sentiment-minilm", backend="onnxruntime")
        with beam.Pipeline() as p:
            _ = (p | beam.Create(["great film", "dull film"]) | RunInference(handler)
                   | beam.Map(lambda r: (r.example, r.inference.label)))

    Args:
        model: a named model (``sentiment-minilm``) or the path or URL of an artifact directory.
        backend: ``auto``, ``onnxruntime``, ``tensorrt`` or ``torch``.
        options: how the backend opens the model: ``max_seq_len``, device, engine cache...
            (``ClassifyTextConfig.backend_options()`` makes them from a config).
        min_batch_size, max_batch_size: Beam's batch bounds.
        max_batch_duration_secs: streaming: the longest a batch waits to fill (turns on bucketing).
        length_aware: bucket by text length when batching in streaming.
        model_copies: models per machine shared by its SDK processes (Beam's model sharing).
        large_model: Beam's ``large_model`` (one copy per machine).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        backend: str = "auto",
        options: BackendOptions = BackendOptions(),
        *,
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
        self._configured_model = model
        self._backend = backend
        self._options = options
        self._over_shared: dict[int, tuple[Any, TextClassifier]] = {}  # classifier_for's, made in the worker

    @classmethod
    def from_config(cls, config: ClassifyTextConfig, **batching: Any) -> "TextClassificationModelHandler":
        """The handler ``config`` describes; ``batching``: Beam's batch bounds, where they apply."""
        return cls(config.model, config.backend, config.backend_options(), model_copies=config.model_copies,
                   **batching)

    def session_key(self) -> tuple:
        """What a loaded classifier depends on (batch sizes do not matter)."""
        return (self._model, self._backend, self._options)

    def load_model(self) -> TextClassifier:
        with _preloaded_lock:
            classifier = _preloaded.pop(self.session_key(), None)
        if classifier is not None:
            log.info("using %s on backend %s, loaded before the job by the worker pool", classifier.artifact.manifest.name,
                     classifier.session.name)
            return classifier
        return self.open_classifier()

    def open_classifier(self) -> TextClassifier:
        artifact = resolve_model(self._model)
        classifier = TextClassifier.open(artifact, self._backend, self._options)
        log.info("loaded %s on backend %s", artifact.manifest.name, classifier.session.name)
        return classifier

    def update_model_path(self, model_path: Optional[str] = None) -> None:
        """RunInference's model refresh: ``model_path`` comes from its ``model_metadata_pcoll`` side
        input (``ModelMetadata.model_id``). An artifact directory, or a file in one (what a
        ``WatchFilePattern`` over ``.../*/manifest.json`` reports); empty: the configured model."""
        if not model_path:
            self._model = self._configured_model
            return
        path = model_path.rstrip("/")
        self._model = path[: -len("/" + MANIFEST)] if path.endswith("/" + MANIFEST) else path

    def classifier_for(self, model: TextClassifier) -> TextClassifier:
        """The classifier to call for the ``model`` RunInference passes: the model itself, or, when
        the model is shared across processes (``model_copies``: a proxy to the process holding it),
        a classifier in this process that tokenizes here and sends token ids there
        (``backends.shared``), so that tokenization stays spread over the SDK processes."""
        if not self.share_model_across_processes():
            return model
        # One local classifier a copy: Beam hands the copies' proxies round robin.
        local = self._over_shared.get(id(model))
        if local is None or local[0] is not model:
            if len(self._over_shared) >= self.model_copies():  # a refreshed model replaces every copy
                self._over_shared = {}
            local = self._over_shared[id(model)] = (model, TextClassifier.over_shared(model))
        return local[1]

    def run_inference(self, batch: Sequence[str], model: TextClassifier,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        predictions = self.classifier_for(model).classify(batch)
        # The model may be a proxy to another process (model_copies): the id is the handler's. Strict:
        # an answer for fewer rows fails the batch (its rows reach the errors) rather than losing rows.
        return [PredictionResult(text, pred, self._model) for text, pred in zip(batch, predictions, strict=True)]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return len("".join(batch).encode("utf-8", "surrogatepass"))  # one encode, not one a row

    def get_metrics_namespace(self) -> str:
        return "BeamTensorRT_ClassifyText"

    def __repr__(self) -> str:
        return f"TextClassificationModelHandler(model={self._model!r}, backend={self._backend!r})"


def check_model_refresh(config: ClassifyTextConfig, model_metadata_pcoll: "Optional[beam.PCollection]") -> None:
    """At construction: a transform takes its model updates from one place."""
    if model_metadata_pcoll is not None and config.model_watch_pattern:
        raise ConfigError("model_watch_pattern", "give either model_watch_pattern or model_metadata_pcoll, not both")


def run_inference(handler: ModelHandler, config: ClassifyTextConfig,
                  model_metadata_pcoll: "Optional[beam.PCollection]" = None) -> RunInference:
    """Beam's RunInference on ``handler``, with the model refresh ``config`` asks for: a side input
    of model updates, or a file pattern Beam watches."""
    if model_metadata_pcoll is not None:
        return RunInference(handler, model_metadata_pcoll=model_metadata_pcoll)
    if config.model_watch_pattern:
        return RunInference(handler, watch_model_pattern=config.model_watch_pattern,
                            interval=config.model_watch_interval_secs)
    return RunInference(handler)
