"""Tiny Shakespeare, the character-level language-modelling benchmark of char-rnn.

>>> text = load_text()
>>> train, val = split(text)       # first 90 % / last 10 % of the characters
"""

from __future__ import annotations

import math

from .registry import fetch

NAME = "tinyshakespeare"


def load_text(**fetch_kwargs) -> str:
    """The whole text (about 1.1 million characters); ``fetch_kwargs`` go to :func:`fetch`."""
    return fetch(NAME, **fetch_kwargs).read_text(encoding="utf-8")


def split(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """Split ``text`` into (train, val): the first ``train_fraction`` of the characters and the rest.

    This is the split of the standard benchmark (char-rnn, nanoGPT): contiguous, not
    shuffled, so that validation text is never seen during training.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)):
        raise TypeError(f"train_fraction must be a number, got {train_fraction!r}")
    if not (math.isfinite(train_fraction) and 0 < train_fraction < 1):
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    n = int(len(text) * train_fraction)
    if n == 0 or n == len(text):
        raise ValueError(
            f"a text of {len(text)} characters is too short to split at {train_fraction}: "
            "one part would be empty"
        )
    return text[:n], text[n:]
