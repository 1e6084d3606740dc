"""Every backend held to the one contract the classifier relies on (``backends.base.InferenceSession``),
on a CPU: ONNX Runtime and PyTorch for real, the shared-model session over a classifier holding ONNX
Runtime, TensorRT's runner with its CUDA and TensorRT calls faked (tests/fake_tensorrt.py: asynchronous streams, graphs, profiles; a real ONNX Runtime session
computes the logits). Reference: ONNX Runtime on the same model."""
import threading

import numpy as np
import pytest

import fake_tensorrt
from beam_tensorrt.backends import REGISTRY, BackendOptions, open_session
from beam_tensorrt.backends.base import InferenceSession
from beam_tensorrt.classifier import TextClassifier
from beam_tensorrt.tokenization import PACKED_INPUTS, PADDED_INPUTS, PackedBatch, TextTokenizer
from beam_tensorrt.backends.tensorrt.profiles import default_profiles, packed_profiles

TEXTS = ["good", "a fine, warm film", "dull and far too long " * 3, "word " * 60, "x " * 200, "", "café 🙂",
         "not as gripping as i hoped", "the second half dragged", "a triumph"]
BACKENDS = ["onnxruntime", "torch", "torch-padded", "tensorrt-fake", "tensorrt-fake-packed", "tensorrt-fake-no-graphs",
            "shared-onnxruntime"]


def fake_plan(tmp_path, artifact, max_seq_len=256, max_batch=16, packed_onnx=None):
    """Write a fake plan (+ its real metadata file) as the engine builder would."""
    from beam_tensorrt.backends.tensorrt.metadata import PlanMetadata, metadata_path

    profiles = packed_profiles(max_seq_len, max_batch) if packed_onnx else default_profiles(max_seq_len, max_batch)
    plan = tmp_path / "model.plan"
    fake_tensorrt.write_fake_plan(plan, packed_onnx or artifact.onnx_path, len(artifact.manifest.labels), profiles)
    name, major, minor = fake_tensorrt.GPU
    meta = PlanMetadata(trt_module="tensorrt", trt_version=fake_tensorrt.TRT_VERSION, gpu_name=name,
                        compute_capability=f"{major}.{minor}", onnx_sha256=artifact.manifest.onnx_sha256,
                        precision="fp32", profiles=[p.to_dict() for p in profiles])
    open(metadata_path(plan), "w").write(meta.to_json())
    return plan


@pytest.fixture(params=BACKENDS)
def session(request, default_artifact, tmp_path, monkeypatch, packed_onnx):
    name = request.param
    if name.startswith("torch"):
        pytest.importorskip("torch", reason="the PyTorch backend needs torch (installed by `make test`)")
        s = open_session("torch", default_artifact, BackendOptions(device="cpu", packing=name == "torch"))
    elif name.startswith("tensorrt-fake"):
        fake_tensorrt.install(monkeypatch)
        from beam_tensorrt.backends.tensorrt.runner import TensorRTSession

        plan = fake_plan(tmp_path, default_artifact, packed_onnx=packed_onnx if name.endswith("packed") else None)
        s = TensorRTSession(plan, onnx_sha256=default_artifact.manifest.onnx_sha256,
                            cuda_graphs=not name.endswith("no-graphs"))
    elif name.startswith("shared-"):  # model sharing: a session over a classifier held elsewhere
        from beam_tensorrt.backends.shared import SharedModelSession

        holder = TextClassifier(default_artifact, open_session(name.split("-", 1)[1], default_artifact), 256)
        s = SharedModelSession(holder, holder.session_layout())
        yield s
        s.close()
        holder.close()
        return
    else:
        s = open_session(name, default_artifact)
    yield s
    s.close()


@pytest.fixture
def atol():
    """How close to ONNX Runtime fp32 a backend's logits must be (fp32 on the CPU here)."""
    return 1e-4


@pytest.fixture(scope="module")
def reference(default_artifact):
    return open_session("onnxruntime", default_artifact)


class Group:
    """Rows of one shape, as the session takes them (packed or padded) and padded for the reference."""

    def __init__(self, tok, rows, words, packed):
        texts = [" ".join(f"w{(i * 7 + j) % 50}" for j in range(words)) for i in range(rows)]
        encodings = tok.encode(texts)
        lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=rows)
        self.padded = tok.pad(encodings, lengths)
        self.batch = tok.pack(encodings, lengths) if packed else self.padded

    def feeds(self, session):
        return self.batch.feeds(session.input_names)

    def rows_of(self, result):
        return self.batch.rows_of(result) if isinstance(self.batch, PackedBatch) else result

    def expected(self, reference):
        return reference.run(self.padded.feeds(reference.input_names))


def groups_of(artifact, shapes, packed=False):
    """Groups of the given (rows, words) shapes, texts varying so rows differ."""
    tok = TextTokenizer(artifact.tokenizer_path, 256)
    return [Group(tok, rows, words, packed) for rows, words in shapes]


def test_declares_what_the_classifier_relies_on(session):
    assert isinstance(session.name, str) and session.name
    assert isinstance(session.packed, bool)
    assert list(session.input_names) == [n for n in (PACKED_INPUTS if session.packed else PADDED_INPUTS)
                                         if n in session.input_names]
    assert {"input_ids", "segment_ids" if session.packed else "attention_mask"} <= set(session.input_names)
    assert isinstance(session.token_budget, int) and session.token_budget > 0
    assert isinstance(session.max_group_rows, int) and session.max_group_rows > 0
    assert InferenceSession in type(session).__mro__  # subclassed explicitly: the contract is declared


# Rows and words chosen to hit every length bucket of the fake plan (1-32, 33-64, 65-128, 129-256
# tokens; at most 16, 16, 16, 8 rows), groups larger than a profile accepts at their length (split
# and stitched), one row, a text cut at 256 tokens, and a shape that recurs (CUDA graphs). Words
# "wN" are two tokens each: (17, 35) is 17 rows of 72 tokens.
SHAPES = [(3, 2), (20, 10), (1, 1), (17, 35), (9, 70), (1, 250), (12, 20), (12, 20), (12, 20), (12, 20)]


def test_run_many_consumes_a_generator_once_in_order(session, default_artifact, reference, atol):
    groups = groups_of(default_artifact, SHAPES, session.packed)
    read = []

    def generator():
        for i, g in enumerate(groups):
            read.append(i)
            yield g.feeds(session)

    results = session.run_many(generator())
    assert read == list(range(len(groups)))
    assert len(results) == len(groups)
    for g, got in zip(groups, results):
        rows, sequences = g.padded.input_ids.shape[0], g.batch.input_ids.shape[0]
        want = g.expected(reference)
        labels = want.shape[1]
        shape = (sequences, g.batch.input_ids.shape[1], labels) if session.packed else (rows, labels)
        assert got.shape == shape and got.dtype == np.float32
        np.testing.assert_allclose(g.rows_of(got), want, atol=atol)
    assert session.run_many(iter([])) == []


def test_run_is_one_group_of_run_many(session, default_artifact, reference, atol):
    g = groups_of(default_artifact, [(6, 12)], session.packed)[0]
    np.testing.assert_allclose(g.rows_of(session.run(g.feeds(session))), g.expected(reference), atol=atol)


def test_concurrent_callers_get_their_own_results(session, default_artifact, reference, atol):
    inputs = [groups_of(default_artifact, [(2 + i, 3 + 2 * i), (5, 20 + i), (2, 40)], session.packed) for i in range(5)]
    expected = [[g.expected(reference) for g in gs] for gs in inputs]
    got: dict = {}
    errors: list = []

    def work(i):
        try:
            for _ in range(2):
                got[i] = [g.rows_of(r) for g, r in
                          zip(inputs[i], session.run_many(g.feeds(session) for g in inputs[i]))]
        except Exception as e:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    for i in range(5):
        for g, want in zip(got[i], expected[i]):
            np.testing.assert_allclose(g, want, atol=atol)


def test_classifier_on_the_backend_labels_like_onnxruntime(session, default_artifact, atol):
    ours = TextClassifier(default_artifact, session, 256)
    theirs = TextClassifier(default_artifact, open_session("onnxruntime", default_artifact), 256)
    texts = TEXTS * 3  # several groups, handed over by a generator: the pipelined path
    got, want = ours.classify(texts), theirs.classify(texts)
    assert [p.label for p in got] == [p.label for p in want]
    np.testing.assert_allclose([p.score for p in got], [p.score for p in want], atol=atol)


def test_registry_lists_every_backend_module():
    assert list(REGISTRY) == ["tensorrt", "torch", "onnxruntime"]


def test_fake_tensorrt_graphs_are_replayed(default_artifact, tmp_path, monkeypatch):
    """The runner captures a recurring shape once and replays it; replays give the same logits."""
    cudart = fake_tensorrt.install(monkeypatch)
    from beam_tensorrt.backends.tensorrt.runner import TensorRTSession

    session = TensorRTSession(fake_plan(tmp_path, default_artifact), cuda_graphs=True)
    group = groups_of(default_artifact, [(10, 5)])[0].feeds(session)
    first = session.run(group)
    for _ in range(5):
        np.testing.assert_allclose(session.run(group), first, atol=1e-6)
    assert cudart.graph_launches == 6 - session.graph_after - 1
    session.close()
