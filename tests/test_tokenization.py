import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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




# A long text is tokenized from its start (cut at a space) when that start already overflows
# max_seq_len: the encodings must be the whole text's, whatever the text. The tokenizer's own
# encode_batch on the whole texts is the trusted implementation.
WORDS = ["the", "film", "un", "##believable", "naïve", "Café", "日本語", "🙂", "don't", "well-made", ",", ".", "!",
         "a" * 30, "supercalifragilistic", "x1", "42", "\u0301", "ß"]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", " \u00a0", "\x1c", ""]


SETTINGS_CUT = settings(max_examples=60, deadline=None, derandomize=True,
                        suppress_health_check=[HealthCheck.function_scoped_fixture])


def whole(tok, texts):
    return [(e.ids, e.type_ids, bool(e.overflowing)) for e in tok._encode_batch(list(texts), add_special_tokens=True)]


def encoded(tok, texts):
    return [(e.ids, e.type_ids, bool(e.overflowing)) for e in tok.encode(texts)]


def test_a_long_texts_start_gives_the_whole_texts_encoding(tok):
    cut = tok._cut_at
    assert cut == 32 * 6  # the default model's WordPiece tokenizer is cut
    texts = [
        "word " * 200,  # the start overflows: the usual case
        "a" + " " * (cut + 10) + "b c d e f " * 40,  # the start has one token: tokenized again whole
        "x" * (cut + 50) + " then some words" * 20,  # no space within the cut: whole
        "ab" * (cut // 2 - 2) + " tail " * 10,  # one long word up to just before the cut point
        # 29 words, then one of 110 characters across the cut point: whole it is one [UNK] (over
        # WordPiece's 100 characters a word), cut through it would give other tokens at position 30.
        "good " * 29 + "z" * 110 + " end" * 20,
        ("great movie\t" * 30) + " end",  # tabs and newlines are not cut at (only a plain space is)
        " " * (cut * 2),  # only spaces
        "日本語のテキスト " * 60 + "naïve café 🙂 " * 10,
        "short", "",
        "one two three " * 4 + "x" * (cut - 56) + " after",  # start of exactly max_seq_len - 2 tokens or fewer
    ]
    assert encoded(tok, texts) == whole(tok, texts)


def test_an_exactly_full_start_is_tokenized_again_whole(default_artifact):
    # 30 words fill max_seq_len 32 exactly ([CLS] + 30 + [SEP]) without overflowing: the text's
    # start then says nothing about the rest, which must be tokenized too.
    tok = TextTokenizer(default_artifact.tokenizer_path, max_seq_len=32)
    start = " ".join(["good"] * 30)
    text = start + " " * (tok._cut_at - len(start) + 5) + "bad " * 10
    [(ids, _, overflowing)] = encoded(tok, [text])
    assert overflowing and len(ids) == 32 and [(ids, _, overflowing)] == whole(tok, [text])


@SETTINGS_CUT
@given(st.lists(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=260)
                .map(lambda parts: "".join(w + s for w, s in parts)), min_size=1, max_size=6))
def test_encodings_match_the_tokenizers_own_on_generated_texts(tok, texts):
    assert encoded(tok, texts) == whole(tok, texts)


def test_which_tokenizers_are_cut(default_artifact):
    from tokenizers import Tokenizer, models, pre_tokenizers

    from beam_tensorrt.tokenization import cuts_at_spaces_exactly

    assert cuts_at_spaces_exactly(Tokenizer.from_file(str(default_artifact.tokenizer_path)))
    byte_level = Tokenizer(models.BPE())
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel()
    assert not cuts_at_spaces_exactly(byte_level)
    with_phrase = Tokenizer.from_file(str(default_artifact.tokenizer_path))
    with_phrase.add_tokens(["new york"])  # matched on the raw text, across a space
    assert not cuts_at_spaces_exactly(with_phrase)
