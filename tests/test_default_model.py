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


def test_shipped_head_is_small():
    assert sentiment_minilm.HEAD_FILE.stat().st_size < 5 * 1024 * 1024
    layers = sentiment_minilm.weights().head
    assert layers[0][0].shape[0] == 384 and layers[-1][1].shape == (2,)
