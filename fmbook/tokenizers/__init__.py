"""Tokenizers: text <-> integer ids, all with one interface (``encode``/``decode``).

* :class:`CharTokenizer` -- one token per character.
* :class:`WordTokenizer` -- one token per word or punctuation mark, with ``<unk>``.
* :class:`BPETokenizer` -- byte-level BPE written from scratch (and :func:`naive_train`).
* :class:`HFBPETokenizer` -- byte-level BPE of the Hugging Face ``tokenizers`` library
  (imported lazily: ``import fmbook.tokenizers`` does not need that package).
"""

from .base import Tokenizer
from .bpe import BPETokenizer, naive_train
from .char import CharTokenizer
from .hf import HFBPETokenizer
from .word import WordTokenizer

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "HFBPETokenizer",
    "Tokenizer",
    "WordTokenizer",
    "naive_train",
]
