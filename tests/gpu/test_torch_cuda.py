"""The PyTorch backend on a GPU: fp16 logits vs ONNX Runtime fp32, CUDA graphs on and off, threads."""
import threading

import numpy as np
import pytest

from gpu_support import require_cuda_torch

TEXTS = ["good", "a fine, warm film", "dull and far too long " * 3, "word " * 60, "", "café 🙂"] * 5


@pytest.mark.parametrize("graphs, packing", [(True, True), (False, True), (True, False), (False, False)])
def test_torch_fp16_matches_onnxruntime(default_artifact, graphs, packing):
    require_cuda_torch()
    from beam_tensorrt.backends.base import BackendOptions
    from beam_tensorrt.backends.torch import TorchSession
    from beam_tensorrt.classifier import TextClassifier

    ref = TextClassifier.open(default_artifact, "onnxruntime").logits(TEXTS)[0]
    session = TorchSession(default_artifact, BackendOptions(device="cuda", cuda_graphs=graphs, packing=packing))
    clf = TextClassifier(default_artifact, session, 128)
    for _ in range(2):
        ours = clf.logits(TEXTS)[0]
    assert (ours.argmax(1) == ref.argmax(1)).all()
    assert np.abs(ours - ref).max() < 0.05


def test_torch_concurrent_callers(default_artifact):
    require_cuda_torch()
    from beam_tensorrt.classifier import TextClassifier

    clf = TextClassifier.open(default_artifact, "torch")
    ref = TextClassifier.open(default_artifact, "onnxruntime")
    inputs = [[f"{t} {i}" for t in TEXTS] for i in range(6)]
    got = {}

    def work(i):
        got[i] = clf.logits(inputs[i])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for i in range(6):
        assert np.abs(got[i] - ref.logits(inputs[i])[0]).max() < 0.05
