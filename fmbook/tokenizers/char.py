"""The simplest tokenizer: one token per Unicode character."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .base import Tokenizer


class CharTokenizer(Tokenizer):
    """Maps each character of a fixed vocabulary to an id (sorted, so ids are stable).

    >>> tok = CharTokenizer.train("hello")
    >>> tok.decode(tok.encode("hole"))
    'hole'
    """

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        if not chars:
            raise ValueError("chars must not be empty: a tokenizer needs a vocabulary")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("chars must be single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("chars must not repeat")
        self.itos: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The vocabulary is the sorted set of characters in ``text``."""
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty string")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError as err:
            pos = next(i for i, c in enumerate(text) if c not in self.stoi)
            raise ValueError(
                f"character {err.args[0]!r} at position {pos} is not in the vocabulary "
                f"of {self.vocab_size} characters"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary [0, {self.vocab_size})")
            out.append(self.itos[i])
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"chars": self.itos}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        if "chars" not in data:
            raise ValueError("a CharTokenizer file needs the field 'chars'")
        return cls(data["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
