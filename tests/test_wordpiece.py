"""The Python WordPiece path against the trusted implementation, the Rust tokenizer on the same texts."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_tensorrt.tokenization import TextTokenizer, python_wordpiece
from beam_tensorrt.wordpiece import SCAN_CHARS_PER_TOKEN, AsciiWordPiece, WordPieceEncoding

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", params=[32, 128])
def pair(default_artifact, request):
    """(Python path on, Rust only) for the default model at a max_seq_len."""
    fast = TextTokenizer(default_artifact.tokenizer_path, request.param, python_path=True)
    rust = TextTokenizer(default_artifact.tokenizer_path, request.param, python_path=False)
    assert fast._ascii is not None and rust._ascii is None
    return fast, rust


def as_rust_gives(pair, texts):
    fast, rust = pair
    got = [(list(e.ids), list(e.type_ids), bool(e.overflowing), len(e)) for e in fast.encode(texts)]
    want = [(e.ids, e.type_ids, bool(e.overflowing), len(e)) for e in rust._encode_batch(list(texts), add_special_tokens=True)]
    return got == want


PINNED = [
    "", " ", "   \t\n ", "a", "A fine, FUNNY film!", "don't stop-motion (1999) #1 @home ~ok~ a_b `x` {y} |z|",
    "unbelievably supercalifragilisticexpialidocious xyzzyqwv", "x1y2 42 3.14 $5,000",
    "z" * 101, "z" * 100, "good " * 29 + "z" * 110 + " end",  # over WordPiece's 100 characters: [UNK]
    "word " * 30, "word " * 31, "word " * 126, "word " * 127, "word " * 200,  # around both limits
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds", "a\x01b", "del\x7fete", "fs\x1cgs\x1dus\x1f",
    "[MASK] [cls] [SEP] [unk] [PAD] [mask]", "a [ b ] c", "PAD pad cls sep",
    "!!!...???" * 40, "a" * 2000, "a " * 3000, ("supercalifragilistic " * 60) + "end",
    "the " * 150 + "x" * 700,  # a cut falls inside a long word, past the words kept
    "word " * 20 + "y" * 900 + " tail",  # few words before the cut point: scanned whole
    "naïve café", "日本語", "emoji 🙂 here", "\u00a0nbsp", "ß",  # not ASCII: the Rust tokenizer's
]


def cut_cases(max_seq_len: int) -> list[str]:
    """Texts whose scanned start (SCAN_CHARS_PER_TOKEN a token) ends inside a word, after as many
    words as tokens are kept, one fewer and one more."""
    scan, kept = SCAN_CHARS_PER_TOKEN * max_seq_len, max_seq_len - 2
    texts = []
    for words in (kept - 1, kept, kept + 1):
        start = "a " * (words - 1)
        texts.append(start + " " * (scan - 1 - len(start)) + "supercalifragilistic then more words" * 3)
    return texts


def test_pinned_texts_are_encoded_as_the_rust_tokenizer_encodes_them(pair):
    assert as_rust_gives(pair, PINNED + cut_cases(pair[0].max_seq_len))


def mostly_ascii(max_seq_len: int) -> list[str]:
    """Texts with a few chunks that are not ASCII: tokenized chunk by chunk."""
    scan = SCAN_CHARS_PER_TOKEN * max_seq_len
    return [
        "a naïve but fine film " + "ok " * 30, "the café’s “best” film – really… " + "good " * 60,
        "word " * 40 + "日本語のテキスト " + "word " * 40, "fine \u0301accent and\u00a0nbsp " + "x " * 60,
        "a " * (max_seq_len - 10) + "é " + "b " * (scan // 2) + "é",  # a cut start that overflows
        "éa" + " x" * 30,  # a non-ASCII chunk first
        "x " * 30 + "aé",  # and last
    ]


def test_texts_with_a_few_non_ascii_chunks_are_encoded_as_the_rust_tokenizer_encodes_them(pair):
    texts = mostly_ascii(pair[0].max_seq_len)
    assert all(pair[0]._ascii.encode_batch(texts)), "every text takes the chunked path"
    assert as_rust_gives(pair, texts)


def test_texts_the_rust_tokenizer_takes_whole_are_encoded_as_it_encodes_them(pair):
    scan = SCAN_CHARS_PER_TOKEN * pair[0].max_seq_len
    texts = [
        "é " + "a " * 5 + " " * scan + "b " * 200,  # a cut start that does not fill max_seq_len
        "é à ü " + "x " * 10,  # too many chunks not ASCII
        "good " * 20 + "Ünïcödé" * 40 + " bad" * 80,  # a long non-ASCII chunk across the cut point
    ]
    chosen = pair[0]._ascii.encode_batch(texts)
    assert chosen[0] is None and chosen[1] is None
    assert as_rust_gives(pair, texts)


def test_the_vendored_sst2_dev_phrases_are_encoded_as_the_rust_tokenizer_encodes_them(pair, sst2_dir):
    from scripts.sst2 import read_tsv

    texts = [text for text, _ in read_tsv(sst2_dir / "dev.tsv")]
    assert len(texts) > 800 and as_rust_gives(pair, texts)


ASCII = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=400)
WORDY = st.lists(st.sampled_from(["the", "Film", "un", "believable", "don't", "x1", "[MASK]", "[", "##ing", ",", ".",
                                  "q" * 99, "q" * 101, " ", "  ", "\t", "\n", "\r", "\x00", "_", "É"]),
                 max_size=300).map("".join)


ASCII_WORDS = ["the", "film", "good,", "don't", "x1", "", " ", "\n", "\t"]
OTHER_WORDS = ["é", "Café", "’", "–", "\u00a0", "\u0301", "日本", "🙂", "\u2009", "aé"]
# About one chunk in 20 not ASCII: most such texts take the chunked path.
MOSTLY_ASCII = st.lists(st.sampled_from(ASCII_WORDS * 20 + OTHER_WORDS), max_size=300).map(" ".join)


@SETTINGS
@given(st.lists(st.one_of(ASCII, WORDY, MOSTLY_ASCII), min_size=1, max_size=5))
def test_generated_texts_are_encoded_as_the_rust_tokenizer_encodes_them(pair, texts):
    assert as_rust_gives(pair, texts)


def test_which_texts_take_the_python_path(default_artifact):
    from tokenizers import Tokenizer

    fast = AsciiWordPiece.of(Tokenizer.from_file(str(default_artifact.tokenizer_path)), 32)
    assert isinstance(fast.encode("A fine film.\n"), WordPieceEncoding)
    for text in ["naïve", "a [MASK] b", "a\x01b", "\x7f"]:
        assert fast.encode(text) is None, text


def test_tokenizers_other_than_berts_wordpiece_get_no_python_path(default_artifact):
    from tokenizers import Tokenizer, models, pre_tokenizers

    byte_level = Tokenizer(models.BPE())
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel()
    assert AsciiWordPiece.of(byte_level, 32) is None
    whitespace = Tokenizer.from_file(str(default_artifact.tokenizer_path))
    whitespace.pre_tokenizer = pre_tokenizers.Whitespace()  # groups punctuation runs: not BERT's
    assert AsciiWordPiece.of(whitespace, 32) is None
    bert = Tokenizer.from_file(str(default_artifact.tokenizer_path))
    assert AsciiWordPiece.of(bert, 2) is None  # no room for the text between [CLS] and [SEP]


def test_the_python_path_is_on_where_the_rust_tokenizer_has_fewer_threads_than_it_is_worth():
    import os

    assert python_wordpiece({"RAYON_NUM_THREADS": "2"})  # a worker's share of a 16-core host, eight workers
    assert python_wordpiece({"RAYON_NUM_THREADS": "4"})
    assert not python_wordpiece({"RAYON_NUM_THREADS": "5"})
    assert not python_wordpiece({"RAYON_NUM_THREADS": "16"})
    assert python_wordpiece({}) == ((os.cpu_count() or 1) < 5)  # unset: a thread a core
