"""Assignment 2: attention and a Transformer block, from scratch.

Implement the functions and modules below with plain tensor operations, ``nn.Linear``,
``nn.LayerNorm`` and ``F.gelu``. Not allowed (the grader switches them off while it runs
your code): ``torch.softmax`` / ``Tensor.softmax`` / ``F.softmax`` in your attention,
``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``.

Conventions (the book's, see ``fmbook.nn``; the grader loads the book's weights into your
modules, so the parameter names must be exactly these):

* a boolean ``mask`` is True where a query may attend to a key, broadcastable to
  (..., Tq, Tk);
* ``MultiHeadAttention(d_model, n_head)`` has ``qkv = nn.Linear(C, 3C)`` (W_q, W_k, W_v
  stacked in that order along the output) and ``proj = nn.Linear(C, C)``;
* ``Block(d_model, n_head)`` is GPT-2's pre-norm block with ``ln_1``, ``attn``, ``ln_2``
  and ``mlp`` (``mlp.fc``: C -> 4C, exact GELU, ``mlp.proj``: 4C -> C):
  ``x = x + attn(ln_1(x))``, then ``x = x + mlp(ln_2(x))``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, without overflow for large inputs (subtract the
    maximum first: the result does not change)."""
    # BEGIN SOLUTION
    z = x - x.max(dim=dim, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=dim, keepdim=True)
    # END SOLUTION


def causal_mask(t: int) -> torch.Tensor:
    """Boolean (t, t): True where query i may see key j, i.e. j <= i."""
    # BEGIN SOLUTION
    return torch.ones(t, t, dtype=torch.bool).tril()
    # END SOLUTION


def scaled_dot_product_attention(q, k, v, mask=None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_k) + M) v with M = -inf where ``mask`` is False.

    q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v) -> (..., Tq, d_v).
    """
    # BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1) @ v  # (..., Tq, d_v)
    # END SOLUTION


class MultiHeadAttention(nn.Module):
    """Self-attention with ``n_head`` heads of size D = C / n_head:
    ``concat(head_1, ..., head_H) W_o`` with ``head_h = attention(x W_q^h, x W_k^h, x W_v^h)``."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} must be divisible by n_head={n_head}")
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); ``mask`` broadcastable to (B, H, T, T)."""
        # BEGIN SOLUTION
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = scaled_dot_product_attention(q, k, v, mask)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # concatenate the heads
        return self.proj(y)
        # END SOLUTION


class MLP(nn.Module):
    """C -> 4C -> C with the exact (erf) GELU: ``proj(gelu(fc(x)))``."""

    def __init__(self, d_model: int):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.proj(F.gelu(self.fc(x)))
        # END SOLUTION


class Block(nn.Module):
    """GPT-2's pre-norm Transformer block (see the module docstring)."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_head)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); ``causal``: each position sees itself and the past."""
        # BEGIN SOLUTION
        mask = causal_mask(x.shape[1]) if causal else None
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))
        # END SOLUTION
