"""Build an ONNX graph of a BERT encoder (+ pooling + classification head) from numpy weights.

Why hand-built: the default model must install and build without torch (a CUDA
build of several GB on Linux). The graph uses plain ONNX ops (opset 17), has
dynamic batch and sequence axes, and ONNX Runtime / TensorRT fuse it the same
way they fuse an exported one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

OPSET = 17
# Additive attention bias for padded positions. Large enough that exp() underflows
# to exactly 0 in fp32 and fp16, small enough not to overflow fp16.
MASK_BIAS = -10000.0


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
        return cls(
            hidden_size=int(config["hidden_size"]),
            num_heads=int(config["num_attention_heads"]),
            num_layers=int(config["num_hidden_layers"]),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        )


class _GraphBuilder:
    def __init__(self, float16: bool = False) -> None:
        import onnx  # only needed to build artifacts, never to run them

        self.onnx = onnx
        # Every float weight and constant in one dtype: a strongly typed TensorRT build (the fp16 path
        # TensorRT 10+ recommends) takes its precision from the graph itself.
        self.fdt = np.float16 if float16 else np.float32
        self.tp_float = onnx.TensorProto.FLOAT16 if float16 else onnx.TensorProto.FLOAT
        self.helper = onnx.helper
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(self.fdt)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], **attrs) -> str:
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        # Checkpoints store torch Linear weights as [out, in]; MatMul wants [in, out].
        w = self.const(f"{name}.weight", weight.T.astype(np.float32))
        b = self.const(f"{name}.bias", bias.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, gamma: np.ndarray, beta: np.ndarray, eps: float, name: str) -> str:
        g = self.const(f"{name}.weight", gamma.astype(np.float32))
        b = self.const(f"{name}.bias", beta.astype(np.float32))
        return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        # Exact (erf) GELU, as BERT's "gelu" activation.
        inv_sqrt2 = self.const(f"gelu_c{self._count}", np.array(1 / math.sqrt(2), np.float32))
        one = self.const(f"gelu_one{self._count}", np.array(1.0, np.float32))
        half = self.const(f"gelu_half{self._count}", np.array(0.5, np.float32))
        erf = self.op("Erf", [self.op("Mul", [x, inv_sqrt2])])
        return self.op("Mul", [self.op("Mul", [x, half]), self.op("Add", [erf, one])])


def build_bert_classifier(
    weights: Mapping[str, np.ndarray],
    shape: BertShape,
    head: Sequence[tuple[np.ndarray, np.ndarray]] | None,
    *,
    prefix: str = "",
    normalize: bool = True,
    producer: str = "beam-tensorrt",
    float16: bool = False,
):
    """Return an ``onnx.ModelProto``: token ids -> mean-pooled (optionally L2-normalised)
    sentence embedding -> dense head layers (ReLU between) -> ``logits``.

    With ``head=None`` the output is the pooled ``embedding`` (used to train heads). With
    ``float16`` weights and compute are fp16 (LayerNorm accumulates in fp32) and the output is
    cast back to fp32.
    """
    g = _GraphBuilder(float16)
    h = g.helper
    tp = g.onnx.TensorProto
    H, nh = shape.hidden_size, shape.num_heads
    hd = H // nh

    def w(name: str) -> np.ndarray:
        return np.asarray(weights[prefix + name])

    inputs = [
        h.make_tensor_value_info(n, tp.INT64, ["batch", "sequence"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]

    # Embeddings: word + position + token type, then LayerNorm.
    word = g.op("Gather", [g.const("emb.word", w("embeddings.word_embeddings.weight").astype(np.float32)), "input_ids"])
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)  # 1-D [S]
    pos = g.op("Slice", [g.const("emb.pos", w("embeddings.position_embeddings.weight").astype(np.float32)),
                         g.const("zero_1d", np.array([0], np.int64)), seq_len, g.const("axis0_1d", np.array([0], np.int64))])
    typ = g.op("Gather", [g.const("emb.type", w("embeddings.token_type_embeddings.weight").astype(np.float32)), "token_type_ids"])
    x = g.op("Add", [g.op("Add", [word, pos]), typ])
    x = g.layer_norm(x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), shape.layer_norm_eps, "emb.ln")

    mask_f = g.op("Cast", ["attention_mask"], to=g.tp_float)
    # [B, S] -> [B, 1, 1, S]; 0 where attended, MASK_BIAS where padded.
    inv = g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), mask_f])
    bias = g.op("Unsqueeze", [g.op("Mul", [inv, g.const("mask_bias", np.array(MASK_BIAS, np.float32))]),
                              g.const("axes_12", np.array([1, 2], np.int64))])
    split_shape = g.const("split_heads", np.array([0, 0, nh, hd], np.int64))
    merge_shape = g.const("merge_heads", np.array([0, 0, H], np.int64))
    scale = g.const("attn_scale", np.array(1.0 / math.sqrt(hd), np.float32))

    for i in range(shape.num_layers):
        p = f"encoder.layer.{i}."

        def proj(kind: str) -> str:
            y = g.dense(x, w(p + f"attention.self.{kind}.weight"), w(p + f"attention.self.{kind}.bias"), f"l{i}.{kind}")
            return g.op("Reshape", [y, split_shape])

        q = g.op("Transpose", [proj("query")], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [proj("key")], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [proj("value")], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        attn = g.dense(ctx, w(p + "attention.output.dense.weight"), w(p + "attention.output.dense.bias"), f"l{i}.attn_out")
        x = g.layer_norm(g.op("Add", [attn, x]), w(p + "attention.output.LayerNorm.weight"),
                         w(p + "attention.output.LayerNorm.bias"), shape.layer_norm_eps, f"l{i}.attn_ln")
        inter = g.gelu(g.dense(x, w(p + "intermediate.dense.weight"), w(p + "intermediate.dense.bias"), f"l{i}.inter"))
        out = g.dense(inter, w(p + "output.dense.weight"), w(p + "output.dense.bias"), f"l{i}.out")
        x = g.layer_norm(g.op("Add", [out, x]), w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"),
                         shape.layer_norm_eps, f"l{i}.out_ln")

    # Mean pooling over attended tokens (sentence-transformers' "mean_tokens").
    mask3 = g.op("Unsqueeze", [mask_f, g.const("axes_2", np.array([2], np.int64))])
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask3]), g.const("axes_1", np.array([1], np.int64))], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [mask3, "axes_1"], keepdims=0), g.const("eps_count", np.array(1e-4, np.float32))])
    pooled = g.op("Div", [summed, count])
    if normalize:
        norm = g.op("Max", [g.op("ReduceL2", [pooled], axes=[-1], keepdims=1),
                            g.const("eps_norm", np.array(1e-6 if float16 else 1e-12, np.float32))])
        pooled = g.op("Div", [pooled, norm])

    if head is None:
        out_name, out_dims = "embedding", ["batch", H]
        y = pooled
    else:
        y = pooled
        for j, (hw, hb) in enumerate(head):
            y = g.op("Add", [g.op("MatMul", [y, g.const(f"head.{j}.weight", np.asarray(hw, np.float32))]),
                             g.const(f"head.{j}.bias", np.asarray(hb, np.float32))])
            if j < len(head) - 1:
                y = g.op("Relu", [y])
        out_name, out_dims = "logits", ["batch", int(np.asarray(head[-1][1]).shape[0])]
    if float16:
        y = g.op("Cast", [y], to=tp.FLOAT)
    g.nodes.append(h.make_node("Identity", [y], [out_name], name=out_name))
    graph = h.make_graph(g.nodes, "bert_classifier", inputs,
                         [h.make_tensor_value_info(out_name, tp.FLOAT, out_dims)], g.initializers)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name=producer)
    model.ir_version = 8  # readable by every ONNX Runtime >= 1.14 and TensorRT 10's parser
    g.onnx.checker.check_model(model, full_check=False)
    return model
