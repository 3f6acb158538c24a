"""The encoder-decoder Transformer of Vaswani et al. (2017), for translation.

Shapes in comments: B batch, S source length, T target length, C channels (d_model),
V target vocabulary, K beams.

The encoder reads the whole source with bidirectional self-attention (padded source
positions are masked out as keys); the decoder reads the target so far with causal
self-attention and the encoder's output (the *memory*) with cross-attention, and predicts
the next target token. Choices, and where they differ from the paper:

* **blocks**: pre-norm :class:`~fmbook.nn.TransformerBlock` s with a final LayerNorm after
  each stack (the paper is post-norm; pre-norm trains without careful warm-up, Xiong et
  al., 2020). Dropout on embeddings, attention weights and residual branches.
* **positions**: ``positions="sinusoidal"`` (the paper, default) or ``"learned"``.
* **embeddings**: token embeddings are scaled by ``sqrt(d_model)`` and initialised with
  standard deviation ``d_model ** -0.5``, as in the paper. The output layer always reuses
  the target embedding matrix (tied, as in the paper); ``share_embeddings=True`` also uses
  one matrix for source and target (the paper's shared BPE vocabulary; needs equal
  vocabulary sizes), otherwise source and target have their own.
* **decoding**: :meth:`Transformer.translate` runs :func:`fmbook.generation.greedy_search`
  or :func:`fmbook.generation.beam_search` with a key/value cache for the decoder
  self-attention, so each step feeds one new token. (The cross-attention keys and values
  of the memory are recomputed at every step; caching them too is a further speed-up.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks
from ..generation import beam_search, greedy_search
from ..nn import (
    KVCache,
    LayerNorm,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)


@dataclass
class Seq2SeqConfig:
    """Sizes of a :class:`Transformer`. ``pad_id`` marks padded source tokens when no
    ``src_pad_mask`` is given (None: the source is never padded)."""

    src_vocab_size: int
    tgt_vocab_size: int
    max_len: int = 256
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.1
    positions: str = "sinusoidal"
    share_embeddings: bool = False
    pad_id: int | None = 0
    bias: bool = True

    def __post_init__(self):
        _checks.transformer_config(
            self,
            "src_vocab_size",
            "tgt_vocab_size",
            "max_len",
            "n_encoder_layers",
            "n_decoder_layers",
            "n_head",
            "d_model",
        )
        _checks.one_of("positions", self.positions, ("sinusoidal", "learned"))
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(
                "share_embeddings needs src_vocab_size == tgt_vocab_size, got "
                f"{self.src_vocab_size} and {self.tgt_vocab_size}"
            )
        _checks.optional_id("pad_id", self.pad_id, self.src_vocab_size, "src_vocab_size")


class Transformer(nn.Module):
    """Encoder-decoder Transformer: ``forward(src (B, S), tgt_in (B, T)) -> logits (B, T, V)``.

    ``tgt_in`` is the target shifted right (starting with BOS); the logits at position t
    predict target token t + 1 (teacher forcing). See the module docstring for the design.
    """

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.config = cfg
        C = cfg.d_model
        self.tgt_emb = nn.Embedding(cfg.tgt_vocab_size, C)
        self.src_emb = self.tgt_emb if cfg.share_embeddings else nn.Embedding(cfg.src_vocab_size, C)
        if cfg.positions == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(C, cfg.max_len)
        else:
            self.pos = LearnedPositionalEmbedding(cfg.max_len, C)
        self.drop = nn.Dropout(cfg.dropout)
        block = dict(d_model=C, n_head=cfg.n_head, dropout=cfg.dropout, bias=cfg.bias)
        self.encoder = nn.ModuleList(TransformerBlock(**block) for _ in range(cfg.n_encoder_layers))
        self.decoder = nn.ModuleList(
            TransformerBlock(**block, cross_attention=True) for _ in range(cfg.n_decoder_layers)
        )
        self.ln_enc = LayerNorm(C, bias=cfg.bias)
        self.ln_dec = LayerNorm(C, bias=cfg.bias)
        self._init_weights()

    def _init_weights(self) -> None:
        """Token embeddings N(0, 1/d_model) (unit variance after the sqrt(d_model) scale),
        learned positions N(0, 1/2) (the variance of the sinusoidal table), Glorot-uniform
        matrices and zero biases, as in the reference implementation (tensor2tensor). The
        small N(0, 0.02) of GPT-2 makes attention almost uniform next to unit-scale
        embeddings, and the model then learns slowly."""
        for name, p in self.named_parameters():
            if name.endswith("emb.weight"):
                nn.init.normal_(p, std=self.config.d_model**-0.5)
            elif name == "pos.weight":
                nn.init.normal_(p, std=0.5**0.5)
            elif p.dim() == 2:
                nn.init.xavier_uniform_(p)
            elif name.endswith("bias") and not name.split(".")[-2].startswith("ln"):
                nn.init.zeros_(p)

    def _src_mask(self, src: torch.Tensor, src_pad_mask) -> torch.Tensor | None:
        """src_pad_mask (checked), else ``src != pad_id``, else None."""
        return _checks.pad_mask(src, src_pad_mask, self.config.pad_id, "src_pad_mask", "src")

    # ------------------------------------------------------------------------ passes

    def _embed(self, ids: torch.Tensor, emb: nn.Embedding, past: int = 0) -> torch.Tensor:
        pos = torch.arange(past, past + ids.shape[1], device=ids.device)  # (T,)
        x = emb(ids) * math.sqrt(self.config.d_model) + self.pos(pos)  # (B, T, C)
        return self.drop(x)

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) -> memory (B, S, C). ``src_pad_mask`` (B, S): True for real tokens
        (default ``src != pad_id``); padded positions are never attended to."""
        _checks.ids(src, self.config.src_vocab_size, "src", self.config.max_len)
        mask = self._src_mask(src, src_pad_mask)
        x = self._embed(src, self.src_emb)
        for block in self.encoder:
            x = block(x, mask=mask)
        return self.ln_enc(x)

    def new_cache(self) -> list[KVCache]:
        """An empty key/value cache for :meth:`decode`: one :class:`KVCache` per layer."""
        return [KVCache() for _ in self.decoder]

    def decode(
        self,
        tgt_in: torch.Tensor,
        memory: torch.Tensor,
        memory_pad_mask: torch.Tensor | None = None,
        cache: list[KVCache] | None = None,
    ) -> torch.Tensor:
        """tgt_in (B, T), memory (B, S, C) -> logits (B, T, V). ``memory_pad_mask`` (B, S):
        True for real source tokens. ``cache`` (:meth:`new_cache`): the earlier positions'
        keys and values, extended in place; tgt_in then holds the positions after them."""
        past = _checks.decode_call(self, tgt_in, memory, memory_pad_mask, cache)
        x = self._embed(tgt_in, self.tgt_emb, past)
        for i, block in enumerate(self.decoder):
            layer_cache = None if cache is None else cache[i]
            x = block(x, memory, memory_mask=memory_pad_mask, causal=True, cache=layer_cache)
        return F.linear(self.ln_dec(x), self.tgt_emb.weight)  # (B, T, V), tied output

    def forward(
        self,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        src_pad_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """src (B, S), tgt_in (B, T) -> logits (B, T, V) (teacher forcing)."""
        src_pad_mask = self._src_mask(src, src_pad_mask) if torch.is_tensor(src) else None
        memory = self.encode(src, src_pad_mask)
        return self.decode(tgt_in, memory, src_pad_mask)

    # ------------------------------------------------------------------------ decoding

    @torch.no_grad()
    def translate(
        self,
        src: torch.Tensor,
        max_len: int,
        bos_id: int,
        eos_id: int,
        beam_size: int = 1,
        length_penalty: float = 0.6,
        src_pad_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode a translation of each source row: src (B, S) -> ids (B, L), L <= max_len.

        Greedy with ``beam_size=1``, beam search otherwise (GNMT ``length_penalty``). The
        output excludes BOS, includes each row's EOS, and is padded with ``eos_id`` after it.
        """
        _checks.decoding(
            max_len, bos_id, eos_id, self.config.tgt_vocab_size, beam_size, self.config.max_len
        )
        was_training = self.training
        self.eval()
        try:
            mask = self._src_mask(src, src_pad_mask) if torch.is_tensor(src) else None
            memory = self.encode(src, mask)  # (B, S, C), once for all steps
            start = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
            if beam_size > 1:  # row b * K + k of the search is beam k of source b
                memory = memory.repeat_interleave(beam_size, dim=0)  # (B*K, S, C)
                mask = None if mask is None else mask.repeat_interleave(beam_size, dim=0)
            step, reorder = self._cached_step(memory, mask)
            if beam_size == 1:
                out = greedy_search(step, start, max_len, eos_id)
            else:
                out, _ = beam_search(
                    step, start, beam_size, max_len, eos_id, length_penalty, reorder=reorder
                )
        finally:
            self.train(was_training)
        return out[:, 1:]

    def _cached_step(self, memory, mask):
        """A step function for fmbook.generation that feeds only the tokens not yet in the
        cache, and the matching reorder hook (beams move between rows)."""
        cache = self.new_cache()

        def step(prefixes: torch.Tensor) -> torch.Tensor:
            logits = self.decode(prefixes[:, len(cache[0]) :], memory, mask, cache=cache)
            return logits[:, -1].log_softmax(dim=-1)  # (N, V)

        def reorder(index: torch.Tensor) -> None:
            for c in cache:
                c.reorder(index)

        return step, reorder
