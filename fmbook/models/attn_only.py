"""An attention-only transformer: embeddings, a few attention layers, no MLPs.

The model of Elhage et al. (2021), "A mathematical framework for transformer circuits",
and Olsson et al. (2022), "In-context learning and induction heads": with two layers it
can form an *induction head*, the circuit that completes ``[A][B] ... [A] -> [B]``.
Every layer is an :class:`~fmbook.nn.MultiHeadAttention`, so
:func:`fmbook.interpret.record_attention` reads its per-head attention patterns and
:func:`fmbook.interpret.ablate_heads` switches heads off.

Shapes in comments: B batch, T positions, C channels (d_model), V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks
from ..nn.attention import MultiHeadAttention
from ..nn.positional import RotaryEmbedding


@dataclass
class AttnOnlyConfig:
    vocab_size: int = 64
    max_len: int = 64
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    positions: str = "rope"  # "rope" (rotary, relative) or "learned" (absolute)

    def __post_init__(self):
        _checks.positive_ints(
            vocab_size=self.vocab_size,
            max_len=self.max_len,
            n_layer=self.n_layer,
            n_head=self.n_head,
            d_model=self.d_model,
        )
        _checks.divisible(self.d_model, self.n_head)
        _checks.one_of("positions", self.positions, ("rope", "learned"))


# <show attn_only>
class AttnOnlyBlock(nn.Module):
    """x + attention(LayerNorm(x)): a residual block with no MLP."""

    def __init__(self, d_model: int, n_head: int, rotary=None):
        super().__init__()
        self.ln = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_head, rotary=rotary)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return x + self.attn(self.ln(x), causal=True)


class AttnOnlyTransformer(nn.Module):
    """Token + position embeddings -> n_layer attention-only blocks -> logits."""

    def __init__(self, cfg: AttnOnlyConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        rotary, self.pos_emb = None, None
        if cfg.positions == "rope":  # positions enter only through q . k
            rotary = RotaryEmbedding(cfg.d_model // cfg.n_head, max_len=cfg.max_len)
        else:
            self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(
            AttnOnlyBlock(cfg.d_model, cfg.n_head, rotary) for _ in range(cfg.n_layer)
        )
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, idx, targets=None):
        """idx (B, T) -> logits (B, T, V) and, with targets (B, T), the mean loss."""
        _checks.ids(idx, self.config.vocab_size, "idx", self.config.max_len, 0, targets)
        B, T = idx.shape
        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)  # (B, T, C): each head writes into the residual stream
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss


# </show attn_only>

__all__ = ["AttnOnlyBlock", "AttnOnlyConfig", "AttnOnlyTransformer"]
