"""A decoder-only Transformer language model (GPT), in one readable module.

Shapes in comments: B batch, T time (tokens), C channels (n_embd), H heads, V vocab.
The design follows GPT-2 (Radford et al., 2019): learned positions, pre-norm blocks
(:class:`fmbook.nn.TransformerBlock` with causal self-attention, LayerNorm and a GELU MLP),
tied input/output embeddings, and residual projections initialised with a standard
deviation scaled by 1/sqrt(2 * n_layer). Generation keeps a key/value cache per block, so
each new token costs one position's worth of compute instead of the whole context's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..generation import sample_next
from ..nn import KVCache, TransformerBlock
from .config_checks import require_divisible, require_dropout, require_positive_ints


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self):
        require_positive_ints(self, "vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        require_divisible(self, "n_embd", "n_head")
        require_dropout(self)


class GPT(nn.Module):
    """Token + position embeddings -> n_layer causal blocks -> final LayerNorm -> logits."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                cfg.n_embd, cfg.n_head, mlp="gelu", norm="layer", dropout=cfg.dropout, bias=cfg.bias
            )
            for _ in range(cfg.n_layer)
        )
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
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
        embeddings are shared with the output head, so they count once)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.pos_emb.weight.numel() if non_embedding else n

    def _check_idx(self, idx: torch.Tensor, name: str = "idx", past: int = 0) -> None:
        if not isinstance(idx, torch.Tensor) or idx.dtype != torch.long or idx.dim() != 2:
            got = (
                f"{idx.dtype} tensor of shape {tuple(idx.shape)}"
                if torch.is_tensor(idx)
                else type(idx).__name__
            )
            raise ValueError(
                f"{name} must be a (batch, time) tensor of dtype torch.long, got {got}"
            )
        if past + idx.size(1) > self.config.block_size:
            raise ValueError(
                f"{name} has {past + idx.size(1)} tokens, more than "
                f"block_size={self.config.block_size}"
            )
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.config.vocab_size):
            raise ValueError(
                f"{name} holds token ids outside [0, vocab_size={self.config.vocab_size})"
            )

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        caches: list[KVCache] | None = None,
    ):
        """idx (B, T) token ids -> logits (B, T, V); with targets (B, T), also the mean
        cross-entropy loss (targets equal to -100 are ignored).

        caches: one :class:`~fmbook.nn.KVCache` per block for incremental decoding; idx
        then holds the positions after the ``len(caches[0])`` already cached ones.
        """
        if caches is not None and len(caches) != len(self.blocks):
            raise ValueError(f"caches must hold one KVCache per block ({len(self.blocks)})")
        past = 0 if caches is None else len(caches[0])
        self._check_idx(idx, past=past)
        B, T = idx.shape
        pos = torch.arange(past, past + T, device=idx.device)  # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, cache=None if caches is None else caches[i])
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(
                    f"targets must have the shape of idx {tuple(idx.shape)}, "
                    f"got {tuple(targets.shape)}"
                )
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

        Each step divides the last logits by ``temperature`` and keeps only the ``top_k``
        most likely tokens (if given). The model sees at most the last ``block_size``
        tokens. With ``use_cache`` the keys and values of past positions are kept, so a
        step processes only the new token; once the sequence outgrows ``block_size`` the
        window slides, every position moves, and each step recomputes the window.
        """
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if top_k is not None and not (isinstance(top_k, int) and top_k >= 1):
            raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
        self._check_idx(idx[:, -self.config.block_size :] if torch.is_tensor(idx) else idx)
        was_training = self.training
        self.eval()
        try:
            caches, fed = None, 0  # fed: how many tokens of idx the caches hold
            for _ in range(max_new_tokens):
                if use_cache and idx.size(1) <= self.config.block_size:
                    if caches is None:
                        caches = [KVCache() for _ in self.blocks]
                    logits, _ = self(idx[:, fed:], caches=caches)  # only the new positions
                    fed = idx.size(1)
                else:  # no cache, or the window slides: recompute the last block_size tokens
                    logits, _ = self(idx[:, -self.config.block_size :])
                next_id = sample_next(logits[:, -1, :], temperature, top_k, generator=generator)
                idx = torch.cat((idx, next_id[:, None]), dim=1)  # (B, T + 1)
        finally:
            self.train(was_training)
        return idx
