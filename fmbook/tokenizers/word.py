"""Word-level tokenization: one token per word or punctuation mark.

The text is split with a simple regex (runs of letters/digits, keeping inner apostrophes
as in ``don't``, and single punctuation characters); the vocabulary is the most frequent
words. Everything else maps to the explicit unknown token ``<unk>``, which always has
id :data:`UNK_ID` = 0; optional special tokens (``<pad>``, ``<bos>``, ``<eos>``, ...)
follow with ids 1, 2, ... in the order given, then the words by decreasing frequency
(ties in alphabetical order).

Word tokenization is **lossy**: whitespace is not kept, and rare words become ``<unk>``.
:meth:`WordTokenizer.decode` joins tokens with single spaces, without a space before
closing punctuation (``. , ; : ! ? ) ] }``) or after opening brackets (``( [ {``), so
``decode(encode(text))`` is a normalised version of ``text``, not ``text`` itself.

>>> tok = WordTokenizer.train("the cat sat on the mat.", specials=("<pad>",))
>>> tok.decode(tok.encode("the dog sat."))
'the <unk> sat.'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import regex

from .base import Tokenizer, check_ids

UNK = "<unk>"
#: The id of ``<unk>`` in every WordTokenizer.
UNK_ID = 0
#: A word: letters/digits/underscore, with inner apostrophes (``don't``, ``o'er``).
WORD_PATTERN = r"\w+(?:'\w+)*|[^\w\s]"
_NO_SPACE_BEFORE = set(".,;:!?)]}")
_NO_SPACE_AFTER = set("([{")


class WordTokenizer(Tokenizer):
    """Maps words to ids: ``itos[0] = "<unk>"``, then the special tokens, then the words.

    ``lowercase=True`` lowercases text before splitting (training and encoding). Special
    tokens written literally in the text (``"<eos>"``) are recognised as those tokens.
    """

    def __init__(self, words: Sequence[str], specials: Sequence[str] = (), lowercase: bool = False):
        specials = _check_specials(specials)
        words = list(words)
        reserved = {UNK, *specials}
        for k, w in enumerate(words):
            if not isinstance(w, str) or not w:
                raise ValueError(f"words[{k}] must be a non-empty string, got {w!r}")
            if w in reserved:
                raise ValueError(f"words[{k}] = {w!r} is a special token")
        if len(set(words)) != len(words):
            raise ValueError("words must not repeat")
        if not isinstance(lowercase, bool):
            raise ValueError(f"lowercase must be True or False, got {lowercase!r}")
        self.specials = specials
        self.lowercase = lowercase
        self.itos: list[str] = [UNK, *specials, *words]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        alternatives = [regex.escape(s) for s in sorted(reserved, key=len, reverse=True)]
        self._split = regex.compile("|".join([*alternatives, WORD_PATTERN]))

    @classmethod
    def train(
        cls,
        text: str,
        max_size: int | None = None,
        min_freq: int = 1,
        specials: Sequence[str] = (),
        lowercase: bool = False,
    ) -> WordTokenizer:
        """Keep the words of ``text`` seen at least ``min_freq`` times, most frequent first.

        ``max_size`` caps the whole vocabulary, ``<unk>`` and ``specials`` included.
        """
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty string")
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        specials = _check_specials(specials)
        n_reserved = 1 + len(specials)
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= n_reserved
        ):
            raise ValueError(
                f"max_size must be None or an integer > {n_reserved} (<unk> and "
                f"{len(specials)} special tokens), got {max_size!r}"
            )
        probe = cls([], specials, lowercase)
        counts = Counter(t for t in probe.split(text) if t not in probe.stoi)
        if not counts:
            raise ValueError("text has no words")
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [w for w, c in ranked if c >= min_freq]
        if max_size is not None:
            words = words[: max_size - n_reserved]
        return cls(words, specials, lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def unk_id(self) -> int:
        return UNK_ID

    def split(self, text: str) -> list[str]:
        """The word, punctuation and special-token strings of ``text`` (no whitespace)."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        if self.lowercase:
            text = text.lower()
        return self._split.findall(text)

    def encode(self, text: str) -> list[int]:
        """Ids of the words of ``text``; words outside the vocabulary become ``UNK_ID``."""
        stoi = self.stoi
        return [stoi.get(t, UNK_ID) for t in self.split(text)]

    def decode(self, ids: Sequence[int], skip_specials: bool = False) -> str:
        """Words joined by spaces (none before closing or after opening punctuation).

        ``skip_specials=True`` leaves out the special tokens (not ``<unk>``).
        """
        tokens = [self.itos[i] for i in check_ids(ids, self.vocab_size)]
        if skip_specials:
            tokens = [t for t in tokens if t not in self.specials]
        out: list[str] = []
        for k, t in enumerate(tokens):
            if k and t not in _NO_SPACE_BEFORE and tokens[k - 1] not in _NO_SPACE_AFTER:
                out.append(" ")
            out.append(t)
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        n = 1 + len(self.specials)
        return {"lowercase": self.lowercase, "specials": self.specials, "words": self.itos[n:]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordTokenizer:
        try:
            return cls(data["words"], data["specials"], data["lowercase"])
        except KeyError as err:
            raise ValueError(f"a WordTokenizer file needs the field {err.args[0]!r}") from None

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size}, specials={self.specials!r})"


def _check_specials(specials: Sequence[str]) -> list[str]:
    if isinstance(specials, str):
        raise ValueError(f"specials must be a sequence of strings, got the string {specials!r}")
    specials = list(specials)
    for k, s in enumerate(specials):
        if not isinstance(s, str) or not s or any(c.isspace() for c in s):
            raise ValueError(f"specials[{k}] must be a non-empty string without spaces, got {s!r}")
        if s == UNK:
            raise ValueError(f"specials[{k}] = {UNK!r} is always present with id {UNK_ID}")
    if len(set(specials)) != len(specials):
        raise ValueError("specials must not repeat")
    return specials
