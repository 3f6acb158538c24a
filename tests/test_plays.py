import pytest
import torch

from fmbook.data import DataError, load_shakespeare
from fmbook.data.plays import (
    CLS,
    DEFAULT_PLAYS,
    PAD,
    PLAYS,
    PlaysCorpus,
    PlaysDataModule,
    dialogue_turns,
    encoder_tokenizer,
    pack_lines,
    play_spans,
)


@pytest.fixture(scope="module")
def text(data_mirror):
    return load_shakespeare(mirror=data_mirror)


@pytest.fixture(scope="module")
def corpus(text):
    return PlaysCorpus(text)


def test_plays_tile_the_text_in_order(text):
    spans = play_spans(text)
    assert list(spans) == [p.title for p in PLAYS]
    bounds = list(spans.values())
    assert bounds[0][0] == 0 and bounds[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    romeo, juliet = spans["Romeo and Juliet"], text.index("ROMEO:\n")
    assert romeo[0] < juliet < romeo[1]


def test_wrong_text_is_a_clear_error():
    with pytest.raises(DataError, match="occurs 0 times"):
        play_spans("not Shakespeare")


def test_pack_lines_keeps_whole_lines_and_offsets():
    body = "aaaa\nbb\ncccccc\n" + "d" * 25
    chunks = pack_lines(body, max_chars=10)
    assert [c for c, _ in chunks] == ["aaaa\nbb", "cccccc", "d" * 10, "d" * 10, "d" * 5]
    for chunk, at in chunks:
        assert body[at : at + len(chunk)] == chunk


def test_corpus_holds_out_the_end_of_every_play(corpus, text):
    held = corpus.held_out_text
    assert len(held) / len(text) == pytest.approx(0.15, abs=0.01)
    assert len(corpus.pretraining_text) + len(held) == len(text)
    for title, (start, end) in corpus.spans.items():
        cut = corpus.cuts[title]
        assert start < cut < end and text[cut - 2 : cut] == "\n\n"
    for p in corpus.test_passages[:200]:
        assert p.text.split("\n")[0] in held
        assert p.start >= corpus.cuts[p.play]
        assert text[p.start : p.start + len(p.text)] == p.text
    for p in corpus.train_passages[:200]:
        assert p.start < corpus.cuts[p.play]
    counts = corpus.counts()
    assert all(counts[t][0] >= 1050 for t in DEFAULT_PLAYS)


def test_datamodule_is_balanced_disjoint_and_nested(corpus, text):
    tok = encoder_tokenizer(text)
    assert tok.stoi[PAD] == 0 and tok.stoi[CLS] == 2
    small = PlaysDataModule(corpus, tok, per_class=10, val_per_class=20, cls=True, max_len=129)
    large = PlaysDataModule(corpus, tok, per_class=40, val_per_class=20)
    ids, labels = small.tensors["train"].tensors
    assert ids.shape == (40, 129) and torch.bincount(labels).tolist() == [10] * 4
    assert (ids[:, 0] == tok.stoi[CLS]).all()
    starts = {split: {p.start for p, _ in rows} for split, rows in large.passages.items()}
    assert not starts["train"] & starts["val"] and not starts["train"] & starts["test"]
    assert {p.start for p, _ in small.passages["train"]} <= starts["train"]
    assert len(large.passages["test"]) > 800
    x, y = next(iter(small.val_dataloader()))
    assert x.shape == (32, 129) and y.dtype == torch.long


def test_speaker_labels_and_bad_arguments(corpus, text):
    tok = encoder_tokenizer(text)
    dm = PlaysDataModule(
        corpus, tok, label="speaker", classes=("ROMEO", "JULIET"), per_class=50, max_len=64
    )
    assert {p.speaker for p, _ in dm.passages["train"]} == {"ROMEO", "JULIET"}
    ids = dm.tensors["train"].tensors[0]
    assert ids.shape == (100, 64) and (ids[:, 0] != tok.stoi[CLS]).all()
    with pytest.raises(ValueError, match="fewer than"):
        PlaysDataModule(corpus, tok, per_class=5000)
    with pytest.raises(ValueError, match="label must be"):
        PlaysDataModule(corpus, tok, label="act")
    with pytest.raises(ValueError, match="special characters"):
        encoder_tokenizer("a\x00b")


def test_dialogue_turns_end_prompts_at_a_heading_and_keep_parts_apart(corpus, text):
    train = dialogue_turns(corpus, "train", 48, 64)
    test = dialogue_turns(corpus, "test", 48, 64)
    assert len(train) > 1000 and len(test) > 100
    for turn in train[:50] + test[:50]:
        assert len(turn.prompt) == 48 and len(turn.reply) == 64
        assert turn.prompt.endswith(f"\n{turn.speaker}:\n")
        assert turn.prompt + turn.reply in text
    held_out = corpus.held_out_text
    assert all(t.prompt + t.reply in held_out for t in test[:50])
    assert not any(t.prompt + t.reply in held_out for t in train[:50])
    with pytest.raises(ValueError, match="part must be"):
        dialogue_turns(corpus, "val", 48, 64)
    with pytest.raises(ValueError, match="ints >= 1"):
        dialogue_turns(corpus, "train", 0, 64)
