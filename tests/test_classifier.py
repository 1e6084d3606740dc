"""TextClassifier: every row once, in input order, whatever the grouping, packing or memory faults."""
import numpy as np
import pytest

from beam_tensorrt.backends.base import InferenceSession
from beam_tensorrt.classifier import RowFailure, TextClassifier
from conftest import FlakyMemorySession


def test_out_of_memory_batches_are_retried_in_halves(default_artifact):
    from beam_tensorrt.backends.onnxruntime import OnnxRuntimeSession

    texts = [f"a fine film number {i}" for i in range(16)]
    reference = TextClassifier(default_artifact, OnnxRuntimeSession(default_artifact), 128).logits(texts)[0]
    session = FlakyMemorySession(OnnxRuntimeSession(default_artifact), max_rows=3)
    clf = TextClassifier(default_artifact, session, 128)
    logits, _, failures = clf.logits(texts)
    assert failures == {} and np.abs(logits - reference).max() < 1e-5
    # the pipelined attempt, then the group again and halved until it fits
    assert session.calls[:4] == [16, 16, 8, 4] and set(session.calls) == {16, 8, 4, 2}
    assert sum(c for c in session.calls if c <= 3) == 16  # every row ran exactly once in the end


def test_a_row_that_fails_alone_goes_to_the_error_output(default_artifact):
    from beam_tensorrt.backends.onnxruntime import OnnxRuntimeSession

    poison_id = TextClassifier(default_artifact, OnnxRuntimeSession(default_artifact), 128).tokenizer._tok.token_to_id("zebra")
    clf = TextClassifier(default_artifact, FlakyMemorySession(OnnxRuntimeSession(default_artifact), 100, poison_id), 128)
    predictions = clf.classify(["a lovely film", "a zebra film", "a dreadful film"])
    assert isinstance(predictions[1], RowFailure) and "out of memory even alone" in predictions[1].reason
    assert [p.label for i, p in enumerate(predictions) if i != 1] == ["POSITIVE", "NEGATIVE"]


def test_classifier_returns_input_order_whatever_the_grouping(default_artifact):
    from beam_tensorrt.classifier import TextClassifier

    texts = ["good", "a long and thoroughly miserable experience from start to end " * 3, "bad", "superb"]
    clf = TextClassifier.open(default_artifact, "onnxruntime")
    whole = clf.logits(texts)[0]
    clf.token_budget = 16  # every row alone
    alone = clf.logits(texts)[0]
    assert abs(whole - alone).max() < 1e-4
    assert [p.label for p in clf.classify(texts)][0] == "POSITIVE"


class _RecordingSession(InferenceSession):
    """A backend that records what it was handed and when (real tokenizer)."""

    name = "recording"
    packed = False
    input_names = ["input_ids", "attention_mask", "token_type_ids"]
    token_budget = 64
    max_group_rows = 4

    def __init__(self, events):
        self.events = events

    def run_many(self, feeds):
        out = []
        for f in feeds:
            self.events.append(("launch", f["input_ids"].shape))
            out.append(np.stack([f["attention_mask"].sum(1), -f["attention_mask"].sum(1)], 1).astype(np.float32))
        return out

    def close(self):
        pass


def test_pipelined_groups_cover_every_row_once_and_are_queued_chunk_by_chunk(default_artifact):
    from beam_tensorrt.classifier import TextClassifier

    events: list = []
    clf = TextClassifier(default_artifact, _RecordingSession(events), 32)
    original_encode = clf.tokenizer.encode
    clf.tokenizer.encode = lambda texts: (events.append(("encode", len(texts))), original_encode(texts))[1]
    texts = [("word " * n).strip() for n in (9, 1, 25, 3, 3, 14, 2, 40, 5, 7)]
    logits, truncated, failures = clf.logits(texts)
    # each row's fake logit is its token count: rows came back to their own positions
    assert logits[:, 0].tolist() == [float(min(n + 2, 32)) for n in (9, 1, 25, 3, 3, 14, 2, 40, 5, 7)]
    assert truncated.tolist() == [n + 2 > 32 for n in (9, 1, 25, 3, 3, 14, 2, 40, 5, 7)]
    assert not failures
    # chunks of max_group_rows are tokenized at most one ahead of the launches (the next on a helper
    # thread while this one is launched), never all before the first launch
    kinds = [k for k, _ in events]
    assert kinds[0] == "encode" and kinds.count("encode") == 3
    assert kinds[:kinds.index("launch")].count("encode") <= 2
    assert all(rows * seq <= 64 or rows == 1 for k, (rows, seq) in
               ((k, v) for k, v in events if k == "launch"))


class _PackedGroupsOnly(InferenceSession):
    """A packing backend as the classifier sees it when it forms groups (nothing is run)."""

    name = "packed-groups"
    packed = True
    input_names = ["input_ids", "segment_ids", "token_type_ids", "position_ids"]
    token_budget = 128 * 128
    max_group_rows = 128

    def run_many(self, feeds):
        raise AssertionError("not run")

    def close(self):
        pass


def test_large_beam_batches_pack_like_small_ones(sst2_dir, default_artifact):
    """A Beam batch of 1,024 SST-2 phrases is packed chunk by chunk like four batches of 256: each
    chunk holds a mix of lengths, so the groups are alike (CUDA graphs replay, kernels tuned for one
    shape) and as tight as a 256-row batch's. Chunks sorted by length gave groups of 10 to 58
    sequences and 0.947 real tokens (bench/NOTES.md item 40)."""
    from beam_tensorrt.classifier import PACK_CHUNK_ROWS, TextClassifier
    from conftest import read_sst2

    texts, _ = read_sst2(sst2_dir / "dev.tsv", limit=4096)
    clf = TextClassifier(default_artifact, _PackedGroupsOnly(), 128)
    for batch in (256, 1024):
        groups = [g for i in range(0, len(texts), batch) for _, g in clf.groups(texts[i:i + batch])]
        sequences = [g.input_ids.shape[0] for g in groups]
        real = sum(g.real_tokens for g in groups) / sum(g.input_ids.size for g in groups)
        assert real >= 0.96, (batch, real)
        assert max(sequences) <= 1.25 * min(sequences), (batch, sorted(sequences))
    # Texts longer than a sequence widen one chunk (theirs, the last), wherever they are in the batch.
    mixed = ["word " * 200] + ["a fine film"] * 300 + ["word " * 200] + ["a dull one"] * 300 + ["word " * 200]
    clf = TextClassifier(default_artifact, _PackedGroupsOnly(), 256)
    wide = [rows for rows, g in clf.groups(mixed) if g.input_ids.shape[1] > 128]
    assert sum(len(rows) for rows in wide) <= PACK_CHUNK_ROWS and {0, 301, 602} <= {int(i) for r in wide for i in r}


def test_a_tokenization_that_fails_ahead_fails_the_batch_and_loses_no_row(default_artifact):
    """The next chunk is tokenized on a helper thread: its failure must reach the caller (the batch
    fails, and ClassifyText turns it into an error row a row), not vanish with the thread."""
    from beam_tensorrt.classifier import TextClassifier

    events: list = []
    clf = TextClassifier(default_artifact, _RecordingSession(events), 32)
    original_encode = clf.tokenizer.encode
    calls = []

    def encode(texts):
        calls.append(len(texts))
        if len(calls) == 2:
            raise RuntimeError("tokenizer broke on the second chunk")
        return original_encode(texts)

    clf.tokenizer.encode = encode
    texts = [("word " * n).strip() for n in (9, 1, 25, 3, 3, 14, 2, 40, 5, 7)]
    with pytest.raises(RuntimeError, match="second chunk"):
        clf.logits(texts)
    clf.tokenizer.encode = original_encode
    logits, _, failures = clf.logits(texts)  # the classifier still works afterwards
    assert len(logits) == len(texts) and not failures
