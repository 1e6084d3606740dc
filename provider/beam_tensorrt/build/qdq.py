"""Explicit quantization of the project's ONNX graphs: a QuantizeLinear/DequantizeLinear pair in
front of both inputs of every encoder GEMM, which a strongly typed TensorRT build turns into int8
or fp8 GEMMs.

Why explicit Q/DQ rather than TensorRT's calibrator: implicit int8 calibration is deprecated since
TensorRT 10.1 and does not exist for fp8, and a strongly typed network (how this project builds
every plan) takes each tensor's type from the graph. The scales come from
``calibration.Calibration``: activations per tensor (``amax / qmax``), weights per output channel.

The encoder's GEMMs are the MatMuls whose second input is a weight of at least ``MIN_GEMM_DIM`` on
both sides; the attention products (two activations) and a classifier head of a few labels stay in
the graph's float type. They are found in graph order, which is the model's forward order in every
graph ``models.onnx_bert`` records (fp32 or fp16, padded or packed), so a calibration measured on
one graph applies to the others; the weight shapes are checked to be sure.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# The GEMMs worth quantizing: a weight at least this wide on both sides.
MIN_GEMM_DIM = 64
# Largest magnitude of each quantized type: the scale maps amax onto it.
QMAX = {"int8": 127.0, "fp8": 448.0}  # fp8: e4m3
# QuantizeLinear with fp16 inputs and scales, and fp8 outputs, need ONNX opset 19.
QDQ_OPSET = 19


def gemm_indices(graph: Any) -> list[int]:
    """Where the encoder GEMMs are in ``graph.node`` (an ``onnx.GraphProto``), in graph order."""
    weights = {init.name: init for init in graph.initializer}
    found = []
    for k, node in enumerate(graph.node):
        if node.op_type != "MatMul" or node.input[1] not in weights:
            continue
        dims = list(weights[node.input[1]].dims)
        if len(dims) == 2 and min(dims) >= MIN_GEMM_DIM:
            found.append(k)
    return found


def quantizable_matmuls(graph: Any) -> list[Any]:
    """The encoder GEMM nodes of ``graph``, in graph order."""
    return [graph.node[k] for k in gemm_indices(graph)]


def weight_shapes(model: Any) -> list[list[int]]:
    weights = {init.name: init for init in model.graph.initializer}
    return [list(weights[n.input[1]].dims) for n in quantizable_matmuls(model.graph)]


def quantize(model: Any, activation_amax: Sequence[float], precision: str,
             expected_shapes: Sequence[Sequence[int]] | None = None) -> Any:
    """A copy of ``model`` (``onnx.ModelProto``) with Q/DQ pairs in front of its encoder GEMMs.

    Args:
        model: a graph from ``models.onnx_bert`` (fp32 or fp16, padded or packed).
        activation_amax: the largest magnitude to represent of each GEMM's activation input, in
            ``quantizable_matmuls`` order (``calibration.Calibration.activation_amax``).
        precision: ``int8`` or ``fp8``.
        expected_shapes: the GEMMs' weight shapes the amax were measured for; a graph whose
            GEMMs differ is refused rather than quantized with another model's scales.
    """
    import onnx
    import onnx.version_converter
    from onnx import TensorProto, helper, numpy_helper

    if precision not in QMAX:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(QMAX)}")
    if _default_opset(model) < QDQ_OPSET:  # ONNX's converter also rewrites the ops that changed since
        model = onnx.version_converter.convert_version(model, QDQ_OPSET)
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    indices = gemm_indices(graph)
    shapes = weight_shapes(model)
    if len(indices) != len(activation_amax):
        raise ValueError(f"the graph has {len(indices)} encoder GEMMs, the calibration {len(activation_amax)}")
    if expected_shapes is not None and [list(s) for s in expected_shapes] != shapes:
        raise ValueError("the calibration was measured on a model with other GEMM weight shapes")
    weights = {init.name: init for init in graph.initializer}
    qtype = TensorProto.INT8 if precision == "int8" else TensorProto.FLOAT8E4M3FN
    qmax = QMAX[precision]
    made: list = []
    inits: list = []
    shared: dict[str, str] = {}  # activation -> its dequantized copy (Q, K and V read one tensor)

    def zero_point(name: str, count: int | None) -> str:
        dims = [] if count is None else [count]
        inits.append(helper.make_tensor(name, qtype, dims, [0] * (count or 1)))
        return name

    def qdq(x: str, scale: np.ndarray, tag: str, axis: int | None) -> str:
        s = f"{tag}_scale"
        inits.append(numpy_helper.from_array(scale, s))
        zp = zero_point(f"{tag}_zero", None if axis is None else scale.size)
        for op, source, out in (("QuantizeLinear", x, f"{tag}_q"), ("DequantizeLinear", f"{tag}_q", f"{tag}_dq")):
            node = helper.make_node(op, [source, s, zp], [out], name=out)
            if axis is not None:
                node.attribute.append(helper.make_attribute("axis", axis))
            made.append(node)
        return f"{tag}_dq"

    placed: dict[int, list] = {}  # node index -> Q/DQ nodes to insert before it
    for i, (k, amax) in enumerate(zip(indices, activation_amax)):
        node = graph.node[k]
        w = numpy_helper.to_array(weights[node.input[1]])
        dtype = w.dtype
        before = len(made)
        x = node.input[0]
        if x not in shared:
            scale = np.asarray(max(float(amax), 1e-6) / qmax, dtype=dtype)
            shared[x] = qdq(x, scale, f"gemm{i}_x", None)
        node.input[0] = shared[x]
        # Per output channel (the N axis of a [K, N] weight), as TensorRT wants for GEMM weights.
        w_amax = np.maximum(np.abs(w.astype(np.float32)).max(axis=0), 1e-6)
        node.input[1] = qdq(node.input[1], (w_amax / qmax).astype(dtype), f"gemm{i}_w", 1)
        placed[k] = made[before:]
    ordered = []
    for k, node in enumerate(graph.node):
        ordered.extend(placed.get(k, []))
        ordered.append(node)
    del graph.node[:]
    graph.node.extend(ordered)
    graph.initializer.extend(inits)
    return model


def _default_opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
