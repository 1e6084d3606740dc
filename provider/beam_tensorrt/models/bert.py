"""BERT encoders with a mean-pooled classification head: the weights, and the forward pass, once.

``pooled_bert_forward`` is the one definition of the model. It is written against ``BertOps``, a
handful of tensor operations, and run by two implementations: the ONNX graph builder
(``models/onnx_bert.py``: records the operations as a graph, what ONNX Runtime and TensorRT run)
and the PyTorch backend (``backends/torch.py``: runs them eagerly on a GPU, also what the
training script fine-tunes). Weights come from one loader, ``load_pooled_bert``, for both.

Pure numpy here: no torch, no onnx.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol, Sequence, TypeVar

import numpy as np

T = TypeVar("T")  # a tensor: an ONNX value name, or a torch.Tensor

# The encoder's dense layers, by their checkpoint names (weights stored [out, in]).
LAYER_DENSE = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
               "intermediate.dense", "output.dense")


@dataclass(frozen=True)
class BertShape:
    hidden_size: int
    num_heads: int
    num_layers: int
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_config(cls, config: Mapping) -> "BertShape":
        act = config.get("hidden_act", "gelu")
        if act != "gelu":
            raise ValueError(f"unsupported hidden_act {act!r}: only exact 'gelu' is implemented")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        return cls(hidden_size=int(config["hidden_size"]), num_heads=int(config["num_attention_heads"]),
                   num_layers=int(config["num_hidden_layers"]),
                   layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)))


@dataclass
class PooledBert:
    """An encoder's config and weights (checkpoint names, numpy) plus the head's dense layers
    (weights stored [in, out]); ReLU between head layers, none after the last."""

    config: dict
    encoder: dict[str, np.ndarray]
    head: list[tuple[np.ndarray, np.ndarray]]
    normalize: bool = True  # L2-normalise the pooled embedding (sentence-transformers' models)

    @property
    def shape(self) -> BertShape:
        return BertShape.from_config(self.config)

    @property
    def num_labels(self) -> int:
        return int(np.asarray(self.head[-1][1]).shape[0])


class BertOps(Protocol[T]):
    """The operations the forward pass is written in. Dense weights come as numpy arrays (or,
    for training, tensors) in checkpoint layout: ``[out, in]``.

    ``mask`` is what says which tokens belong together, in one of two layouts an implementation
    is built for: *padded*, one row a sequence and ``mask`` its attention mask ([B, S], 1 = token);
    or *packed*, several rows a sequence and ``mask`` their segment ids ([B, S], 1..k for the k-th
    row, 0 = padding), so that tokens attend only within their row and ``mean_pool`` returns one
    vector per slot ([B, S, H], slot j = segment j + 1)."""

    def embed(self, table: Any, ids: T) -> T: ...
    def positions(self, table: Any, like: T) -> T: ...
    def add(self, a: T, b: T) -> T: ...
    def layer_norm(self, x: T, gamma: Any, beta: Any, eps: float) -> T: ...
    def dense(self, x: T, weight: Any, bias: Any) -> T: ...
    def gelu(self, x: T) -> T: ...
    def relu(self, x: T) -> T: ...
    def attention(self, q: T, k: T, v: T, mask: T, num_heads: int, head_size: int) -> T: ...
    def mean_pool(self, x: T, mask: T) -> T: ...
    def l2_normalize(self, x: T) -> T: ...
    def head_dense(self, x: T, weight: Any, bias: Any) -> T: ...


def pooled_bert_forward(ops: BertOps[T], weights: Mapping[str, Any], head: Sequence[tuple[Any, Any]],
                        shape: BertShape, input_ids: T, mask: T, token_type_ids: T,
                        normalize: bool = True, position_ids: Optional[T] = None) -> T:
    """Token ids -> mean-pooled (optionally L2-normalised) embedding -> head -> logits.

    ``mask``: the attention mask, or with packing ops the segment ids (see ``BertOps``), in which
    case ``position_ids`` gives each token's position within its row. With an empty ``head`` the
    pooled embedding itself is returned."""
    eps = shape.layer_norm_eps
    table = weights["embeddings.position_embeddings.weight"]
    positions = ops.positions(table, input_ids) if position_ids is None else ops.embed(table, position_ids)
    x = ops.add(ops.add(ops.embed(weights["embeddings.word_embeddings.weight"], input_ids), positions),
                ops.embed(weights["embeddings.token_type_embeddings.weight"], token_type_ids))
    x = ops.layer_norm(x, weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], eps)
    for i in range(shape.num_layers):
        p = f"encoder.layer.{i}."

        def dense(y: T, name: str) -> T:
            return ops.dense(y, weights[p + name + ".weight"], weights[p + name + ".bias"])

        ctx = ops.attention(dense(x, "attention.self.query"), dense(x, "attention.self.key"),
                            dense(x, "attention.self.value"), mask, shape.num_heads,
                            shape.hidden_size // shape.num_heads)
        x = ops.layer_norm(ops.add(dense(ctx, "attention.output.dense"), x),
                           weights[p + "attention.output.LayerNorm.weight"],
                           weights[p + "attention.output.LayerNorm.bias"], eps)
        inner = ops.gelu(dense(x, "intermediate.dense"))
        x = ops.layer_norm(ops.add(dense(inner, "output.dense"), x), weights[p + "output.LayerNorm.weight"],
                           weights[p + "output.LayerNorm.bias"], eps)
    y = ops.mean_pool(x, mask)
    if normalize:
        y = ops.l2_normalize(y)
    for j, (w, b) in enumerate(head):
        y = ops.head_dense(y, w, b)
        if j < len(head) - 1:
            y = ops.relu(y)
    return y


# -- weights ------------------------------------------------------------------------------------

def read_head(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Head layers ``head.J.weight`` [in, out] / ``head.J.bias`` from a safetensors file."""
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    while f"head.{len(layers)}.weight" in tensors:
        j = len(layers)
        layers.append((tensors[f"head.{j}.weight"], tensors[f"head.{j}.bias"]))
    if not layers:
        raise ValueError(f"{path} holds no head layers")
    return layers


def merge_adapters(encoder: Mapping[str, np.ndarray], adapters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The encoder's weights with fine-tuning applied: for each low-rank pair ``NAME.lora_A``
    [r, in] / ``NAME.lora_B`` [out, r] (scale folded into B), ``NAME.weight += B @ A``; any other
    tensor (a fine-tuned bias or LayerNorm) replaces the encoder's tensor of that name."""
    merged = dict(encoder)
    for name, value in adapters.items():
        if name.endswith(".lora_B"):
            continue
        if name.endswith(".lora_A"):
            base = name[:-len(".lora_A")]
            b = adapters[base + ".lora_B"]
            w = merged[base + ".weight"]
            merged[base + ".weight"] = (w.astype(np.float32) + b.astype(np.float32) @ value.astype(np.float32))
            continue
        if name not in merged:
            raise ValueError(f"adapter tensor {name!r} matches no encoder weight")
        if merged[name].shape != value.shape:
            raise ValueError(f"adapter tensor {name!r} has shape {value.shape}, the encoder's is {merged[name].shape}")
        merged[name] = value.astype(np.float32)
    return merged


def load_pooled_bert(encoder_dir: Path, head_file: Path, adapters_file: Optional[Path] = None,
                     normalize: bool = True) -> PooledBert:
    """The one weight loader: an encoder directory (``config.json``, ``model.safetensors``),
    optional fine-tuning adapters merged in, and the head."""
    from safetensors.numpy import load_file

    config = json.loads((encoder_dir / "config.json").read_text())
    encoder = load_file(str(encoder_dir / "model.safetensors"))
    if adapters_file is not None:
        encoder = merge_adapters(encoder, load_file(str(adapters_file)))
    return PooledBert(config, encoder, read_head(head_file), normalize)

