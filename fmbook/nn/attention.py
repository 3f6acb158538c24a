"""Scaled dot-product attention, written out and through PyTorch, and multi-head attention.

Shapes in comments: B batch, H heads, Tq queries, Tk keys, C channels (d_model), D = C / H
(channels per head).

Conventions used throughout ``fmbook.nn``:

* **Masks are boolean and True means "may attend"**: ``mask[..., i, j]`` says whether query
  ``i`` may look at key ``j``. (``torch.nn.MultiheadAttention`` uses the opposite convention
  for its ``attn_mask`` and ``key_padding_mask``: there True means "blocked".)
* **Causal masks align to the end**: with ``Tq`` queries and ``Tk >= Tq`` keys, query ``i`` is
  taken to sit at position ``i + Tk - Tq`` and sees keys ``j <= i + Tk - Tq``. This is what
  incremental decoding with a key/value cache needs (the new queries are the *last* ``Tq``
  positions). For ``Tq == Tk`` it is the usual lower-triangular mask. PyTorch's
  ``is_causal=True`` aligns to the *start* instead (``j <= i``), so :func:`sdpa` passes an
  explicit mask whenever ``Tq != Tk``.
* **A query that may attend to no key gets a zero output** (and a row of zero weights),
  instead of the NaN that ``softmax`` of an all ``-inf`` row would give. Such rows occur with
  left padding or with ``causal=True`` and ``Tq > Tk``. Their gradients are zero, not NaN.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks
from .norms import RMSNorm
from .positional import RotaryEmbedding

# ---------------------------------------------------------------------------- masks


def causal_mask(tq: int, tk: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean (Tq, Tk) mask, True where query ``i`` may see key ``j``: ``j <= i + Tk - Tq``."""
    ones = torch.ones(tq, tk, dtype=torch.bool, device=device)
    return torch.tril(ones, diagonal=tk - tq)


def padding_mask(lengths: torch.Tensor | list[int], max_len: int | None = None) -> torch.Tensor:
    """Boolean (B, max_len) mask, True for the first ``lengths[b]`` (real) tokens of row ``b``.

    Pass it as ``mask`` to :class:`MultiHeadAttention` to ignore right-padded keys.
    """
    lengths = torch.as_tensor(lengths)
    _checks.lengths(lengths, max_len)
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]  # (B, max_len)


# ---------------------------------------------------------------------------- attention


def _full_mask(q, k, mask, causal) -> torch.Tensor | None:
    """Combine the boolean ``mask`` and the (end-aligned) causal mask; None if neither."""
    if causal:
        cm = causal_mask(q.shape[-2], k.shape[-2], device=q.device)  # (Tq, Tk)
        mask = cm if mask is None else mask & cm
    return mask


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    *,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out: ``softmax(q k^T / sqrt(d_k) + M) v``, returns (output, weights).

    ``M`` is 0 where the boolean ``mask`` (broadcastable to (..., Tq, Tk)) is True, ``-inf``
    elsewhere; ``causal=True`` also blocks later keys (end-aligned). A query that may attend
    to nothing gets zero weights and output. ``dropout_p`` drops attention weights.
    """
    _checks.qkv(q, k, v, mask, causal, dropout_p)  # q (..., Tq, d_k), k, v (..., Tk, d_k/d_v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    mask = _full_mask(q, k, mask, causal)
    if mask is not None:
        # a query with no visible key attends uniformly here and is zeroed below, which keeps
        # the softmax (and its gradient) free of NaN
        has_key = mask.any(dim=-1, keepdim=True)  # (..., Tq, 1)
        scores = scores.masked_fill(~(mask | ~has_key), float("-inf"))
    weights = F.softmax(scores, dim=-1)  # (..., Tq, Tk)
    if mask is not None:
        weights = weights.masked_fill(~has_key, 0.0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights  # (..., Tq, d_v), (..., Tq, Tk)


def sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    *,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """The output of :func:`scaled_dot_product_attention` (same arguments and conventions)
    through ``torch.nn.functional.scaled_dot_product_attention``, which picks a fused kernel
    (FlashAttention and friends) where it can. Returns (..., Tq, d_v).
    """
    _checks.qkv(q, k, v, mask, causal, dropout_p)
    if mask is None and causal and q.shape[-2] == k.shape[-2]:
        # square causal: torch's start-aligned is_causal equals our end-aligned mask
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    mask = _full_mask(q, k, mask, causal)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    has_key = mask.any(dim=-1, keepdim=True)  # (..., Tq, 1)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~has_key, dropout_p=dropout_p)
    return y.masked_fill(~has_key, 0.0)  # (..., Tq, d_v)


# ---------------------------------------------------------------------------- multi-head


class KVCache:
    """Keys and values of the positions seen so far, for incremental (token by token) decoding.

    Holds ``k`` and ``v`` of shape (B, H, T, D), or None while empty. A
    :class:`MultiHeadAttention` called with ``cache=...`` appends the new positions' keys and
    values *in place* and attends over all of them; ``len(cache)`` is the number of cached
    positions. Use one cache per attention layer and start a fresh one for every new sequence.
    """

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add k, v (B, H, T_new, D); return all keys and values (B, H, T_old + T_new, D)."""
        _checks.cache_append(self, k)
        if self.k is not None:
            k = torch.cat((self.k, k), dim=-2)
            v = torch.cat((self.v, v), dim=-2)
        self.k, self.v = k, v
        return k, v

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` (N,) of the batch, in that order (beam search moves beams
        between rows): k, v (B, H, T, D) -> (N, H, T, D)."""
        if self.k is not None:
            self.k, self.v = self.k[index], self.v[index]


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al., 2017): ``concat(head_1..head_H) W_o`` with
    ``head_h = attention(x W_q^h, m W_k^h, m W_v^h)``, ``m = x`` (self) or the memory (cross).

    Parameters: ``qkv`` (C -> 3C, self-attention) or ``q`` (C -> C) and ``kv`` (C -> 2C,
    cross-attention), and the output projection ``proj`` (C -> C). The (3C, C) ``qkv`` weight
    stacks W_q, W_k, W_v like ``torch.nn.MultiheadAttention.in_proj_weight``. Only residual
    output projections are named ``proj`` (GPT scales their initialisation by that name).
    ``dropout`` drops attention weights and the output, as in GPT-2/nanoGPT.
    ``rotary`` (self-attention only) rotates queries and keys by their positions (RoPE).
    ``qk_norm`` applies an RMSNorm over each head's D channels to queries and keys before
    the rotation (QK-norm; Henry et al., 2020, Dehghani et al., 2023), parameters ``q_norm``
    and ``k_norm`` (D gains each, shared by the heads), so that no score can grow without
    bound.
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        cross: bool = False,
        rotary: RotaryEmbedding | None = None,
        qk_norm: bool = False,
    ):
        super().__init__()
        _checks.positive_ints(d_model=d_model, n_head=n_head)
        _checks.divisible(d_model, n_head)
        _checks.dropout(dropout)
        if rotary is not None and (cross or rotary.d_head != d_model // n_head):
            raise ValueError(
                "rotary must be a RotaryEmbedding with d_head = d_model // n_head = "
                f"{d_model // n_head} on a self-attention layer, got d_head={rotary.d_head} "
                f"with cross={cross}"
            )
        self.d_model, self.n_head, self.dropout, self.cross = d_model, n_head, dropout, cross
        if cross:
            self.q = nn.Linear(d_model, d_model, bias=bias)
            self.kv = nn.Linear(d_model, 2 * d_model, bias=bias)
        else:
            self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.resid_drop = nn.Dropout(dropout)
        self.rotary = rotary
        self.qk_norm = qk_norm
        if qk_norm:
            self.q_norm = RMSNorm(d_model // n_head)
            self.k_norm = RMSNorm(d_model // n_head)

    @staticmethod
    def _as_4d(mask: torch.Tensor | None) -> torch.Tensor | None:
        return mask[:, None, None, :] if mask is not None and mask.dim() == 2 else mask

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)

    def _project(self, x, context):
        """x (B, Tq, C) [, context (B, Tk, C)] -> q (B, H, Tq, D), k, v (B, H, Tk, D)."""
        if self.cross:
            q = self.q(x)
            k, v = self.kv(context).split(self.d_model, dim=2)
        else:
            q, k, v = self.qkv(x).split(self.d_model, dim=2)
        return self._heads(q), self._heads(k), self._heads(v)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """x (B, Tq, C) -> (B, Tq, C).

        context: the memory (B, Tk, C) to attend to (cross-attention only).
        mask: boolean, True = may attend: a key padding mask (B, Tk) or broadcastable to
            (B, H, Tq, Tk); Tk counts cached and new positions.
        causal: block keys after each query (end-aligned, so it works with a cache).
        cache: a :class:`KVCache` (self-attention), extended in place with x's keys and values.
        """
        _checks.attention_call(self, x, context, mask, cache)
        B, Tq, _ = x.shape
        past = 0 if cache is None else len(cache)
        mask = self._as_4d(mask)  # key padding (B, Tk) -> (B, 1, 1, Tk)
        q, k, v = self._project(x, context)  # (B, H, Tq, D), (B, H, Tk - past, D) x 2
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)  # each head's vectors to RMS 1 (x gain)
        if self.rotary is not None:
            q, k = self.rotary(q, k, torch.arange(past, past + Tq, device=x.device))
        if cache is not None:
            k, v = cache.append(k, v)  # (B, H, Tk, D)
        p = self.dropout if self.training else 0.0
        y = sdpa(q, k, v, mask=mask, causal=causal, dropout_p=p)  # (B, H, Tq, D)
        y = y.transpose(1, 2).reshape(B, Tq, self.d_model)  # concatenate the heads
        return self.resid_drop(self.proj(y))
