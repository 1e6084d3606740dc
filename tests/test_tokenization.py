import numpy as np
import pytest

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
