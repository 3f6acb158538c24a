import pytest

from fmbook.tokenizers import CharTokenizer, Tokenizer


def test_round_trip_and_sorted_vocab():
    text = "To be, or not to be: that is the question.\n"
    tok = CharTokenizer.train(text)
    assert tok.itos == sorted(set(text))
    ids = tok.encode(text)
    assert len(ids) == len(text) and tok.decode(ids) == text
    assert tok.vocab_size == len(set(text)) == len(tok)


def test_unicode_round_trip():
    tok = CharTokenizer.train("我爱北京天安门 🙂")
    assert tok.decode(tok.encode("北京🙂")) == "北京🙂"


def test_unknown_character_is_a_clear_error():
    tok = CharTokenizer.train("abc")
    with pytest.raises(
        ValueError, match=r"character 'z' at position 2 is not in the vocabulary of 3"
    ):
        tok.encode("abz")


def test_decode_rejects_ids_outside_vocab():
    tok = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match=r"token id 3 is outside the vocabulary \[0, 3\)"):
        tok.decode([0, 3])


@pytest.mark.parametrize("chars", [[], ["ab"], ["a", "a"]])
def test_bad_vocabularies(chars):
    with pytest.raises(ValueError):
        CharTokenizer(chars)


def test_is_a_tokenizer_and_saves_and_loads(tmp_path):
    tok = CharTokenizer.train("To be, or not to be 🙂\n")
    assert isinstance(tok, Tokenizer)
    loaded = CharTokenizer.load(tok.save(tmp_path / "chars.json"))
    assert type(loaded) is CharTokenizer and loaded.itos == tok.itos
    assert loaded.encode("be 🙂\n") == tok.encode("be 🙂\n")
    (tmp_path / "bad.json").write_text('{"kind": "CharTokenizer", "format_version": 1}')
    with pytest.raises(ValueError, match="needs the field 'chars'"):
        CharTokenizer.load(tmp_path / "bad.json")
