"""Tokenizers: text <-> integer ids, all with one interface (``encode``/``decode``)."""

from .char import CharTokenizer

__all__ = ["CharTokenizer"]
