"""The default model's artifact: built on first use into the cache, once, atomically."""
import json
import os
import subprocess
import sys

from beam_tensorrt.models import sentiment_minilm


def build(cache, timeout=300):
    env = dict(os.environ, BEAM_TENSORRT_CACHE=str(cache))
    return subprocess.Popen([sys.executable, "-m", "beam_tensorrt.cli", "model", "build", "sentiment-minilm"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_first_use_builds_once_with_a_message_then_reuses(tmp_path):
    procs = [build(tmp_path), build(tmp_path)]  # two workers starting at once
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    assert sum("building the default model" in o[1] for o in outs) == 1  # the lock made the other wait and reuse
    artifact = paths.pop()
    manifest = json.loads(open(os.path.join(artifact, "manifest.json")).read())
    assert manifest["labels"] == ["NEGATIVE", "POSITIVE"]
    assert manifest["input_names"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [d for d in os.listdir(tmp_path / "models") if not d.startswith(".")] == [os.path.basename(artifact)]
    again = build(tmp_path)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0 and out.strip() == artifact and "building" not in err


def test_what_ships_is_small_and_fits_the_encoder():
    for shipped in (sentiment_minilm.HEAD_FILE, sentiment_minilm.ADAPTERS_FILE):
        assert shipped.stat().st_size < 5 * 1024 * 1024
    model = sentiment_minilm.weights()
    assert model.head[0][0].shape[0] == 384 and model.head[-1][1].shape == (2,)


def test_adapters_merge_into_the_encoder_weights():
    import numpy as np
    import pytest

    from beam_tensorrt.models.bert import merge_adapters

    rng = np.random.default_rng(0)
    w, bias = rng.standard_normal((6, 4)).astype(np.float32), np.zeros(6, np.float32)
    a, b = rng.standard_normal((2, 4)).astype(np.float16), rng.standard_normal((6, 2)).astype(np.float16)
    encoder = {"l.weight": w, "l.bias": bias, "other.weight": w}
    merged = merge_adapters(encoder, {"l.lora_A": a, "l.lora_B": b, "l.bias": np.ones(6, np.float32)})
    np.testing.assert_allclose(merged["l.weight"], w + b.astype(np.float32) @ a.astype(np.float32), rtol=1e-6)
    assert merged["l.bias"].tolist() == [1.0] * 6 and merged["other.weight"] is w and encoder["l.weight"] is w
    with pytest.raises(ValueError, match="matches no encoder weight"):
        merge_adapters(encoder, {"nope.bias": bias})
    with pytest.raises(ValueError, match="has shape"):
        merge_adapters(encoder, {"l.bias": np.ones(3, np.float32)})
