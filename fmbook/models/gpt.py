"""A decoder-only Transformer language model (GPT), in one readable module.

Shapes in comments: B batch, T time (tokens), C channels (d_model), H heads, V vocab.
The design follows GPT-2 (Radford et al., 2019): learned positions, pre-norm blocks
(:class:`fmbook.nn.TransformerBlock` with causal self-attention, LayerNorm and a GELU MLP),
tied input/output embeddings, and residual projections initialised with a standard
deviation scaled by 1/sqrt(2 * n_layer). Generation keeps a key/value cache per block, so
each new token costs one position's worth of compute instead of the whole context's, with
exactly the logits of a full recomputation. That holds while the sequence fits in
``max_len``: beyond it the model sees only the last ``max_len`` tokens, every token's
(learned, absolute) position changes at each step, the cached keys and values are stale,
and :meth:`GPT.generate` recomputes the window instead.

:class:`GPTConfig` also has the options of the modern "speedrun" recipes (Part 5), all off
by default so that the default model stays GPT-2's: ``positions="rope"`` (rotary instead of
learned positions), ``norm="rms"``, ``mlp="relu2"`` or ``"swiglu"``, ``qk_norm=True`` and
``tie_embeddings=False`` (a separate output matrix); ``bias=False`` drops every bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks
from ..generation import generate
from ..nn import KVCache, RMSNorm, RotaryEmbedding, TransformerBlock


@dataclass
class GPTConfig:
    """Sizes of a :class:`GPT`; ``max_len`` is the context length (GPT-2's n_positions)."""

    vocab_size: int
    max_len: int
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.0
    bias: bool = True
    positions: str = "learned"  # or "rope"
    norm: str = "layer"  # or "rms"
    mlp: str = "gelu"  # or "relu2", "swiglu"
    qk_norm: bool = False
    tie_embeddings: bool = True

    def __post_init__(self):
        _checks.transformer_config(self, "vocab_size", "max_len", "n_layer", "n_head", "d_model")
        _checks.one_of("positions", self.positions, POSITIONS)
        _checks.one_of("norm", self.norm, NORMS)
        _checks.one_of("mlp", self.mlp, MLPS)
        if self.positions == "rope" and (self.d_model // self.n_head) % 2:
            raise ValueError(
                f"positions='rope' needs an even head width d_model // n_head, got "
                f"{self.d_model // self.n_head}"
            )


POSITIONS = ("learned", "rope")
NORMS = ("layer", "rms")
MLPS = ("gelu", "relu2", "swiglu")


class GPT(nn.Module):
    """Token + position embeddings -> n_layer causal blocks -> final LayerNorm -> logits.

    With ``positions="rope"`` there is no ``pos_emb``: every attention layer rotates its
    queries and keys instead (one shared :class:`~fmbook.nn.RotaryEmbedding`).
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        rotary = None
        if cfg.positions == "learned":
            self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        else:
            self.pos_emb = None
            rotary = RotaryEmbedding(cfg.d_model // cfg.n_head, max_len=cfg.max_len)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                cfg.d_model,
                cfg.n_head,
                mlp=cfg.mlp,
                norm=cfg.norm,
                dropout=cfg.dropout,
                bias=cfg.bias,
                rotary=rotary,
                qk_norm=cfg.qk_norm,
            )
            for _ in range(cfg.n_layer)
        )
        if cfg.norm == "layer":
            self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        else:
            self.ln_f = RMSNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight  # weight tying (Press & Wolf, 2017)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # residual projections
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embeddings (the token
        embeddings are shared with a tied output head, so they count once)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.pos_emb is not None:
            n -= self.pos_emb.weight.numel()
        return n

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        caches: list[KVCache] | None = None,
    ):
        """idx (B, T) token ids -> logits (B, T, V) and, with targets (B, T), the mean
        cross-entropy (targets of -100 are ignored). caches: one KVCache per block, for
        incremental decoding (idx then holds the positions after the cached ones)."""
        past = _checks.caches(caches, len(self.blocks))  # positions already cached
        _checks.ids(idx, self.config.vocab_size, "idx", self.config.max_len, past, targets)
        B, T = idx.shape
        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(past, past + T, device=idx.device))
        x = self.drop(x)  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, cache=None if caches is None else caches[i])
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after ``idx`` (B, T); returns (B, T + new).

        Each step divides the last logits by ``temperature`` and keeps the ``top_k`` most
        likely tokens. The model sees at most the last ``max_len`` tokens; with ``use_cache``
        a step feeds only the new token, until the window slides and every position moves.
        This is :func:`fmbook.generation.generate`, which has more options (greedy, top-p,
        a repetition penalty) and a streaming form, :func:`fmbook.generation.stream`.
        """
        _checks.sampling(max_new_tokens, temperature, top_k, idx, self.config.vocab_size)
        return generate(
            self,
            idx,
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
            use_cache=use_cache,
        )
