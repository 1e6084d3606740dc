"""TensorRT logits vs ONNX Runtime (fp32, CPU) on every shape bucket, with concurrent callers and with
CUDA graphs on and off."""
import threading

import numpy as np
import pytest

from gpu_support import require_tensorrt

TEXTS = ["good", "a fine, warm film", "dull and far too long " * 3, "word " * 60, "x " * 200, "", "café 🙂"]


@pytest.fixture(scope="module")
def plan(default_artifact, tmp_path_factory):
    require_tensorrt()
    from beam_tensorrt.trt.build import build_artifact_engine
    from beam_tensorrt.trt.metadata import EngineMismatch
    from beam_tensorrt.trt.runtime import TensorRTSession

    path = tmp_path_factory.mktemp("plans") / "minilm.plan"
    build_artifact_engine(default_artifact, path, precision="fp16", max_seq_len=256, max_batch=64)
    try:
        TensorRTSession(path, onnx_sha256=default_artifact.manifest.onnx_sha256).close()
    except EngineMismatch as e:  # e.g. TensorRT-RTX on compute capability 9.0
        pytest.skip(f"this TensorRT cannot run plans on this GPU: {e}")
    return path


def reference(default_artifact, texts, max_seq_len):
    from beam_tensorrt.classifier import TextClassifier

    return TextClassifier.open(default_artifact, "onnxruntime", max_seq_len).logits(texts)[0]


@pytest.mark.parametrize("graphs", [True, False])
def test_logits_match_onnxruntime_on_every_bucket(default_artifact, plan, graphs):
    from beam_tensorrt.classifier import TextClassifier
    from beam_tensorrt.trt.runtime import TensorRTSession

    session = TensorRTSession(plan, onnx_sha256=default_artifact.manifest.onnx_sha256, cuda_graphs=graphs)
    clf = TextClassifier(default_artifact, session, 256)
    seqs = sorted({p.max_seq for p in session.profiles} | {p.min_seq for p in session.profiles})
    texts = TEXTS + [" ".join(["word"] * max(1, s - 2)) for s in seqs]
    for _ in range(2):  # the second pass replays captured graphs
        ours = clf.logits(texts)[0]
    ref = reference(default_artifact, texts, 256)
    assert (ours.argmax(1) == ref.argmax(1)).all()
    assert np.abs(ours - ref).max() < 0.05  # fp16 engine vs fp32 reference
    session.close()


def test_concurrent_callers_get_their_own_results(default_artifact, plan):
    from beam_tensorrt.classifier import TextClassifier
    from beam_tensorrt.trt.runtime import TensorRTSession

    session = TensorRTSession(plan, onnx_sha256=default_artifact.manifest.onnx_sha256)
    clf = TextClassifier(default_artifact, session, 256)
    inputs = [[f"{t} {i}" for t in TEXTS] for i in range(8)]
    expected = [reference(default_artifact, x, 256) for x in inputs]
    got: dict = {}

    def work(i):
        for _ in range(5):
            got[i] = clf.logits(inputs[i])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for i in range(8):
        assert np.abs(got[i] - expected[i]).max() < 0.05
    session.close()
