"""beam-tensorrt: GPU BERT text classification for Apache Beam, cross-language.

Light on import: torch, TensorRT and CUDA are imported only by the backend that
uses them, so this package imports on machines without a GPU (job submission,
the expansion service). Importing it changes nothing in the process (loggers,
environment): only our entry points set up logging (``logs.quiet_logging``).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["ClassifyText", "ClassifyTextBatches", "TextClassificationModelHandler", "__version__"]


def __getattr__(name: str):
    # Lazy: `import beam_tensorrt` should not pay for apache_beam's import.
    if name == "ClassifyText":
        from .classify_text import ClassifyText

        return ClassifyText
    if name == "ClassifyTextBatches":
        from .classify_text_batches import ClassifyTextBatches

        return ClassifyTextBatches
    if name == "TextClassificationModelHandler":
        from .handler import TextClassificationModelHandler

        return TextClassificationModelHandler
    raise AttributeError(name)
