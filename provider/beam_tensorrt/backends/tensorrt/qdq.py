"""Explicit quantization of the project's ONNX graphs: a QuantizeLinear/DequantizeLinear pair in
front of both inputs of every encoder GEMM (the dense layers and the two attention products), which
a strongly typed TensorRT build turns into int8 or fp8 GEMMs.

Why explicit Q/DQ rather than TensorRT's calibrator: implicit int8 calibration is deprecated since
TensorRT 10.1 and does not exist for fp8, and a strongly typed network (how this project builds
every plan) takes each tensor's type from the graph. The scales come from
``calibration.Calibration``: activations per tensor (``amax / qmax``), weights per output channel.

The dense GEMMs are the MatMuls whose second input is a weight of at least ``MIN_GEMM_DIM`` on both
sides (a classifier head of a few labels stays in the graph's float type); the attention products
are told by what they read (``gemm_indices``). They are found in graph order, the model's forward order in every
graph ``models.onnx_bert`` records (fp32 or fp16, padded or packed), so a calibration measured on
one graph applies to the others; the weight shapes are checked to be sure.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# Where Q/DQ pairs go and how scales are chosen: part of a reduced-precision plan's engine-cache key, so a
# plan quantized otherwise is never taken for one quantized this way. Change it with the placement.
SCHEME = "dense+attention/1"
# The GEMMs worth quantizing: a weight at least this wide on both sides.
MIN_GEMM_DIM = 64
# Largest magnitude of each quantized type: the scale maps amax onto it.
QMAX = {"int8": 127.0, "fp8": 448.0}  # fp8: e4m3
# QuantizeLinear with fp16 inputs and scales, and fp8 outputs, need ONNX opset 19.
QDQ_OPSET = 19


def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output}


def gemm_indices(graph: Any, attention: bool = True) -> list[int]:
    """Where the GEMMs to quantize are in ``graph.node`` (an ``onnx.GraphProto``), in graph order:
    the encoder's dense layers (a weight of at least ``MIN_GEMM_DIM`` on both sides) and, with
    ``attention``, its two attention products (query x key, which reads two Transposes, and
    probabilities x value, which reads the Softmax and a Transpose)."""
    weights = {init.name: init for init in graph.initializer}
    made_by = _producers(graph)
    found = []
    for k, node in enumerate(graph.node):
        if node.op_type != "MatMul":
            continue
        if node.input[1] in weights:
            dims = list(weights[node.input[1]].dims)
            if len(dims) == 2 and min(dims) >= MIN_GEMM_DIM:
                found.append(k)
        elif attention:
            kinds = [getattr(made_by.get(i), "op_type", None) for i in node.input]
            if kinds[1] == "Transpose" and kinds[0] in ("Transpose", "Softmax"):
                found.append(k)
    return found


def quantizable_matmuls(graph: Any) -> list[Any]:
    """The GEMM nodes ``gemm_indices`` finds, in graph order."""
    return [graph.node[k] for k in gemm_indices(graph)]


def activation_inputs(graph: Any) -> list[str]:
    """The activation inputs of those GEMMs, in the order their amax are given: a dense layer's
    first input, both inputs of an attention product."""
    weights = {init.name for init in graph.initializer}
    return [name for node in quantizable_matmuls(graph) for name in node.input if name not in weights]


def weight_shapes(model: Any) -> list[list[int]]:
    weights = {init.name: init for init in model.graph.initializer}
    return [list(weights[name].dims) for n in quantizable_matmuls(model.graph) for name in n.input if name in weights]


def quantize(model: Any, activation_amax: Sequence[float], precision: str,
             expected_shapes: Sequence[Sequence[int]] | None = None) -> Any:
    """A copy of ``model`` (``onnx.ModelProto``) with Q/DQ pairs in front of its encoder GEMMs.

    Args:
        model: a graph from ``models.onnx_bert`` (fp32 or fp16, padded or packed).
        activation_amax: the largest magnitude to represent of each GEMM activation input, in
            ``activation_inputs`` order (``calibration.Calibration.amax``).
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
    if len(activation_inputs(graph)) != len(activation_amax):
        raise ValueError(f"the graph's GEMMs have {len(activation_inputs(graph))} activation inputs, the calibration "
                         f"{len(activation_amax)}")
    if expected_shapes is not None and [list(s) for s in expected_shapes] != shapes:
        raise ValueError("the calibration was measured on a model with other GEMM weight shapes")
    weights = {init.name: init for init in graph.initializer}
    dtype = next(numpy_helper.to_array(weights[n]).dtype for node in quantizable_matmuls(graph) for n in node.input
                 if n in weights)  # the graph's float type
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
    amax = iter(activation_amax)
    for i, k in enumerate(indices):
        node = graph.node[k]
        before = len(made)
        for position, name in enumerate(list(node.input)):
            if name in weights:
                w = numpy_helper.to_array(weights[name])
                # Per output channel (the N axis of a [K, N] weight), as TensorRT wants for GEMM weights.
                w_amax = np.maximum(np.abs(w.astype(np.float32)).max(axis=0), 1e-6)
                node.input[position] = qdq(name, (w_amax / qmax).astype(w.dtype), f"gemm{i}_w", 1)
                continue
            value = float(next(amax))
            if name not in shared:  # Q, K and V read one tensor: one Q/DQ pair serves all three
                scale = np.asarray(max(value, 1e-6) / qmax, dtype=dtype)
                shared[name] = qdq(name, scale, f"gemm{i}_in{position}", None)
            node.input[position] = shared[name]
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
