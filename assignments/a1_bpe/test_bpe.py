"""Autograder of assignment 1: run with ``python -m pytest assignments/a1_bpe``.

Your tokenizer is compared with the book's (`fmbook.tokenizers.bpe`), which follows the
same rules; the grader never shows the book's merges, only where yours first differ.
"""

import time

import pytest

from fmbook.data.shakespeare import load_text
from fmbook.tokenizers.bpe import BPETokenizer

from .adapters import run_decode, run_encode, run_merge, run_train


@pytest.fixture(scope="module")
def shakespeare():
    return load_text()


def first_difference(yours, book):
    for k, (a, b) in enumerate(zip(yours, book, strict=False)):
        if a != b:
            return f"merge {k} differs (yours {a})"
    return f"you learned {len(yours)} merges, the book {len(book)}"


def test_merge_replaces_left_to_right_without_overlap():
    assert run_merge([1, 2, 3, 1, 2], (1, 2), 256) == [256, 3, 256]
    assert run_merge([1, 1, 1], (1, 1), 9) == [9, 1]
    assert run_merge([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert run_merge([5], (5, 5), 9) == [5]
    assert run_merge([], (5, 5), 9) == []


def test_a_tiny_text():
    merges = run_train("aaabdaaabac", 259)
    # "aa" (counted 4 times: overlapping), then "ab" ties with "aa"+"a" and is the smaller
    # pair, then "aa"+"ab"
    assert merges == [(97, 97), (97, 98), (256, 257)]
    assert run_encode("aaabdaaabac", merges) == [258, 100, 258, 97, 99]


def test_pairs_do_not_cross_lines():
    merges = run_train("ab\nab\nb\na", 300)  # lines "ab\n", "ab\n", "b\n", "a"
    assert merges[0] == (98, 10)  # "b\n", three times
    assert (10, 97) not in merges  # "\na" spans two lines


def test_training_stops_when_no_pair_is_left():
    assert run_train("ab", 300) == [(97, 98)]
    assert run_train("a\nb\n", 300) == [(97, 10), (98, 10)]


def test_merges_agree_with_the_book(shakespeare):
    text = shakespeare[:60_000]
    yours = run_train(text, 400)
    book = BPETokenizer.train(text, 400).merges
    assert yours == book, first_difference(yours, book)


def test_ties_go_to_the_smallest_pair():
    text = "xy yx\nyx xy\n" * 3 + "ba ab\n"
    book = BPETokenizer.train(text, 266).merges
    yours = run_train(text, 266)
    assert yours == book, first_difference(yours, book)


@pytest.mark.parametrize(
    "sample",
    ["To be, or not to be: that is the question.\n", "naïve café Ωμέγα 🙂 我\n", "", "\n\n x"],
)
def test_round_trip(shakespeare, sample):
    merges = run_train(shakespeare[:30_000], 330)
    assert run_decode(run_encode(sample, merges), merges) == sample


def test_encoding_agrees_with_the_book(shakespeare):
    merges = run_train(shakespeare[:60_000], 400)
    book = BPETokenizer(merges)
    held_out = shakespeare[-20_000:]
    ids = run_encode(held_out, merges)
    assert ids == book.encode(held_out)
    assert len(ids) < 0.7 * len(held_out.encode())  # BPE compresses: fewer tokens than bytes


def test_speed(shakespeare):
    """At most 5 times slower than the book's trainer (which updates pair counts locally)
    on 300 kB: recounting every pair after every merge is about 15 times slower."""
    text = shakespeare[:300_000]
    start = time.perf_counter()
    merges = run_train(text, 512)
    yours = time.perf_counter() - start
    start = time.perf_counter()
    BPETokenizer.train(text, 512)
    book = time.perf_counter() - start
    assert len(merges) == 256
    assert yours <= 5 * book + 1.0, f"your trainer took {yours:.1f} s, the book's {book:.1f} s"
