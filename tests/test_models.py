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
    assert sum("building the model" in o[1] for o in outs) == 1  # the lock made the other wait and reuse
    artifact = paths.pop()
    manifest = json.loads(open(os.path.join(artifact, "manifest.json")).read())
    assert manifest["labels"] == ["NEGATIVE", "POSITIVE"]
    assert manifest["input_names"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [d for d in os.listdir(tmp_path / "models") if not d.startswith(".")] == [os.path.basename(artifact)]
    again = build(tmp_path)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0 and out.strip() == artifact and "building" not in err


def test_what_ships_is_small_and_fits_the_encoder():
    for shipped in (sentiment_minilm.MODEL.head_file, sentiment_minilm.MODEL.adapters_file):
        assert shipped.stat().st_size < 5 * 1024 * 1024
    model = sentiment_minilm.MODEL.weights()
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


def test_default_model_matches_pytorch(default_artifact):
    """The ONNX graph our builder writes (no torch) against the same weights in transformers' BertModel."""
    import numpy as np
    import pytest

    torch = pytest.importorskip("torch", reason="the export extra (torch) is needed for parity tests")
    transformers = pytest.importorskip("transformers")
    from beam_tensorrt.backends.onnxruntime import OnnxRuntimeSession
    from beam_tensorrt.tokenization import TextTokenizer

    texts = ["the film is a delight", "dull, dull, dull.", "", "naïve café 🙂 日本語",
             "a much longer sentence that goes on and on, " * 6]
    enc = sentiment_minilm.MODEL.encoder_dir()
    bert = transformers.BertModel.from_pretrained(str(enc), local_files_only=True, attn_implementation="eager").eval()
    model = sentiment_minilm.MODEL.weights()  # the fine-tuning adapters merged into the encoder
    weights = {k: torch.from_numpy(v) for k, v in model.encoder.items() if not k.endswith("position_ids")}
    missing, unexpected = bert.load_state_dict(weights, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing)
    head = model.head
    batch = TextTokenizer(default_artifact.tokenizer_path, 128)(texts)
    ours = OnnxRuntimeSession(default_artifact).run(batch.feeds(["input_ids", "attention_mask", "token_type_ids"]))
    with torch.no_grad():
        ids, mask, types = (torch.from_numpy(a) for a in (batch.input_ids, batch.attention_mask, batch.token_type_ids))
        hidden = bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        m = mask.unsqueeze(-1).float()
        pooled = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)
        (w1, b1), (w2, b2) = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in head]
        theirs = (torch.relu(pooled @ w1 + b1) @ w2 + b2).numpy()
    assert ours.shape == (len(texts), 2)
    assert np.abs(ours - theirs).max() < 1e-4
