"""The one interface every trainable tokenizer of the book follows.

A tokenizer turns text into a list of integer ids and back::

    tok = SomeTokenizer.train(text, ...)   # learn a vocabulary from a corpus
    ids = tok.encode("some text")          # str -> list[int]
    tok.decode(ids)                        # list[int] -> str
    tok.vocab_size                         # ids lie in range(vocab_size)
    tok.save("tok.json"); SomeTokenizer.load("tok.json")

Input a tokenizer cannot represent is never dropped silently: it is either a
``ValueError`` that says what and where, or it maps to an explicit ``<unk>`` token
when the tokenizer declares one (see :class:`fmbook.tokenizers.WordTokenizer`).

Files are JSON, one object with a ``"kind"`` (the class name) and a ``"format_version"``
next to the tokenizer's own fields, so that a file says what it is and loading the
wrong kind of file is a clear error.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


class Tokenizer(ABC):
    """Base class: ``train``/``encode``/``decode``/``vocab_size`` plus JSON ``save``/``load``.

    Subclasses implement the four abstract members and :meth:`to_dict`/:meth:`from_dict`;
    ``save`` and ``load`` are shared.
    """

    @classmethod
    @abstractmethod
    def train(cls, text: str, *args: Any, **kwargs: Any) -> Tokenizer:
        """Learn a vocabulary from ``text`` and return a new tokenizer."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """The text of the token ids ``ids``."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of distinct ids; every id lies in ``range(vocab_size)``."""

    def __len__(self) -> int:
        return self.vocab_size

    # -- persistence ---------------------------------------------------------------------

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The tokenizer's state as JSON-compatible data (without ``kind``/``format_version``)."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on malformed data."""

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer to ``path`` as readable JSON (UTF-8) and return the path."""
        path = Path(path)
        record = {"kind": type(self).__name__, "format_version": FORMAT_VERSION}
        record.update(self.to_dict())
        path.write_text(_dumps(record), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer written by :meth:`save` of the same class."""
        path = Path(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"path {str(path)!r} is not a JSON tokenizer file: {err}") from None
        if not isinstance(record, dict):
            raise ValueError(f"path {str(path)!r} does not hold a JSON object")
        kind = record.pop("kind", None)
        if kind != cls.__name__:
            raise ValueError(f"path {str(path)!r} holds a {kind!r}, expected a {cls.__name__!r}")
        version = record.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"path {str(path)!r} has format_version {version!r}, expected {FORMAT_VERSION}"
            )
        return cls.from_dict(record)


def _dumps(record: dict[str, Any]) -> str:
    """JSON with one field per line and one list item (or dict entry) per line: easy to read
    and to diff, unlike one long line, and shorter than ``indent=`` (which splits pairs)."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    fields = []
    for key, value in record.items():
        if isinstance(value, list) and value:
            body = ",\n".join(f"  {dump(v)}" for v in value)
            fields.append(f" {dump(key)}: [\n{body}\n ]")
        elif isinstance(value, dict) and value:
            body = ",\n".join(f"  {dump(k)}: {dump(v)}" for k, v in value.items())
            fields.append(f" {dump(key)}: {{\n{body}\n }}")
        else:
            fields.append(f" {dump(key)}: {dump(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def check_ids(ids: Sequence[int], vocab_size: int) -> list[int]:
    """``ids`` as a list of Python ints, or a ``ValueError`` naming the first bad id."""
    out = []
    for pos, i in enumerate(ids):
        try:
            value = int(i)
        except (TypeError, ValueError):
            raise ValueError(f"ids[{pos}] = {i!r} is not an integer token id") from None
        if value != i or isinstance(i, (bool, float)):
            raise ValueError(f"ids[{pos}] = {i!r} is not an integer token id")
        if not 0 <= value < vocab_size:
            raise ValueError(
                f"token id {value} (ids[{pos}]) is outside the vocabulary [0, {vocab_size})"
            )
        out.append(value)
    return out
