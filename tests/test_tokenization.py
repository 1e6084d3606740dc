import numpy as np
import pytest

from beam_tensorrt.backends.base import InferenceSession
from beam_tensorrt.tokenization import TextTokenizer


@pytest.fixture(scope="module")
def tok(default_artifact):
    return TextTokenizer(default_artifact.tokenizer_path, max_seq_len=32)


def test_pads_to_longest_row_rounded_to_multiple_of_8(tok):
    batch = tok(["hi", "a somewhat longer sentence with several more words in it"])
    longest = int(batch.attention_mask.sum(axis=1).max())
    assert batch.input_ids.shape[1] % 8 == 0
    assert longest <= batch.input_ids.shape[1] < longest + 8
    assert batch.input_ids.dtype == np.int64 and batch.attention_mask.dtype == np.int64
    assert batch.token_type_ids.shape == batch.input_ids.shape


def test_short_batch_is_not_padded_to_max(tok):
    batch = tok(["ok", "fine"])
    assert batch.input_ids.shape == (2, 8)  # [CLS] ok [SEP] -> 3 tokens -> 8, never 32 or 512


def test_special_tokens_and_padding_ids(tok):
    batch = tok(["hello world"])
    ids = batch.input_ids[0]
    n = int(batch.attention_mask[0].sum())
    assert ids[0] == 101 and ids[n - 1] == 102  # BERT uncased [CLS] ... [SEP]
    assert (ids[n:] == tok.pad_token_id).all()
    assert not batch.truncated[0]


def test_truncation_at_max_seq_len(tok):
    batch = tok(["word " * 200, "short"])
    assert batch.input_ids.shape == (2, 32)
    assert batch.attention_mask[0].sum() == 32
    assert batch.input_ids[0, 31] == 102  # still ends with [SEP]
    assert batch.truncated.tolist() == [True, False]


def test_unicode_text(tok):
    batch = tok(["naïve café 🙂", "日本語のテキスト", "Ελληνικά", "", "   "])
    assert batch.input_ids.shape[0] == 5
    lengths = batch.attention_mask.sum(axis=1)
    assert lengths[0] > 3 and lengths[1] > 3 and lengths[2] > 3
    assert lengths[3] == 2 and lengths[4] == 2  # empty and whitespace -> [CLS] [SEP]
    # Chinese/Japanese characters are split one token each by the BERT normalizer.
    assert lengths[1] >= 2 + 5


def test_max_seq_len_not_multiple_of_8(default_artifact):
    tok = TextTokenizer(default_artifact.tokenizer_path, max_seq_len=13)
    batch = tok(["word " * 50])
    assert batch.attention_mask.sum() == 13
    assert batch.input_ids.shape[1] == 16


def test_sub_batches_group_similar_lengths_and_cover_every_row():
    from beam_tensorrt.tokenization import plan_sub_batches

    lengths = [5, 60, 7, 58, 6, 3, 61, 9]
    groups = plan_sub_batches(lengths, token_budget=128, max_rows=3)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(len(g) <= 3 for g in groups)
    for g in groups:
        padded = max(-(-lengths[i] // 8) * 8 for i in g)
        assert len(g) * padded <= 128 or len(g) == 1
    # short rows never share a group with long ones here
    assert {frozenset(g) for g in groups} >= {frozenset([1, 3]), frozenset([6])} or all(
        max(lengths[i] for i in g) - min(lengths[i] for i in g) < 10 for g in groups)


def test_classifier_returns_input_order_whatever_the_grouping(default_artifact):
    from beam_tensorrt.classifier import TextClassifier

    texts = ["good", "a long and thoroughly miserable experience from start to end " * 3, "bad", "superb"]
    clf = TextClassifier.open(default_artifact, "onnxruntime", 128)
    whole = clf.logits(texts)[0]
    clf.token_budget = 16  # every row alone
    alone = clf.logits(texts)[0]
    assert abs(whole - alone).max() < 1e-4
    assert [p.label for p in clf.classify(texts)][0] == "POSITIVE"


def test_vectorised_padding_matches_each_encoding(tok):
    texts = ["", "a", "plain short phrase", "émoji 🎉 and 中文 mixed", "word " * 100, "x " * 31, "x " * 30]
    encodings = tok.encode(texts)
    batch = tok.pad(encodings)
    for i, e in enumerate(encodings):
        k = len(e.ids)
        assert batch.input_ids[i, :k].tolist() == e.ids
        assert (batch.input_ids[i, k:] == tok.pad_token_id).all()
        assert batch.attention_mask[i].tolist() == [1] * k + [0] * (batch.input_ids.shape[1] - k)
        assert batch.token_type_ids[i, :k].tolist() == e.type_ids
        assert bool(batch.truncated[i]) == bool(e.overflowing)
    assert batch.truncated.tolist() == [False, False, False, False, True, True, False]


def test_type_ids_are_read_when_the_template_gives_nonzero_ones(default_artifact, tmp_path):
    import json

    spec = json.loads(default_artifact.tokenizer_path.read_text(encoding="utf-8"))
    single = spec["post_processor"]["single"]
    for piece in single:  # [CLS]:0 $A:1 [SEP]:1
        kind = next(iter(piece))
        if kind == "Sequence" or piece[kind]["id"] == "[SEP]":
            piece[kind]["type_id"] = 1
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    tok = TextTokenizer(path, max_seq_len=32)
    batch = tok(["a plain phrase", "x"])
    n = int(batch.lengths[0])
    assert batch.token_type_ids[0, :n].tolist() == [0] + [1] * (n - 1)
    assert batch.token_type_ids[0, n:].tolist() == [0] * (batch.input_ids.shape[1] - n)
    assert batch.token_type_ids[1, :3].tolist() == [0, 1, 1]


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
    # chunks of max_group_rows are tokenized one at a time, interleaved with launches
    kinds = [k for k, _ in events]
    assert kinds[0] == "encode" and kinds.count("encode") == 3 and kinds.index("launch") < kinds.index("encode", 1)
    assert all(rows * seq <= 64 or rows == 1 for k, (rows, seq) in
               ((k, v) for k, v in events if k == "launch"))


def test_packing_places_every_row_once_whole_and_in_order(tok):
    from beam_tensorrt.tokenization import pack_rows

    texts = ["a"] + [("word " * n).strip() for n in (1, 3, 9, 20, 28, 2, 2, 14, 5)] + ["x " * 100, ""]
    encodings = tok.encode(texts)
    lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
    batch = tok.pack(encodings, lengths, width=32)
    assert batch.input_ids.shape[1] == 32 and batch.real_tokens == lengths.sum()
    assert int((batch.segment_ids > 0).sum()) == lengths.sum()  # nothing overlaps, nothing is lost
    for r, e in enumerate(encodings):
        where = batch.segment_ids[batch.sequence[r]] == batch.slot[r] + 1
        assert batch.input_ids[batch.sequence[r]][where].tolist() == e.ids
        assert batch.position_ids[batch.sequence[r]][where].tolist() == list(range(len(e.ids)))
    logits = np.random.default_rng(0).standard_normal((*batch.input_ids.shape, 2))
    assert batch.rows_of(logits).shape == (len(texts), 2)
    parts = batch.split(2)
    assert sorted(i for rows, _ in parts for i in rows) == list(range(len(texts)))
    assert all(part.input_ids.shape[0] <= 2 for _, part in parts)
    with pytest.raises(ValueError, match="does not fit"):
        pack_rows(np.array([40]), 32)


def test_packing_wastes_little_on_sst2_phrases(sst2_dir, default_artifact):
    """Real / computed tokens: ~0.97 packed, against 0.37-0.54 for padded GPU groups (bench/NOTES.md)."""
    from conftest import read_sst2

    texts, _ = read_sst2(sst2_dir / "dev.tsv", limit=2048)
    tok = TextTokenizer(default_artifact.tokenizer_path, 128)
    real = computed = 0
    for i in range(0, len(texts), 256):
        encodings = tok.encode(texts[i:i + 256])
        batch = tok.pack(encodings, np.fromiter(map(len, encodings), dtype=np.int64))
        real, computed = real + batch.real_tokens, computed + batch.input_ids.size
    assert real / computed >= 0.9


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
