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

from ..generation import beam_search, greedy_search
from ..nn import (
    KVCache,
    LayerNorm,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from ..nn.attention import describe as _describe
from ..nn.attention import resolve_pad_mask
from .config_checks import (
    require_divisible,
    require_dropout,
    require_optional_id,
    require_positive_ints,
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
        require_positive_ints(
            self,
            "src_vocab_size",
            "tgt_vocab_size",
            "max_len",
            "n_encoder_layers",
            "n_decoder_layers",
            "n_head",
            "d_model",
        )
        require_divisible(self, "d_model", "n_head")
        require_dropout(self)
        if self.positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be 'sinusoidal' or 'learned', got {self.positions!r}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(
                "share_embeddings needs src_vocab_size == tgt_vocab_size, got "
                f"{self.src_vocab_size} and {self.tgt_vocab_size}"
            )
        require_optional_id(self, "pad_id", "src_vocab_size")


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

    # ------------------------------------------------------------------------ checks

    def _check_ids(self, ids, name: str, vocab_size: int, past: int = 0) -> None:
        if not torch.is_tensor(ids) or ids.dtype != torch.long or ids.dim() != 2:
            raise ValueError(
                f"{name} must be a (B, T) tensor of dtype torch.long, got {_describe(ids)}"
            )
        if past + ids.shape[1] > self.config.max_len:
            raise ValueError(
                f"{name} reaches position {past + ids.shape[1]}, beyond max_len={self.config.max_len}"
            )
        if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"{name} holds token ids outside [0, vocab_size={vocab_size})")

    def _src_mask(self, src: torch.Tensor, src_pad_mask) -> torch.Tensor | None:
        return resolve_pad_mask(
            src, src_pad_mask, self.config.pad_id, name="src_pad_mask", of="src"
        )

    # ------------------------------------------------------------------------ passes

    def _embed(self, ids: torch.Tensor, emb: nn.Embedding, past: int = 0) -> torch.Tensor:
        pos = torch.arange(past, past + ids.shape[1], device=ids.device)  # (T,)
        x = emb(ids) * math.sqrt(self.config.d_model) + self.pos(pos)  # (B, T, C)
        return self.drop(x)

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) -> memory (B, S, C). ``src_pad_mask`` (B, S): True for real tokens
        (default ``src != pad_id``); padded positions are never attended to."""
        self._check_ids(src, "src", self.config.src_vocab_size)
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
        """tgt_in (B, T), memory (B, S, C) -> logits (B, T, V).

        ``memory_pad_mask`` (B, S): True for real source tokens (None: attend to all).
        ``cache`` (from :meth:`new_cache`): the decoder self-attention keys and values of
        the earlier target positions, extended in place; tgt_in then holds the positions
        ``len(cache[0])`` onwards, and the result equals decoding the whole prefix at once.
        """
        past = self._check_cache(cache)
        self._check_ids(tgt_in, "tgt_in", self.config.tgt_vocab_size, past)
        if not torch.is_tensor(memory) or memory.dim() != 3 or memory.shape[0] != tgt_in.shape[0]:
            raise ValueError(
                f"memory must be a (B={tgt_in.shape[0]}, S, d_model) tensor, got {_describe(memory)}"
            )
        if memory_pad_mask is not None and (
            not torch.is_tensor(memory_pad_mask)
            or memory_pad_mask.dtype != torch.bool
            or memory_pad_mask.shape != memory.shape[:2]
        ):
            raise ValueError(
                f"memory_pad_mask must be a boolean (B, S) = {tuple(memory.shape[:2])} tensor, "
                f"got {_describe(memory_pad_mask)}"
            )
        x = self._embed(tgt_in, self.tgt_emb, past)
        for i, block in enumerate(self.decoder):
            x = block(
                x,
                memory=memory,
                memory_mask=memory_pad_mask,
                causal=True,
                cache=None if cache is None else cache[i],
            )
        return F.linear(self.ln_dec(x), self.tgt_emb.weight)  # (B, T, V), tied output

    def _check_cache(self, cache) -> int:
        if cache is None:
            return 0
        if (
            not isinstance(cache, list)
            or len(cache) != len(self.decoder)
            or not all(isinstance(c, KVCache) for c in cache)
        ):
            raise ValueError(
                f"cache must be a list of {len(self.decoder)} KVCache (use new_cache()), "
                f"got {type(cache).__name__}"
            )
        return len(cache[0])

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

        Greedy with ``beam_size=1``, beam search otherwise (GNMT ``length_penalty``, see
        :func:`fmbook.generation.beam_search`). The output excludes BOS, includes the EOS
        of each row that produced one, and is padded with ``eos_id`` after it.
        """
        tgt_vocab = self.config.tgt_vocab_size
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
            if not isinstance(value, int) or not 0 <= value < tgt_vocab:
                raise ValueError(
                    f"{name} must be an id in [0, tgt_vocab_size={tgt_vocab}), got {value!r}"
                )
        if not isinstance(max_len, int) or not 1 <= max_len <= self.config.max_len:
            raise ValueError(
                f"max_len must be an int in [1, {self.config.max_len}], got {max_len!r}"
            )
        if not isinstance(beam_size, int) or beam_size < 1:
            raise ValueError(f"beam_size must be an int >= 1, got {beam_size!r}")
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
                if c.k is not None:
                    c.k, c.v = c.k[index], c.v[index]

        return step, reorder
