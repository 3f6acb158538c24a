"""Byte-level BPE from the Hugging Face ``tokenizers`` library, behind the book's interface.

:class:`HFBPETokenizer` trains and runs the library's Rust BPE with the same chunking as
:class:`fmbook.tokenizers.BPETokenizer` (a ``Split`` pre-tokenizer with the same regex:
lines, GPT-2 or GPT-4), followed by the ``ByteLevel`` pre-tokenizer (bytes shown as
printable characters, no regex of its own, no prefix space) and the ``ByteLevel``
decoder. So the two can be compared on equal terms: same corpus, same chunks, same
vocabulary size. The learned merges need not be identical (the library numbers its 256
byte tokens differently, which changes how ties are broken), but they are close.

``tokenizers`` is imported only when an HFBPETokenizer is made, so ``import
fmbook.tokenizers`` works without it.

>>> tok = HFBPETokenizer.train("low lower lowest " * 20, vocab_size=260)  # doctest: +SKIP
>>> tok.decode(tok.encode("lowest"))                                      # doctest: +SKIP
'lowest'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .base import Tokenizer, check_ids
from .bpe import PATTERNS, _check_pattern, _check_train_args, _text_bytes


def _hf():
    try:
        import tokenizers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "HFBPETokenizer needs the Hugging Face 'tokenizers' package: pip install tokenizers"
        ) from err
    return tokenizers


def _empty_tokenizer(pattern: str | None):
    """An untrained byte-level BPE pipeline that cuts text into fmbook's chunks."""
    tk = _hf()
    pre = tk.pre_tokenizers
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = pre.Sequence(
        [
            pre.Split(tk.Regex(PATTERNS[pattern]), behavior="isolated"),
            pre.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = tk.decoders.ByteLevel()
    return tok


class HFBPETokenizer(Tokenizer):
    """A trained ``tokenizers.Tokenizer`` (byte-level BPE) with the book's interface."""

    def __init__(self, hf_tokenizer: Any, pattern: str | None = None):
        self.pattern = _check_pattern(pattern)
        self.hf = hf_tokenizer

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str | None = None) -> HFBPETokenizer:
        """Train the library's BPE trainer on ``text`` to ``vocab_size`` tokens (>= 256).

        ``pattern`` as in :meth:`BPETokenizer.train`. The 256 byte tokens are always in
        the vocabulary (``initial_alphabet``), so any text can be encoded.
        """
        _check_train_args(text, vocab_size, pattern)
        tk = _hf()
        tok = _empty_tokenizer(pattern)
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        tok.train_from_iterator([text], trainer=trainer)
        return cls(tok, pattern)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (lone surrogates are a ValueError, as in BPETokenizer)."""
        _text_bytes(text)
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of many texts at once (the library runs them in parallel)."""
        for k, t in enumerate(texts):
            _text_bytes(t, name=f"texts[{k}]")
        return [e.ids for e in self.hf.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; invalid UTF-8 byte sequences become U+FFFD."""
        return self.hf.decode(check_ids(ids, self.vocab_size), skip_special_tokens=False)

    def to_dict(self) -> dict[str, Any]:
        """``pattern`` and the library's own JSON description of the tokenizer."""
        return {"pattern": self.pattern, "hf": json.loads(self.hf.to_str())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HFBPETokenizer:
        if "hf" not in data:
            raise ValueError("an HFBPETokenizer file needs the field 'hf'")
        hf = _hf().Tokenizer.from_str(json.dumps(data["hf"]))
        return cls(hf, data.get("pattern"))

    def __repr__(self) -> str:
        return f"HFBPETokenizer(vocab_size={self.vocab_size}, pattern={self.pattern!r})"
