"""The pure parts of bench/plugin_network.py (TensorRT's BERT plugins, issue 27): how a packed group
becomes the plugins' token stream and comes back, and the attention plugin's weight layout."""
import numpy as np
import pytest

from beam_tensorrt.models.bert import PooledBert
from beam_tensorrt.tokenization import pack_rows
from bench.plugin_network import Int8Ranges, qkv_weights, to_packed, to_varlen


def packed_group(lengths, width):
    """A packed group like TextTokenizer.pack's: row r's token ids are 100 * r + position."""
    sequence, slot, offset, n = pack_rows(np.array(lengths), width)
    ids = np.zeros((n, width), np.int64)
    segments = np.zeros((n, width), np.int64)
    for r, length in enumerate(lengths):
        ids[sequence[r], offset[r]:offset[r] + length] = 100 * r + np.arange(length)
        segments[sequence[r], offset[r]:offset[r] + length] = slot[r] + 1
    return ids, segments, sequence, slot


def test_a_packed_group_becomes_one_stream_of_rows_and_results_come_back_to_their_rows():
    lengths = [5, 3, 7, 2, 6, 4]
    ids, segments, sequence, slot = packed_group(lengths, 8)
    types = (ids % 2).astype(np.int64)
    f = to_varlen(ids, segments, types)
    assert f.tokens == sum(lengths) and f.rows == len(lengths) and f.max_seqlen == 7
    assert f.cu_seqlens[0] == 0 and f.cu_seqlens[-1] == sum(lengths)
    # every row's tokens are one run of the stream, in order, and the types travel with them
    runs = {int(f.input_ids[a]) // 100: f.input_ids[a:b] for a, b in zip(f.cu_seqlens[:-1], f.cu_seqlens[1:])}
    for r, length in enumerate(lengths):
        assert list(runs[r]) == [100 * r + i for i in range(length)]
    assert list(f.token_type_ids) == list(f.input_ids % 2)
    assert f.input_ids.dtype == f.cu_seqlens.dtype == np.int32
    # the plan's one result a row, in stream order, lands where a packed plan puts row r's
    in_stream = [int(f.input_ids[a]) // 100 for a in f.cu_seqlens[:-1]]
    results = np.array([[float(r), -float(r)] for r in in_stream], np.float32)
    packed = to_packed(results, f)
    assert packed.shape == (ids.shape[0], 8, 2)
    assert list(packed[sequence, slot][:, 0]) == [float(r) for r in range(len(lengths))]


def test_rows_out_of_slot_order_are_refused():
    ids = np.array([[1, 2, 3, 4]])
    segments = np.array([[2, 2, 1, 1]])  # row 2's tokens before row 1's: not how pack_rows lays them
    with pytest.raises(ValueError, match="slot after slot"):
        to_varlen(ids, segments, np.zeros_like(ids))


def test_qkv_weights_are_ordered_head_by_head_as_the_attention_plugin_reads_them():
    hidden, heads = 8, 2
    d = hidden // heads
    rng = np.random.default_rng(0)
    enc = {}
    for k in ("query", "key", "value"):
        enc[f"encoder.layer.0.attention.self.{k}.weight"] = rng.standard_normal((hidden, hidden)).astype(np.float32)
        enc[f"encoder.layer.0.attention.self.{k}.bias"] = rng.standard_normal(hidden).astype(np.float32)
    model = PooledBert({"hidden_size": hidden, "num_attention_heads": heads, "num_hidden_layers": 1}, enc, [])
    w, b = qkv_weights(model, 0)
    assert w.shape == (3 * hidden, hidden) and b.shape == (3 * hidden,)
    x = rng.standard_normal(hidden).astype(np.float32)
    fused = (w @ x + b).reshape(heads, 3, d)  # per head: its query, key, value
    for j, k in enumerate(("query", "key", "value")):
        full = enc[f"encoder.layer.0.attention.self.{k}.weight"] @ x + enc[f"encoder.layer.0.attention.self.{k}.bias"]
        for h in range(heads):
            np.testing.assert_allclose(fused[h, j], full[h * d:(h + 1) * d], rtol=1e-5)


def test_int8_ranges_must_cover_every_layer_alike():
    one = [1.0, 2.0]
    Int8Ranges(one, one, one, one, one, one, one)
    with pytest.raises(ValueError, match="different lengths"):
        Int8Ranges(one, one, one, one, one, one, [1.0])
