"""The pooled BERT classifier as an ONNX graph, from numpy weights, without torch.

Why hand-built: the default model must install and build without torch (a CUDA build of several
GB on Linux). ``OnnxOps`` records ``models.bert.pooled_bert_forward`` (the one definition of the
model, which the PyTorch backend runs too) as plain ONNX ops (opset 17) with dynamic batch and
sequence axes; ONNX Runtime and TensorRT fuse it as they fuse an exported graph.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .bert import PooledBert, pooled_bert_forward
from ..tokenization import PACKED_INPUTS, PADDED_INPUTS

OPSET = 17
# Additive attention bias for padded positions. Large enough that exp() underflows
# to exactly 0 in fp32 and fp16, small enough not to overflow fp16.
MASK_BIAS = -10000.0
# Longest packed sequence a packed graph accepts (BERT-family position tables stop at 512).
MAX_PACK_WIDTH = 1024


class OnnxOps:
    """``BertOps`` that append ONNX nodes; tensors are value names. ``packed``: the packed layout
    (segment ids instead of an attention mask; see ``models.bert.BertOps``)."""

    def __init__(self, float16: bool = False, packed: bool = False) -> None:
        import onnx  # only needed to build artifacts, never to run them

        self.onnx = onnx
        # Every float weight and constant in one dtype: a strongly typed TensorRT build (the fp16 path
        # TensorRT 10+ recommends) takes its precision from the graph itself.
        self.float16 = float16
        self.packed = packed
        self.fdt = np.float16 if float16 else np.float32
        self.tp_float = onnx.TensorProto.FLOAT16 if float16 else onnx.TensorProto.FLOAT
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0
        self._consts: dict[str, str] = {}
        self._mask_cache: dict[str, tuple[str, str]] = {}

    # -- graph plumbing -------------------------------------------------------------------------
    def const(self, value: Any, name: Optional[str] = None) -> str:
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(self.fdt)
        if name is None:
            self._count += 1
            name = f"c{self._count}"
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def scalar(self, key: str, value: Any) -> str:
        """A named constant shared by every node that needs it."""
        if key not in self._consts:
            self._consts[key] = self.const(value, key)
        return self._consts[key]

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def _mask(self, mask: str) -> tuple[str, str]:
        """(pooling weights, additive attention bias), computed once per graph.

        Padded: pooling weights are the mask as float [B, S, 1], the bias [B, 1, 1, S] masks padded
        keys. Packed: pooling weights are a one-hot [B, slots, S] (slot j takes segment j + 1), the
        bias [B, 1, S, S] lets a token attend only to keys of its own segment."""
        if mask in self._mask_cache:
            return self._mask_cache[mask]
        big = self.scalar("mask_bias", np.array(MASK_BIAS, np.float32))
        zero = self.scalar("zero_f", np.array(0.0, np.float32))
        if not self.packed:
            mask_f = self.op("Cast", [mask], to=self.tp_float)
            inv = self.op("Sub", [self.scalar("one_f", np.array(1.0, np.float32)), mask_f])
            bias = self.op("Unsqueeze", [self.op("Mul", [inv, big]), self.scalar("axes_12", np.array([1, 2], np.int64))])
            pool = self.op("Unsqueeze", [mask_f, self.scalar("axes_2", np.array([2], np.int64))])
        else:
            # Comparisons in int32: every engine compares int32 (TensorRT's int64 support is narrower).
            seg = self.op("Cast", [mask], to=self.onnx.TensorProto.INT32)
            seg_q = self.op("Unsqueeze", [seg, self.scalar("axes_2", np.array([2], np.int64))])  # [B, S, 1]
            seg_k = self.op("Unsqueeze", [seg, self.scalar("axes_1_i", np.array([1], np.int64))])  # [B, 1, S]
            keep = self.op("And", [self.op("Equal", [seg_q, seg_k]),
                                   self.op("Greater", [seg_k, self.scalar("zero_i32", np.array(0, np.int32))])])
            bias = self.op("Unsqueeze", [self.op("Where", [keep, zero, big]),
                                         self.scalar("axes_1_i", np.array([1], np.int64))])  # [B, 1, S, S]
            # Slot ids 1..S: a slice of a constant, the pattern position embeddings use too (TensorRT's
            # parser takes it; a Range over shape arithmetic it rejects).
            width = self.op("Shape", [mask], start=1, end=2)  # [S]
            slots = self.op("Slice", [self.scalar("slot_ids", np.arange(1, MAX_PACK_WIDTH + 1, dtype=np.int32)),
                                      self.scalar("zero_1d", np.array([0], np.int64)), width,
                                      self.scalar("axis0_1d", np.array([0], np.int64))])
            slots = self.op("Unsqueeze", [slots, self.scalar("axes_01", np.array([0, 2], np.int64))])  # [1, S, 1]
            pool = self.op("Cast", [self.op("Equal", [slots, seg_k])], to=self.tp_float)  # [B, slots, S]
        self._mask_cache[mask] = (pool, bias)
        return pool, bias

    # -- BertOps ----------------------------------------------------------------------------------
    def embed(self, table, ids):
        return self.op("Gather", [self.const(np.asarray(table, np.float32)), ids])

    def positions(self, table, like):
        seq_len = self.op("Shape", [like], start=1, end=2)  # 1-D [S]
        return self.op("Slice", [self.const(np.asarray(table, np.float32)),
                                 self.scalar("zero_1d", np.array([0], np.int64)), seq_len,
                                 self.scalar("axis0_1d", np.array([0], np.int64))])

    def add(self, a, b):
        return self.op("Add", [a, b])

    def layer_norm(self, x, gamma, beta, eps):
        return self.op("LayerNormalization", [x, self.const(np.asarray(gamma, np.float32)),
                                              self.const(np.asarray(beta, np.float32))], axis=-1, epsilon=eps)

    def dense(self, x, weight, bias):
        # Checkpoints store torch Linear weights as [out, in]; MatMul wants [in, out].
        return self.head_dense(x, np.asarray(weight, np.float32).T, bias)

    def head_dense(self, x, weight, bias):
        return self.op("Add", [self.op("MatMul", [x, self.const(np.asarray(weight, np.float32))]),
                               self.const(np.asarray(bias, np.float32))])

    def gelu(self, x):
        # Exact (erf) GELU, as BERT's "gelu" activation.
        erf = self.op("Erf", [self.op("Mul", [x, self.scalar("gelu_c", np.array(1 / math.sqrt(2), np.float32))])])
        return self.op("Mul", [self.op("Mul", [x, self.scalar("gelu_half", np.array(0.5, np.float32))]),
                               self.op("Add", [erf, self.scalar("gelu_one", np.array(1.0, np.float32))])])

    def relu(self, x):
        return self.op("Relu", [x])

    def attention(self, q, k, v, mask, num_heads, head_size):
        _, bias = self._mask(mask)
        split = self.scalar("split_heads", np.array([0, 0, num_heads, head_size], np.int64))
        merge = self.scalar("merge_heads", np.array([0, 0, num_heads * head_size], np.int64))
        scale = self.scalar("attn_scale", np.array(1.0 / math.sqrt(head_size), np.float32))
        qh = self.op("Transpose", [self.op("Reshape", [q, split])], perm=[0, 2, 1, 3])
        kh = self.op("Transpose", [self.op("Reshape", [k, split])], perm=[0, 2, 3, 1])
        vh = self.op("Transpose", [self.op("Reshape", [v, split])], perm=[0, 2, 1, 3])
        scores = self.op("Add", [self.op("Mul", [self.op("MatMul", [qh, kh]), scale]), bias])
        ctx = self.op("MatMul", [self.op("Softmax", [scores], axis=-1), vh])
        return self.op("Reshape", [self.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])

    def mean_pool(self, x, mask):
        # Mean over a row's tokens (sentence-transformers' "mean_tokens").
        pool, _ = self._mask(mask)
        eps = self.scalar("eps_count", np.array(1e-4, np.float32))
        if not self.packed:
            axes = self.scalar("axes_1", np.array([1], np.int64))
            summed = self.op("ReduceSum", [self.op("Mul", [x, pool]), axes], keepdims=0)
            count = self.op("Max", [self.op("ReduceSum", [pool, axes], keepdims=0), eps])
        else:
            summed = self.op("MatMul", [pool, x])  # [B, slots, H]
            count = self.op("Max", [self.op("ReduceSum", [pool, self.scalar("axes_m1", np.array([-1], np.int64))],
                                            keepdims=1), eps])  # [B, slots, 1]
        return self.op("Div", [summed, count])

    def l2_normalize(self, x):
        norm = self.op("Max", [self.op("ReduceL2", [x], axes=[-1], keepdims=1),
                               self.scalar("eps_norm", np.array(1e-6 if self.float16 else 1e-12, np.float32))])
        return self.op("Div", [x, norm])




def build_bert_classifier(model: PooledBert, *, producer: str = "beam-tensorrt", float16: bool = False,
                          pooled_only: bool = False, packed: bool = False):
    """Return an ``onnx.ModelProto``: ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64
    [batch, sequence]) -> ``logits`` (fp32 [batch, labels]), or with ``pooled_only`` the pooled
    ``embedding``. With ``float16`` weights and compute are fp16 and the output is cast to fp32.

    ``packed``: several rows a sequence. Inputs ``input_ids``, ``segment_ids`` (1..k: the k-th row
    of the sequence, 0: padding), ``token_type_ids``, ``position_ids`` (within the row); output
    ``logits`` [batch, sequence, labels], slot j holding the row of segment j + 1."""
    shape = model.shape
    g = OnnxOps(float16, packed)
    h, tp = g.onnx.helper, g.onnx.TensorProto
    names = PACKED_INPUTS if packed else PADDED_INPUTS
    inputs = [h.make_tensor_value_info(n, tp.INT64, ["batch", "sequence"]) for n in names]
    head = [] if pooled_only else model.head
    y = pooled_bert_forward(g, model.encoder, head, shape, "input_ids", names[1], "token_type_ids",
                            normalize=model.normalize, position_ids="position_ids" if packed else None)
    out_name, width = ("embedding", shape.hidden_size) if pooled_only else ("logits", model.num_labels)
    if float16:
        y = g.op("Cast", [y], to=tp.FLOAT)
    g.nodes.append(h.make_node("Identity", [y], [out_name], name=out_name))
    dims = ["batch", "sequence", width] if packed else ["batch", width]
    graph = h.make_graph(g.nodes, "bert_classifier", inputs,
                         [h.make_tensor_value_info(out_name, tp.FLOAT, dims)], g.initializers)
    onnx_model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name=producer)
    onnx_model.ir_version = 8  # readable by every ONNX Runtime >= 1.14 and TensorRT 10's parser
    return onnx_model
