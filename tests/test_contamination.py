"""fmbook.contamination: n-gram overlap and deterministic mixing of test items."""

import pytest

from fmbook.contamination import contaminate, ngram_overlap, word_ngrams

TRAIN = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
)
ITEM = "Now is the winter of our discontent\nMade glorious summer by this sun of York"


def test_word_ngrams_ignore_case_punctuation_and_line_breaks():
    assert word_ngrams("To be, or NOT\nto be!", 2) == {
        ("to", "be"),
        ("be", "or"),
        ("or", "not"),
        ("not", "to"),
    }
    assert word_ngrams("one two", 3) == set()


def test_copied_item_overlaps_fully_and_disjoint_item_not_at_all():
    train = TRAIN + ITEM + "\n"
    assert ngram_overlap([ITEM, "Wholly unrelated words appear in this line"], train, 4) == [
        1.0,
        0.0,
    ]


def test_partial_overlap_is_the_fraction_of_shared_ngrams():
    # 5 words -> 4 bigrams; "hear me" and "me speak" occur in TRAIN
    assert ngram_overlap(["hear me speak loudly now"], TRAIN, 2) == [0.5]


def test_short_item_has_no_ngram_and_zero_overlap():
    assert ngram_overlap(["Speak, speak."], TRAIN, 5) == [0.0]


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_bad_n_is_refused(n):
    with pytest.raises(ValueError, match="n must be"):
        ngram_overlap([ITEM], TRAIN, n)


@pytest.mark.parametrize("items", [[], ["ok", ""], ["ok", "  \n"], "a string", [3]])
def test_bad_items_are_refused(items):
    with pytest.raises(ValueError):
        ngram_overlap(items, TRAIN, 3)


def test_contaminate_inserts_each_item_repeats_times_and_keeps_the_text():
    items = ["alpha beta gamma", "delta epsilon zeta", "eta theta iota"]
    mixed = contaminate(TRAIN, items, [0, 1, 4], seed=3)
    assert [mixed.count(item) for item in items] == [0, 1, 4]
    for paragraph in TRAIN.split("\n\n"):
        assert paragraph in mixed
    assert len(mixed) == len(TRAIN) + sum(
        r * (len(i) + 2) for i, r in zip(items, [0, 1, 4], strict=True)
    )


def test_contaminate_is_deterministic_for_a_seed():
    items = ["alpha beta gamma", "delta epsilon zeta"]
    assert contaminate(TRAIN, items, 3, seed=1) == contaminate(TRAIN, items, 3, seed=1)
    differs = {contaminate(TRAIN, items, 3, seed=s) for s in range(5)}
    assert len(differs) > 1
    assert contaminate(TRAIN, items, 0) == TRAIN


def test_contaminate_refuses_bad_repeats_and_texts_without_breaks():
    with pytest.raises(ValueError, match="one repeat count per item"):
        contaminate(TRAIN, ["a b", "c d"], [1])
    with pytest.raises(ValueError, match="integers >= 0"):
        contaminate(TRAIN, ["a b"], [-1])
    with pytest.raises(ValueError, match="no blank line"):
        contaminate("one paragraph only", ["a b"], 1)
