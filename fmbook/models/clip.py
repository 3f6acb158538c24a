"""A two-tower model in the manner of CLIP (Radford et al. 2021): an audio encoder and a
text encoder map their inputs into one embedding space, trained with the symmetric InfoNCE
loss of :mod:`fmbook.nn.contrastive`.

* :class:`CharTextEncoder`: characters -> embedding, a bidirectional GRU (run on packed
  sequences, so padding never enters it) mean-pooled over the real characters, then a
  linear projection.
* :class:`TwoTower`: any two encoders with the same output width, and a learnable
  temperature stored as its logarithm.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .. import _checks
from ..nn.contrastive import info_nce
from ..nn.pooling import mean_pool


def _check_text(ids, vocab_size: int) -> None:
    _checks.ids(ids, vocab_size)
    if ids.shape[1] == 0 or bool((ids[:, 0] == 0).any()):
        raise ValueError("every text needs at least one character (padding, id 0, goes at the end)")


class CharTextEncoder(nn.Module):
    """``ids (B, T)`` (0 = padding) -> text embeddings ``(B, d_out)``."""

    def __init__(self, vocab_size: int, d_out: int = 64, d_char: int = 32, hidden: int = 64):
        super().__init__()
        _checks.positive_ints(vocab_size=vocab_size, d_out=d_out, d_char=d_char, hidden=hidden)
        self.vocab_size = vocab_size
        # <show text>
        self.embed = nn.Embedding(vocab_size, d_char, padding_idx=0)
        self.rnn = nn.GRU(d_char, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, d_out)

    def forward(self, ids):
        _check_text(ids, self.vocab_size)
        keep = ids != 0  # (B, T): the real characters
        # packed: the backward direction starts at each text's last character, not at
        # the padding (else an embedding would depend on the longest text of its batch)
        packed = pack_padded_sequence(
            self.embed(ids), keep.sum(1).cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = pad_packed_sequence(self.rnn(packed)[0], True, total_length=ids.shape[1])
        return self.proj(mean_pool(h, keep))  # (B, 2 hidden) -> (B, d_out)
        # </show text>


class TwoTower(nn.Module):
    """``(audio (B, ...), text_ids (B, T))`` -> ``(audio_emb (B, D), text_emb (B, D),
    loss)``: unit-length embeddings from the two encoders, and their symmetric InfoNCE loss
    at the learnable :attr:`temperature`."""

    def __init__(self, audio_encoder: nn.Module, text_encoder: nn.Module, temperature=0.07):
        super().__init__()
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        # <show two_tower>
        self.audio_encoder, self.text_encoder = audio_encoder, text_encoder
        # the log of the temperature is learned: exp() keeps the temperature positive
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp().clamp(min=0.01)  # CLIP: 1 / T <= 100

    def encode_audio(self, audio):
        return nn.functional.normalize(self.audio_encoder(audio), dim=-1)  # (B, D)

    def encode_text(self, ids):
        return nn.functional.normalize(self.text_encoder(ids), dim=-1)  # (B, D)

    def forward(self, audio, text_ids):
        a, t = self.encode_audio(audio), self.encode_text(text_ids)
        return a, t, info_nce(a, t, self.temperature)
        # </show two_tower>


class AudioEmbedder(nn.Module):
    """A classifier-shaped audio model ``x -> (outputs, loss)`` (such as
    :class:`~fmbook.models.spoken_digits.DigitCNN` built with ``n_classes=D``) used as an
    encoder ``x -> (B, D)``: its last layer becomes the projection into the shared space."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[0]


__all__ = ["AudioEmbedder", "CharTextEncoder", "TwoTower"]
