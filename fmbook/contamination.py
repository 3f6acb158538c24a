"""Test-set contamination at small scale: mix test items into a training text, and find
them again by n-gram overlap.

* :func:`contaminate` -- insert each test item ``repeats`` times at random paragraph
  boundaries of a training text (deterministic for a given ``seed``);
* :func:`word_ngrams` -- the set of word n-grams of a text (lower-cased words, punctuation
  dropped), the unit of the overlap analyses of GPT-3 and its successors;
* :func:`ngram_overlap` -- for each test item, the fraction of its word n-grams that occur
  anywhere in the training text (1.0 for an item copied verbatim).

>>> ngram_overlap(["to be or not to be"], "whether to be or not to be, that", n=3)
[1.0]
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

__all__ = ["contaminate", "ngram_overlap", "word_ngrams"]

_WORD = re.compile(r"[a-z0-9']+")


def _check_n(n) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")


def _check_items(items) -> list[str]:
    if isinstance(items, str):
        raise ValueError("test items must be a sequence of strings, got a single string")
    items = list(items)
    if not items:
        raise ValueError("need at least one test item")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"test item {i} must be a non-empty string, got {item!r}")
    return items


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The word n-grams of ``text``: lower-cased words, punctuation and line breaks dropped."""
    _check_n(n)
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def ngram_overlap(test_texts: Sequence[str], train_text: str, n: int) -> list[float]:
    """For each test item, the fraction of its word n-grams found in ``train_text``.

    An item shorter than ``n`` words has no n-gram; its overlap is 0.0.
    """
    items = _check_items(test_texts)
    seen = word_ngrams(train_text, n)
    overlaps = []
    for item in items:
        grams = word_ngrams(item, n)
        overlaps.append(len(grams & seen) / len(grams) if grams else 0.0)
    return overlaps


def contaminate(train_text: str, items: Sequence[str], repeats, seed: int = 0) -> str:
    """``train_text`` with ``repeats[i]`` copies of ``items[i]`` inserted, each as a
    paragraph of its own after a randomly chosen blank line (``"\\n\\n"``).

    ``repeats`` is one int for all items or one per item (0 leaves an item out).
    """
    items, repeats = _check_items(items), _check_repeats(repeats, len(items))
    breaks = [m.end() for m in re.finditer(r"\n\n", train_text)]  # paragraph starts
    if not breaks:
        raise ValueError("the training text has no blank line to insert items after")
    rng = random.Random(seed)
    inserts: dict[int, list[str]] = {}
    for item, r in zip(items, repeats, strict=True):
        for at in rng.choices(breaks, k=r):
            inserts.setdefault(at, []).append(item.strip("\n") + "\n\n")
    pieces, last = [], 0
    for at in sorted(inserts):
        pieces += [train_text[last:at], *inserts[at]]
        last = at
    return "".join(pieces) + train_text[last:]


def _check_repeats(repeats, size: int) -> list[int]:
    if isinstance(repeats, int) and not isinstance(repeats, bool):
        repeats = [repeats] * size
    repeats = list(repeats)
    if len(repeats) != size:
        raise ValueError(f"need one repeat count per item ({size}), got {len(repeats)}")
    for r in repeats:
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ValueError(f"repeat counts must be integers >= 0, got {r!r}")
    return repeats
