"""Tests of the tokenizers beyond characters: byte-level BPE, words, and the HF adapter."""

import json
import subprocess
import sys
import warnings
from collections import Counter
from itertools import pairwise

import pytest

from fmbook.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    HFBPETokenizer,
    Tokenizer,
    WordTokenizer,
    naive_train,
)
from fmbook.tokenizers.bpe import _PairStats, merge, split_chunks
from fmbook.tokenizers.word import UNK_ID

PATTERNS = [None, "gpt2", "gpt4"]
CORPUS = (
    "To be, or not to be: that is the question.\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "我爱北京天安门。北京欢迎你！🙂🙂 emoji 🎉 and 1234567 numbers\n"
) * 3
SAMPLES = {
    "ascii": "Hello, world! It's 2024; don't panic.\n  indented\ttab",
    "chinese": "我爱北京天安门",
    "emoji": "🙂👍🏽🇫🇷👨‍👩‍👧",
    "mixed": "naïve café — 北京 🙂 x² ∑\r\nend",
    "empty": "",
    "unseen": "Zebras quickly jumped over 9999 lazy ǅwarves",
}


def quiet(fn, *args, **kwargs):
    """Call ``fn`` with the 'ran out of pairs' warning of small corpora silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module", params=PATTERNS)
def bpe(request):
    return BPETokenizer.train(CORPUS, vocab_size=300, pattern=request.param)


# -- BPE: round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_bpe_round_trips_any_text(bpe, name):
    text = SAMPLES[name]
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text
    assert bpe.decode_bytes(ids) == text.encode("utf-8")


def test_bpe_empty_text_is_no_tokens(bpe):
    assert bpe.encode("") == [] and bpe.decode([]) == "" and bpe.decode_bytes([]) == b""


def test_bpe_merges_compress_the_training_text(bpe):
    assert bpe.vocab_size == 300 and len(bpe.merges) == 44
    assert len(bpe.encode(CORPUS)) < 0.7 * len(CORPUS.encode())


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe invalid \x80 utf-8 \xc3",  # stray bytes, a truncated 2-byte sequence
        "lone \ud800 surrogate".encode("utf-8", "surrogatepass"),  # b"\xed\xa0\x80"
        bytes(range(256)),
    ],
)
def test_bpe_bytes_round_trip_exactly(bpe, data):
    ids = bpe.encode_bytes(data)
    assert bpe.decode_bytes(ids) == data
    assert bpe.decode(ids) == data.decode("utf-8", errors="replace")


def test_bpe_decode_replaces_a_partial_character(bpe):
    ids = bpe.encode("北")  # three UTF-8 bytes
    partial = bpe.encode_bytes("北".encode()[:2])
    assert bpe.decode(partial) == "\ufffd" and bpe.decode(ids) == "北"


def test_bpe_encode_rejects_a_lone_surrogate_in_a_str(bpe):
    with pytest.raises(ValueError, match=r"text has a lone surrogate .* position 2.*encode_bytes"):
        bpe.encode("ab\udc80")


@pytest.mark.parametrize("pattern", PATTERNS)
def test_chunks_cover_the_input_exactly(pattern):
    data = (CORPUS + "x\n\n\n  \t\r\n y").encode() + b"\xff\xed\xa0\x80"
    chunks = split_chunks(data, pattern)
    assert b"".join(chunks) == data and all(chunks)


def test_no_pattern_means_one_chunk_per_line():
    assert split_chunks(b"ab c\n\nd\nef") == [b"ab c\n", b"\n", b"d\n", b"ef"]
    with pytest.warns(UserWarning, match="after 1 of 2 merges"):  # "\n" never precedes "x"
        tok = BPETokenizer.train("x\nx\nx\nx\n", vocab_size=258)
    assert tok.merges == [(ord("x"), ord("\n"))]


def test_gpt2_pattern_splits_words_from_punctuation():
    chunks = split_chunks(b"Hello world, it's 2024!", "gpt2")
    assert chunks == [b"Hello", b" world", b",", b" it", b"'s", b" 2024", b"!"]
    chunks4 = split_chunks(b"year 2024", "gpt4")
    assert chunks4 == [b"year", b" ", b"202", b"4"]  # GPT-4 groups at most three digits


# -- BPE: the fast trainer learns exactly the naive trainer's merges --------------------------


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize(
    "text",
    [
        "low lower lowest newer wider " * 5,
        "aaaaaaa abab ababab aaaa\nxx\naaaaaaaaa\n",  # overlapping and adjacent occurrences
        "hello 我爱北京天安门 🙂🙂 world\n" * 3,
        CORPUS,
    ],
    ids=["words", "repeats", "unicode", "corpus"],
)
def test_fast_training_equals_naive_training(text, pattern):
    fast = quiet(BPETokenizer.train, text, 400, pattern)
    naive = quiet(naive_train, text, 400, pattern)
    assert len(fast.merges) > 10
    assert fast.merges == naive.merges
    assert fast.pattern == naive.pattern == pattern


def test_incremental_counts_stay_equal_to_a_recount():
    chunks = Counter(split_chunks(b"aaaa abab xyxyxy aaab baaa abba\n" * 2, "gpt2"))
    stats = _PairStats(chunks)
    for new_id in range(256, 270):
        pair = stats.best()
        if pair is None:
            break
        stats.merge(pair, new_id)
        recount = Counter()
        for ids, f in zip(stats.words, stats.freqs, strict=True):
            for p in pairwise(ids):
                recount[p] += f
        assert stats.counts == dict(recount)
        for p in recount:  # the index finds every chunk that holds a pair
            holders = {w for w, ids in enumerate(stats.words) if p in set(pairwise(ids))}
            assert holders <= stats.where[p]


def test_ties_go_to_the_smallest_pair():
    tok = BPETokenizer.train("ba dc", vocab_size=257, pattern="gpt2")
    # chunks "ba" and " dc": (b, a), (" ", d) and (d, c) occur once each; " " is byte 32
    assert tok.merges == [(ord(" "), ord("d"))]


def test_merge_replaces_left_to_right_without_overlap():
    assert merge([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge([1, 2, 1, 2, 3], (1, 2), 9) == [9, 9, 3]
    assert merge([], (1, 2), 9) == []


def test_training_stops_early_with_a_warning():
    with pytest.warns(UserWarning, match="no pair left to merge after 2 of 10 merges"):
        tok = BPETokenizer.train("abc", vocab_size=266)
    assert tok.vocab_size == 258
    with pytest.warns(UserWarning, match="no pair left"):
        assert naive_train("abc", vocab_size=266).merges == tok.merges


# -- BPE: bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("trainer", [BPETokenizer.train, naive_train])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vocab_size": 255}, r"vocab_size must be an integer >= 256.*got 255"),
        ({"vocab_size": 300.0}, r"vocab_size must be an integer >= 256.*got 300.0"),
        ({"vocab_size": True}, r"vocab_size must be an integer"),
        ({"pattern": "gpt3"}, r"pattern must be None, \"gpt2\" or \"gpt4\", got 'gpt3'"),
        ({"text": ""}, r"text must be a non-empty string"),
        ({"text": b"bytes"}, r"text must be a str, got bytes"),
    ],
)
def test_bad_training_arguments_are_named(trainer, kwargs, match):
    args = {"text": "some text", "vocab_size": 300, "pattern": None} | kwargs
    with pytest.raises(ValueError, match=match):
        trainer(**args)


def test_bad_ids_and_merges_are_named(bpe):
    with pytest.raises(ValueError, match=r"token id 300 \(ids\[1\]\) is outside .*\[0, 300\)"):
        bpe.decode([1, 300])
    with pytest.raises(ValueError, match=r"token id -1"):
        bpe.decode_bytes([-1])
    with pytest.raises(ValueError, match=r"ids\[0\] = 1.5 is not an integer token id"):
        bpe.decode([1.5])
    with pytest.raises(ValueError, match=r"data must be bytes, got str"):
        bpe.encode_bytes("text")
    with pytest.raises(ValueError, match=r"merges\[1\] must be a pair of existing token ids"):
        BPETokenizer([(1, 2), (1, 258)])


# -- save / load ---------------------------------------------------------------------------


def test_bpe_save_load_round_trip(bpe, tmp_path):
    path = bpe.save(tmp_path / "bpe.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["kind"] == "BPETokenizer" and record["pattern"] == bpe.pattern
    assert record["tokens"]["256"] == bpe.token_str(256)  # readable rendering of the merges
    loaded = BPETokenizer.load(path)
    assert loaded.merges == bpe.merges and loaded.pattern == bpe.pattern
    for text in SAMPLES.values():
        assert loaded.encode(text) == bpe.encode(text)


def test_load_checks_the_kind_of_file(bpe, tmp_path):
    path = bpe.save(tmp_path / "bpe.json")
    with pytest.raises(ValueError, match=r"holds a 'BPETokenizer', expected a 'WordTokenizer'"):
        WordTokenizer.load(path)
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(ValueError, match=r"is not a JSON tokenizer file"):
        BPETokenizer.load(tmp_path / "bad.json")


# -- BPE on Tiny Shakespeare ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shakespeare(data_mirror):
    from fmbook.data import shakespeare

    return shakespeare.split(shakespeare.load_text(mirror=data_mirror))


@pytest.mark.slow
@pytest.mark.parametrize("pattern", [None, "gpt2"])
def test_shakespeare_vocab_1000_compresses(shakespeare, pattern):
    # how fast this trains is measured by benchmarks/bpe.py, not asserted here
    train, val = shakespeare
    tok = BPETokenizer.train(train, vocab_size=1000, pattern=pattern)
    assert tok.vocab_size == 1000
    ids = tok.encode(val)  # held-out text
    assert tok.decode(ids) == val
    # measured: 0.430 (lines) and 0.445 (gpt2) tokens per byte on the validation split
    assert len(ids) < 0.5 * len(val.encode())


# -- words ---------------------------------------------------------------------------------


def test_word_tokenizer_vocabulary_and_unk():
    tok = WordTokenizer.train("the cat sat on the mat. the end", specials=["<pad>", "<bos>"])
    assert tok.itos[:4] == ["<unk>", "<pad>", "<bos>", "the"]  # then by frequency, then a-z
    assert tok.unk_id == UNK_ID == 0 and tok.stoi["<pad>"] == 1
    ids = tok.encode("the dog sat")
    assert ids == [tok.stoi["the"], UNK_ID, tok.stoi["sat"]]
    assert tok.decode(ids) == "the <unk> sat"


def test_word_tokenizer_max_size_and_min_freq():
    text = "a a a a b b b c c d"
    assert WordTokenizer.train(text, max_size=3).itos == ["<unk>", "a", "b"]
    assert WordTokenizer.train(text, min_freq=2).itos == ["<unk>", "a", "b", "c"]
    capped = WordTokenizer.train(text, max_size=3, specials=["<eos>"])
    assert capped.vocab_size == 3 and capped.itos == ["<unk>", "<eos>", "a"]


def test_word_tokenizer_is_lossy_about_whitespace_only():
    tok = WordTokenizer.train("Don't stop ( now ) , please !\n\nOK.")
    assert tok.split("Don't  stop(now),\tplease!") == [
        "Don't",
        "stop",
        "(",
        "now",
        ")",
        ",",
        "please",
        "!",
    ]
    assert tok.decode(tok.encode("Don't  stop(now),\tplease!")) == "Don't stop (now), please!"


def test_word_tokenizer_special_tokens_and_lowercase():
    tok = WordTokenizer.train("Hello World hello", specials=["<bos>", "<eos>"], lowercase=True)
    assert tok.itos == ["<unk>", "<bos>", "<eos>", "hello", "world"]
    ids = tok.encode("<bos> HELLO there <eos>")
    assert ids == [1, 3, UNK_ID, 2]
    assert tok.decode(ids, skip_specials=True) == "hello <unk>"
    assert tok.decode(tok.encode("<unk>")) == "<unk>"


def test_word_tokenizer_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"max_size must be None or an integer > 2"):
        WordTokenizer.train("a b", max_size=2, specials=["<pad>"])
    with pytest.raises(ValueError, match=r"min_freq must be an integer >= 1, got 0"):
        WordTokenizer.train("a b", min_freq=0)
    with pytest.raises(ValueError, match=r"specials\[0\] = '<unk>' is always present"):
        WordTokenizer.train("a b", specials=["<unk>"])
    with pytest.raises(ValueError, match=r"specials must be a sequence of strings"):
        WordTokenizer.train("a b", specials="<pad>")
    with pytest.raises(ValueError, match=r"text has no words"):
        WordTokenizer.train("   \n")
    tok = WordTokenizer.train("a b")
    with pytest.raises(ValueError, match=r"token id 3 \(ids\[0\]\) is outside .*\[0, 3\)"):
        tok.decode([3])


def test_word_tokenizer_save_load(tmp_path):
    tok = WordTokenizer.train("b a b c", specials=["<pad>"], lowercase=True)
    loaded = WordTokenizer.load(tok.save(tmp_path / "w.json"))
    assert loaded.itos == tok.itos and loaded.lowercase and loaded.specials == ["<pad>"]
    assert loaded.encode("B <pad> z") == tok.encode("B <pad> z") == [2, 1, 0]


# -- Hugging Face adapter ------------------------------------------------------------------


@pytest.fixture(scope="module", params=PATTERNS)
def hf(request):
    pytest.importorskip("tokenizers")
    return HFBPETokenizer.train(CORPUS, vocab_size=300, pattern=request.param)


@pytest.mark.parametrize("name", SAMPLES)
def test_hf_round_trips_any_text(hf, name):
    text = SAMPLES[name]
    ids = hf.encode(text)
    assert all(0 <= i < hf.vocab_size for i in ids) and hf.decode(ids) == text


def test_hf_is_comparable_with_the_from_scratch_bpe(hf):
    ours = BPETokenizer.train(CORPUS, vocab_size=300, pattern=hf.pattern)
    assert hf.vocab_size == ours.vocab_size == 300
    # same chunks and vocabulary size: the two compress the corpus about equally
    assert abs(len(hf.encode(CORPUS)) - len(ours.encode(CORPUS))) <= 0.05 * len(CORPUS)


def test_hf_save_load_and_errors(hf, tmp_path):
    loaded = HFBPETokenizer.load(hf.save(tmp_path / "hf.json"))
    assert loaded.pattern == hf.pattern and loaded.vocab_size == hf.vocab_size
    assert loaded.encode(CORPUS) == hf.encode(CORPUS)
    with pytest.raises(ValueError, match=r"vocab_size must be an integer >= 256"):
        HFBPETokenizer.train(CORPUS, vocab_size=100)
    with pytest.raises(ValueError, match=r"text has a lone surrogate"):
        hf.encode("\ud800")
    with pytest.raises(ValueError, match=r"token id 300"):
        hf.decode([300])


@pytest.mark.slow
def test_import_does_not_need_hf_tokenizers():
    code = "import sys, fmbook.tokenizers; print('tokenizers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- one interface ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (CharTokenizer, {}),
        (BPETokenizer, {"vocab_size": 280}),
        (WordTokenizer, {}),
        (HFBPETokenizer, {"vocab_size": 280}),
    ],
)
def test_every_tokenizer_has_the_same_interface(cls, kwargs, tmp_path):
    if cls is HFBPETokenizer:
        pytest.importorskip("tokenizers")
    tok = cls.train(CORPUS, **kwargs)
    assert isinstance(tok, Tokenizer) and len(tok) == tok.vocab_size
    ids = tok.encode("To be, or not to be")
    assert ids and all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == "To be, or not to be"
    loaded = cls.load(tok.save(tmp_path / "tok.json"))
    assert type(loaded) is cls and loaded.encode("To be, or not to be") == ids
