"""TensorRT's BERT plugins (variable sequence length) for the project's pooled BERT: the network,
its inputs, its int8 ranges and a small runner, for ``bench/bert_plugins.py``.

Why this lives in bench/, not in the product: issue 27 asked for the plugins *where they measure
better* than the product's plans. On an H200 with TensorRT 10.6 they did not (docs/performance.md,
``bench.bert_plugins``): a group of 256 SST-2 rows the product's fp16 plan runs in 1.67 ms of GPU
time took the int8 plugin network 1.84 ms with exact GELU (the model's) and 1.48 ms with GELU's
tanh approximation, which TensorRT fuses into the projection before it (1.12x; the 1.6x asked for
was not reached). The plugins are deprecated since TensorRT 10.15 and gone in 11. Kept runnable so
the comparison can be repeated on another GPU or TensorRT (NVIDIA reports int8 1.89x fp16 on an
A100 with them).

The network, layer by layer (the forward pass of ``models.bert.pooled_bert_forward``):

- ``CustomEmbLayerNormPluginDynamic`` (variable-length variant): word + position (counted from each
  row's start) + token-type embeddings, then LayerNorm, over the rows' real tokens concatenated
  into one stream; ``cu_seqlens`` says where each row starts (``to_varlen``);
- per layer: the Q, K and V projections as one 1x1 convolution, output channels head by head
  (``qkv_weights``); ``CustomQKVToContextPluginDynamic`` (fused attention within each row; heads
  narrower than 64 are padded to 64 by the plugin); the output projection;
  ``CustomSkipLayerNormPluginDynamic`` (residual + LayerNorm); the intermediate projection with GELU
  (exact, as the model, or the tanh approximation); the output projection; skip LayerNorm again;
- the mean over each row's tokens, L2 normalisation where the model has it, and the head, in fp32.

int8 is TensorRT's implicit quantization: each tensor that may be int8 gets a dynamic range
(``Int8Ranges``, measured by ``activation_ranges``), and the plugins compute in int8 between them.

What it took to run with TensorRT 10.6 here (both found on an H200): giving the attention plugin's
``use_int8_scale_max`` (see ``build``), and a ``libcublas.so.12``, which the plugin library loads at
run time (the machine had CUDA 13's cuBLAS only; a link named ``libcublas.so.12`` to it served).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional, Sequence

import numpy as np

from beam_tensorrt.models.bert import PooledBert

# (creator name, IPluginV2DynamicExt version) of each plugin, variable-length variants: the versions the
# measured plans used. TensorRT 10.6 registers IPluginV3 versions of them too (4, 5, 6).
PLUGINS = {
    "embeddings": ("CustomEmbLayerNormPluginDynamic", "2"),
    "attention": ("CustomQKVToContextPluginDynamic", "2"),
    "skip_layer_norm": ("CustomSkipLayerNormPluginDynamic", "2"),
}
# The fused attention kernels cover rows of up to 512 tokens and heads of up to 64 wide.
MAX_ROW_TOKENS = 512
MAX_HEAD_SIZE = 64
# GPUs with the fused variable-length kernels (TensorRT 10.6's plugin checks the same list).
COMPUTE_CAPABILITIES = ("7.5", "8.0", "8.6", "8.7", "8.9", "9.0")
INPUTS = ("input_ids", "token_type_ids", "cu_seqlens", "max_seqlen")
OUTPUT = "logits"
GELUS = ("erf", "tanh")


@dataclass
class Int8Ranges:
    """Largest magnitudes, per encoder layer, of the tensors an int8 network carries in int8.

    ``layer_input``: the layer's input (the embeddings for layer 0); ``qkv``: the Q, K and V
    projections (one range for the three: the attention plugin takes one tensor); ``context``: the
    attention's output; ``attention_output``: its projection, before the residual; ``attention_norm``:
    after the first skip LayerNorm; ``gelu``: the intermediate activation; ``output``: the output
    projection, before the residual. The last layer's output stays fp16 (it is only pooled)."""

    layer_input: list[float]
    qkv: list[float]
    context: list[float]
    attention_output: list[float]
    attention_norm: list[float]
    gelu: list[float]
    output: list[float]

    def __post_init__(self) -> None:
        counts = {len(v) for v in vars(self).values()}
        if len(counts) != 1:
            raise ValueError(f"int8 ranges of different lengths: { {k: len(v) for k, v in vars(self).items()} }")

    @property
    def layers(self) -> int:
        return len(self.layer_input)


def plugins_available(trt: ModuleType) -> Optional[str]:
    """None if this TensorRT registers every plugin the network needs, else what is missing."""
    init = getattr(trt, "init_libnvinfer_plugins", None)
    if init is None:
        return f"TensorRT {trt.__version__} has no plugin library"
    init(trt.Logger(trt.Logger.ERROR), "")
    registry = trt.get_plugin_registry()
    missing = [f"{name} version {version}" for name, version in PLUGINS.values()
               if registry.get_creator(name, version, "") is None]
    if missing:
        return f"TensorRT {trt.__version__} does not register {', '.join(missing)}"
    return None


def unsupported(model: PooledBert, compute_capability: str, max_seq_len: int) -> Optional[str]:
    """None if the plugin network can run ``model`` on this GPU, else why not (no TensorRT needed)."""
    shape = model.shape
    head_size = shape.hidden_size // shape.num_heads
    if head_size > MAX_HEAD_SIZE:
        return f"attention heads of {head_size} (the fused kernels take up to {MAX_HEAD_SIZE})"
    if max_seq_len > MAX_ROW_TOKENS:
        return f"max_seq_len {max_seq_len} (the fused kernels take rows of up to {MAX_ROW_TOKENS} tokens)"
    if compute_capability not in COMPUTE_CAPABILITIES:
        return (f"compute capability {compute_capability} "
                f"(the fused kernels exist for {', '.join(COMPUTE_CAPABILITIES)})")
    return None


def qkv_weights(model: PooledBert, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """The layer's Q, K and V projections as one [3 * hidden, hidden] weight and its bias, output
    channels head by head: rows h*3*d .. (h*3+1)*d are head h's query, then its key, its value."""
    shape = model.shape
    n, d, hidden = shape.num_heads, shape.hidden_size // shape.num_heads, shape.hidden_size
    p = f"encoder.layer.{layer}.attention.self."
    w = np.stack([np.asarray(model.encoder[p + k + ".weight"], np.float32) for k in ("query", "key", "value")])
    b = np.stack([np.asarray(model.encoder[p + k + ".bias"], np.float32) for k in ("query", "key", "value")])
    w = w.reshape(3, n, d, hidden).transpose(1, 0, 2, 3).reshape(3 * hidden, hidden)
    b = b.reshape(3, n, d).transpose(1, 0, 2).reshape(3 * hidden)
    return np.ascontiguousarray(w), np.ascontiguousarray(b)


class _Network:
    """Adds the layers; keeps every numpy array TensorRT was given alive until the build is done."""

    def __init__(self, trt: ModuleType, network: Any, model: PooledBert, ranges: Optional[Int8Ranges],
                 max_tokens: int, gelu: str = "erf"):
        self.trt, self.net, self.model, self.ranges = trt, network, model, ranges
        self.gelu_kind = gelu
        self.max_tokens = max_tokens
        self.keep: list[np.ndarray] = []
        self.registry = trt.get_plugin_registry()

    def weights(self, a: np.ndarray) -> Any:
        a = np.ascontiguousarray(a, dtype=np.float32)
        self.keep.append(a)
        return self.trt.Weights(a)

    def const(self, a: np.ndarray) -> Any:
        a = np.ascontiguousarray(a)
        self.keep.append(a)
        layer = self.net.add_constant(a.shape, self.trt.Weights(a))
        return layer.get_output(0)

    def plugin(self, role: str, fields: dict[str, np.ndarray], inputs: Sequence[Any]) -> Any:
        trt = self.trt
        name, version = PLUGINS[role]
        creator = self.registry.get_creator(name, version, "")
        kinds = {np.dtype(np.int32): trt.PluginFieldType.INT32, np.dtype(np.float32): trt.PluginFieldType.FLOAT32}
        pf = []
        for key, value in fields.items():
            value = np.ascontiguousarray(value, np.float32 if np.asarray(value).dtype.kind == "f" else None)
            self.keep.append(value)
            pf.append(trt.PluginField(key, value, kinds[value.dtype]))
        plugin = creator.create_plugin(role, trt.PluginFieldCollection(pf))
        if plugin is None:
            raise RuntimeError(f"TensorRT could not create the {name} plugin (version {version})")
        return self.net.add_plugin_v2(list(inputs), plugin)

    def dense(self, x: Any, weight: np.ndarray, bias: np.ndarray) -> Any:
        """A [tokens, in, 1, 1] -> [tokens, out, 1, 1] projection (weight [out, in])."""
        w = np.asarray(weight, np.float32)
        return self.net.add_convolution_nd(x, w.shape[0], (1, 1), self.weights(w), self.weights(bias)).get_output(0)

    def fp32(self, layer: Any) -> Any:
        layer.precision = self.trt.float32
        layer.set_output_type(0, self.trt.float32)
        return layer.get_output(0)

    def ranged(self, tensor: Any, amax: Optional[float]) -> Any:
        if amax is not None:
            tensor.set_dynamic_range(-float(amax), float(amax))
        return tensor

    # -- the model --------------------------------------------------------------------------------
    def build(self) -> None:
        trt, net, model = self.trt, self.net, self.model
        shape, enc = model.shape, model.encoder
        int8 = self.ranges is not None
        ids, types, cu, maxlen = (net.add_input(n, trt.int32, (-1,)) for n in INPUTS)
        emb = self.plugin("embeddings", {
            "bert_embeddings_layernorm_beta": enc["embeddings.LayerNorm.bias"],
            "bert_embeddings_layernorm_gamma": enc["embeddings.LayerNorm.weight"],
            "bert_embeddings_word_embeddings": enc["embeddings.word_embeddings.weight"],
            "bert_embeddings_token_type_embeddings": enc["embeddings.token_type_embeddings.weight"],
            "bert_embeddings_position_embeddings": enc["embeddings.position_embeddings.weight"],
            "output_fp16": np.array([1], np.int32),
        }, [ids, types, cu, maxlen])
        x, mask = emb.get_output(0), emb.get_output(1)
        hidden = shape.hidden_size
        for i in range(shape.num_layers):
            r = (lambda name: getattr(self.ranges, name)[i]) if int8 else (lambda name: None)
            last = i == shape.num_layers - 1
            p = f"encoder.layer.{i}."
            self.ranged(x, r("layer_input"))
            w, b = qkv_weights(model, i)
            qkv = self.ranged(self.dense(x, w, b), r("qkv"))
            fields = {"type_id": np.array([int(trt.int8 if int8 else trt.float16)], np.int32),
                      "hidden_size": np.array([hidden], np.int32),
                      "num_heads": np.array([shape.num_heads], np.int32),
                      "has_mask": np.array([1], np.int32), "var_seqlen": np.array([1], np.int32),
                      # Given, not defaulted: TensorRT 10.6's creators (both interfaces) log when they
                      # default it, and that crashed the process from Python on an H200 (segfault).
                      "use_int8_scale_max": np.array([1], np.int32)}
            if int8:
                fields["dq_probs"] = np.array([1.0 / 127.0], np.float32)  # softmax outputs lie in [0, 1]
            ctx = self.ranged(self.plugin("attention", fields, [qkv, mask, cu, maxlen]).get_output(0), r("context"))
            ao = self.ranged(self.dense(ctx, enc[p + "attention.output.dense.weight"],
                                        enc[p + "attention.output.dense.bias"]), r("attention_output"))
            x = self.ranged(self.skip_layer_norm(ao, x, p + "attention.output.LayerNorm", int8), r("attention_norm"))
            inner = self.dense(x, enc[p + "intermediate.dense.weight"], enc[p + "intermediate.dense.bias"])
            inner = self.ranged(self.gelu(inner), r("gelu"))
            out = self.ranged(self.dense(inner, enc[p + "output.dense.weight"], enc[p + "output.dense.bias"]),
                              r("output"))
            x = self.skip_layer_norm(out, x, p + "output.LayerNorm", int8 and not last)
        self.pool_and_head(x, ids, cu)

    def skip_layer_norm(self, x: Any, skip: Any, prefix: str, int8: bool) -> Any:
        trt, enc = self.trt, self.model.encoder
        hidden = self.model.shape.hidden_size
        return self.plugin("skip_layer_norm", {
            "ld": np.array([hidden], np.int32),
            "beta": np.asarray(enc[prefix + ".bias"], np.float32),
            "gamma": np.asarray(enc[prefix + ".weight"], np.float32),
            "type_id": np.array([int(trt.int8 if int8 else trt.float16)], np.int32),
        }, [x, skip]).get_output(0)

    def gelu(self, x: Any) -> Any:
        """Exact GELU, x * (1 + erf(x / sqrt 2)) / 2, as the model's ``gelu``."""
        trt = self.trt
        if self.gelu_kind == "tanh":
            return self.gelu_tanh(x)
        kind = getattr(trt.ActivationType, "GELU_ERF", None)
        if kind is not None:
            return self.net.add_activation(x, kind).get_output(0)
        ew, one = trt.ElementWiseOperation, (1, 1, 1, 1)
        c = self.const(np.full(one, 1 / np.sqrt(2), np.float32))
        half = self.const(np.full(one, 0.5, np.float32))
        unit = self.const(np.full(one, 1.0, np.float32))
        erf = self.net.add_unary(self.net.add_elementwise(x, c, ew.PROD).get_output(0), trt.UnaryOperation.ERF)
        cdf = self.net.add_elementwise(self.net.add_elementwise(erf.get_output(0), unit, ew.SUM).get_output(0), half,
                                       ew.PROD)
        return self.net.add_elementwise(x, cdf.get_output(0), ew.PROD).get_output(0)

    def gelu_tanh(self, x: Any) -> Any:
        """GELU's tanh approximation, as elementwise layers TensorRT fuses into the projection before."""
        trt, net = self.trt, self.net
        ew, one = trt.ElementWiseOperation, (1, 1, 1, 1)
        c = {k: self.const(np.full(one, v, np.float32)) for k, v in
             (("three", 3.0), ("k", 0.044715), ("s", np.sqrt(2 / np.pi)), ("one", 1.0), ("half", 0.5))}
        cube = net.add_elementwise(x, c["three"], ew.POW).get_output(0)
        inner = net.add_elementwise(x, net.add_elementwise(cube, c["k"], ew.PROD).get_output(0), ew.SUM).get_output(0)
        t = net.add_activation(net.add_elementwise(inner, c["s"], ew.PROD).get_output(0), trt.ActivationType.TANH)
        cdf = net.add_elementwise(net.add_elementwise(t.get_output(0), c["one"], ew.SUM).get_output(0), c["half"],
                                  ew.PROD).get_output(0)
        return net.add_elementwise(cdf, x, ew.PROD).get_output(0)

    def pool_and_head(self, x: Any, ids: Any, cu: Any) -> None:
        """Mean of each row's tokens as a [rows, tokens] x [tokens, hidden] product whose left side
        (1 where a token lies in the row) is made on the device from ``cu_seqlens``; then L2 norm
        and the head. All fp32: a few hundred rows, against the encoder's millions of MACs a row."""
        trt, net, model = self.trt, self.net, self.model
        ew = trt.ElementWiseOperation
        hidden = model.shape.hidden_size
        flat = net.add_shuffle(x)
        flat.reshape_dims = (-1, hidden)
        tokens = self.fp32(net.add_cast(flat.get_output(0), trt.float32))  # [T, H]
        # Token indices 0 .. T-1, as a slice of a constant as long as a group can be.
        arange = self.const(np.arange(self.max_tokens, dtype=np.int32))
        index = net.add_slice(arange, (0,), (1,), (1,))
        index.set_input(2, net.add_shape(ids).get_output(0))
        row_of = net.add_shuffle(index.get_output(0))
        row_of.reshape_dims = (1, -1)
        t = row_of.get_output(0)  # [1, T]
        rows_plus_one = net.add_shape(cu).get_output(0)
        rows = net.add_elementwise(rows_plus_one, self.const(np.array([1], np.int64)), ew.SUB).get_output(0)

        def cu_part(start: int) -> Any:
            part = net.add_slice(cu, (start,), (1,), (1,))
            part.set_input(2, rows)
            column = net.add_shuffle(part.get_output(0))
            column.reshape_dims = (-1, 1)
            return column.get_output(0)  # [R, 1]

        starts, ends = cu_part(0), cu_part(1)
        before = net.add_elementwise(t, starts, ew.LESS).get_output(0)
        inside = net.add_elementwise(net.add_unary(before, trt.UnaryOperation.NOT).get_output(0),
                                     net.add_elementwise(t, ends, ew.LESS).get_output(0), ew.AND).get_output(0)
        weights = self.fp32(net.add_cast(inside, trt.float32))  # [R, T]
        summed = self.fp32(net.add_matrix_multiply(weights, trt.MatrixOperation.NONE, tokens,
                                                   trt.MatrixOperation.NONE))  # [R, H]
        count = self.fp32(net.add_cast(net.add_elementwise(ends, starts, ew.SUB).get_output(0), trt.float32))
        count = self.fp32(net.add_elementwise(count, self.const(np.ones((1, 1), np.float32)), ew.MAX))
        y = self.fp32(net.add_elementwise(summed, count, ew.DIV))
        if model.normalize:
            square = self.fp32(net.add_elementwise(y, y, ew.PROD))
            norm = self.fp32(net.add_unary(self.fp32(net.add_reduce(square, trt.ReduceOperation.SUM, 1 << 1, True)),
                                           trt.UnaryOperation.SQRT))
            norm = self.fp32(net.add_elementwise(norm, self.const(np.full((1, 1), 1e-12, np.float32)), ew.MAX))
            y = self.fp32(net.add_elementwise(y, norm, ew.DIV))
        for j, (w, b) in enumerate(model.head):
            w = self.const(np.asarray(w, np.float32))
            y = self.fp32(net.add_matrix_multiply(y, trt.MatrixOperation.NONE, w, trt.MatrixOperation.NONE))
            y = self.fp32(net.add_elementwise(y, self.const(np.asarray(b, np.float32).reshape(1, -1)), ew.SUM))
            if j < len(model.head) - 1:
                y = self.fp32(net.add_activation(y, trt.ActivationType.RELU))
        y.name = OUTPUT
        net.mark_output(y)
        y.dtype = trt.float32


def define_network(trt: ModuleType, network: Any, model: PooledBert, *, max_tokens: int,
                   ranges: Optional[Int8Ranges] = None, gelu: str = "erf") -> list[np.ndarray]:
    """Fill ``network`` (a weakly typed ``INetworkDefinition``) with ``model``'s plugin network.

    Args:
        trt: the ``tensorrt`` module, its plugins initialised (``plugins_available``).
        network: the empty network.
        model: the encoder's weights (adapters merged) and head.
        max_tokens: the most tokens a group can have (the largest profile's).
        ranges: int8 dynamic ranges; None builds fp16.

    Returns the numpy arrays the network refers to: keep them until the plan is built.
    """
    if gelu not in GELUS:
        raise ValueError(f"gelu {gelu!r} is not one of {GELUS}")
    if ranges is not None and ranges.layers != model.shape.num_layers:
        raise ValueError(f"int8 ranges for {ranges.layers} layers, the model has {model.shape.num_layers}")
    built = _Network(trt, network, model, ranges, max_tokens, gelu)
    built.build()
    return built.keep


# -- a group as the network takes it ------------------------------------------------------------

@dataclass
class VarlenFeeds:
    """One group in the plan's inputs: ``input_ids`` and ``token_type_ids`` [tokens] int32,
    ``cu_seqlens`` [rows + 1] int32 (row r is tokens cu[r] .. cu[r+1]-1), and ``max_seqlen``, the
    longest row, which the plan reads as the length of an input. ``keys``: each row's packed place,
    ``sequence * width + slot``, in a group of ``sequences`` packed sequences of ``width``."""

    input_ids: np.ndarray
    token_type_ids: np.ndarray
    cu_seqlens: np.ndarray
    max_seqlen: int
    keys: np.ndarray
    sequences: int
    width: int

    @property
    def tokens(self) -> int:
        return len(self.input_ids)

    @property
    def rows(self) -> int:
        return len(self.keys)


def to_varlen(input_ids: np.ndarray, segment_ids: np.ndarray, token_type_ids: np.ndarray) -> VarlenFeeds:
    """The packed group ([sequences, width] arrays) as one stream of its real tokens.

    Each row's tokens are contiguous in its sequence and rows follow each other slot by slot
    (``tokenization.pack_rows``), so the real tokens read in order come row by row."""
    n, width = segment_ids.shape
    seg = segment_ids.reshape(-1)
    real = seg > 0
    sequence = np.repeat(np.arange(n, dtype=np.int64), width)[real]
    key = sequence * width + seg[real] - 1
    if len(key) > 1 and np.any(np.diff(key) < 0):
        raise ValueError("packed rows are not laid out slot after slot")
    lengths = np.bincount(key, minlength=n * width) if len(key) else np.zeros(n * width, np.int64)
    keys = np.flatnonzero(lengths)
    cu = np.zeros(len(keys) + 1, np.int32)
    np.cumsum(lengths[keys], out=cu[1:])
    return VarlenFeeds(input_ids.reshape(-1)[real].astype(np.int32), token_type_ids.reshape(-1)[real].astype(np.int32),
                       cu, int(lengths.max()) if len(keys) else 0, keys, n, width)


def to_packed(results: np.ndarray, feeds: VarlenFeeds) -> np.ndarray:
    """One result a row ([rows, labels]) as a packed plan returns them: [sequences, width, labels],
    row r's at its sequence and slot, zeros where no row is."""
    out = np.zeros((feeds.sequences * feeds.width, results.shape[-1]), dtype=results.dtype)
    out[feeds.keys] = results
    return out.reshape(feeds.sequences, feeds.width, results.shape[-1])


# -- building --------------------------------------------------------------------------------

def stream_shapes(max_tokens: int, opt_tokens: int, max_row_tokens: int) -> dict[str, tuple]:
    """The (min, opt, max) shapes of the plan's inputs, for groups of up to ``max_tokens`` tokens."""
    opt_rows = max(1, opt_tokens // 16)  # SST-2's rows are ~12 tokens, long sentences ~25
    return {"input_ids": ((1,), (opt_tokens,), (max_tokens,)), "token_type_ids": ((1,), (opt_tokens,), (max_tokens,)),
            "cu_seqlens": ((2,), (opt_rows + 1,), (max_tokens + 1,)),
            "max_seqlen": ((1,), (min(64, max_row_tokens),), (max_row_tokens,))}


def build_plugin_plan(model: PooledBert, onnx_sha256: str, plan_path: Path, *, max_tokens: int, opt_tokens: int,
                      max_row_tokens: int, ranges: Optional[Int8Ranges] = None, gelu: str = "erf",
                      timing_cache: Optional[Path] = None, say: Callable[[str], None] = print) -> float:
    """Build ``model`` as a plugin network into ``plan_path`` (fp16, or int8 with ``ranges``) through
    the product's ``builder.serialize``; returns the build's seconds."""
    from beam_tensorrt.backends.tensorrt.builder import serialize
    from beam_tensorrt.backends.tensorrt.metadata import PlanMetadata
    from beam_tensorrt.backends.tensorrt.platform import import_tensorrt, runtime_info

    trt = import_tensorrt()
    missing = plugins_available(trt)
    if missing:
        raise RuntimeError(f"cannot build a plugin plan: {missing}")
    info = runtime_info(trt)
    start = time.monotonic()
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network = builder.create_network(0)
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    if ranges is not None:
        config.set_flag(trt.BuilderFlag.INT8)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)  # the pooling and head layers stay fp32
    keep = define_network(trt, network, model, max_tokens=max_tokens, ranges=ranges, gelu=gelu)
    meta = PlanMetadata(trt_module=info.trt_module, trt_version=info.trt_version, gpu_name=info.gpu_name,
                        compute_capability=info.compute_capability, onnx_sha256=onnx_sha256,
                        precision="fp16" if ranges is None else "int8", profiles=[], strongly_typed=False,
                        input_names=list(INPUTS), layout="bert-plugins")
    meta = serialize(trt, builder, network, config, [stream_shapes(max_tokens, opt_tokens, max_row_tokens)],
                     plan_path, meta, start=start, timing_cache=timing_cache, workspace_bytes=4 << 30, say=say,
                     what="the BERT plugin network")
    del keep
    return meta.build_seconds


# -- int8 ranges -----------------------------------------------------------------------------------

GEMMS_PER_LAYER = 6  # query, key, value, attention output, intermediate, output


def activation_ranges(onnx_path: Path, batches: Sequence[dict[str, np.ndarray]], masks: Sequence[np.ndarray],
                      layers: int) -> Int8Ranges:
    """The int8 network's ranges, measured with ONNX Runtime on the model's fp32 graph: each encoder
    GEMM's input and its output with the bias added, 99.99th percentile of the real tokens'
    magnitudes, averaged over ``batches`` (padded feeds; ``masks``: their attention masks)."""
    import onnx
    import onnxruntime as ort

    from beam_tensorrt.build.calibration import PERCENTILE  # the statistic int8 Q/DQ plans use
    from beam_tensorrt.build.qdq import quantizable_matmuls

    model = onnx.load(str(onnx_path))
    gemms = quantizable_matmuls(model.graph)[:GEMMS_PER_LAYER * layers]
    added = {}
    for node in model.graph.node:
        if node.op_type == "Add":
            for name in node.input:
                added.setdefault(name, node.output[0])
    inputs = [g.input[0] for g in gemms]
    outputs = [added[g.output[0]] for g in gemms]
    watched = list(dict.fromkeys(inputs + outputs))
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in watched)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sums = np.zeros(len(watched))
    for feeds, mask in zip(batches, masks):
        real = mask.astype(bool)
        for j, v in enumerate(session.run(watched, feeds)):
            sums[j] += float(np.percentile(np.abs(v[real]), PERCENTILE))
    amax = dict(zip(watched, sums / max(1, len(batches))))
    at = [lambda k, i=i: (amax[inputs[GEMMS_PER_LAYER * i + k]], amax[outputs[GEMMS_PER_LAYER * i + k]])
          for i in range(layers)]
    return Int8Ranges(
        layer_input=[at[i](0)[0] for i in range(layers)],
        qkv=[max(at[i](k)[1] for k in (0, 1, 2)) for i in range(layers)],
        context=[at[i](3)[0] for i in range(layers)],
        attention_output=[at[i](3)[1] for i in range(layers)],
        attention_norm=[at[i](4)[0] for i in range(layers)],
        gelu=[at[i](5)[0] for i in range(layers)],
        output=[at[i](5)[1] for i in range(layers)])


# -- running ---------------------------------------------------------------------------------------

class EngineRunner:
    """One plan, one execution context, inputs bound by name at each group's shapes: enough to
    compare plans' logits and to time a group's GPU work (a CUDA graph replayed, timed by events)."""

    def __init__(self, plan_path: Path):
        from beam_tensorrt.backends.tensorrt.platform import cuda_check, cudart_module, import_tensorrt

        self._check = cuda_check
        self.trt = trt = import_tensorrt()
        trt.init_libnvinfer_plugins(trt.Logger(trt.Logger.ERROR), "")
        self.cudart = cudart_module()
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not load {plan_path}")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output = next(n for n in names if n not in self.inputs)
        self.context = self.engine.create_execution_context()
        self.stream = self._check(self.cudart.cudaStreamCreateWithFlags(self.cudart.cudaStreamNonBlocking))
        self.buffers: dict[str, tuple[int, int]] = {}  # name -> (pointer, bytes)

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self.buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                self.cudart.cudaFree(ptr)
            ptr = self._check(self.cudart.cudaMalloc(max(nbytes, 256)))
            self.buffers[name] = (ptr, max(nbytes, 256))
            self.context.set_tensor_address(name, ptr)
        return ptr

    def bind(self, arrays: dict[str, np.ndarray]) -> tuple[int, ...]:
        """Copy ``arrays`` to the device, set the shapes; returns the output's shape."""
        cud = self.cudart
        for name in self.inputs:
            a = np.ascontiguousarray(arrays[name].astype(self.trt.nptype(self.engine.get_tensor_dtype(name))))
            ptr = self._buffer(name, a.nbytes)
            self._check(cud.cudaMemcpy(ptr, a.ctypes.data, a.nbytes, cud.cudaMemcpyKind.cudaMemcpyHostToDevice))
            if not self.context.set_input_shape(name, a.shape):
                raise RuntimeError(f"shape {a.shape} refused for {name}")
        shape = tuple(self.context.get_tensor_shape(self.output))
        self._buffer(self.output, int(np.prod(shape)) * 4)
        return shape

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        cud = self.cudart
        shape = self.bind(arrays)
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        out = np.empty(shape, np.float32)
        self._check(cud.cudaMemcpyAsync(out.ctypes.data, self.buffers[self.output][0], out.nbytes,
                                        cud.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
        self._check(cud.cudaStreamSynchronize(self.stream))
        return out

    def gpu_ms(self, arrays: dict[str, np.ndarray], replays: int = 200) -> float:
        """GPU milliseconds the group takes: its execution captured once as a CUDA graph, replayed."""
        cud = self.cudart
        self.run(arrays)
        self.run(arrays)
        self._check(cud.cudaStreamBeginCapture(self.stream, cud.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        self.context.execute_async_v3(self.stream)
        graph = self._check(cud.cudaStreamEndCapture(self.stream))
        executable = self._check(cud.cudaGraphInstantiate(graph, 0))
        start, end = self._check(cud.cudaEventCreate()), self._check(cud.cudaEventCreate())
        for _ in range(20):
            self._check(cud.cudaGraphLaunch(executable, self.stream))
        self._check(cud.cudaEventRecord(start, self.stream))
        for _ in range(replays):
            self._check(cud.cudaGraphLaunch(executable, self.stream))
        self._check(cud.cudaEventRecord(end, self.stream))
        self._check(cud.cudaEventSynchronize(end))
        ms = self._check(cud.cudaEventElapsedTime(start, end)) / replays
        cud.cudaGraphExecDestroy(executable)
        cud.cudaGraphDestroy(graph)
        return ms

    def close(self) -> None:
        for ptr, _ in self.buffers.values():
            self.cudart.cudaFree(ptr)
        self.buffers.clear()
        self.cudart.cudaStreamDestroy(self.stream)
