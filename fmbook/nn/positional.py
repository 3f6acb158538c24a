"""Position information for Transformers: sinusoidal, learned and rotary (RoPE).

Shapes in comments: T positions, C channels (d_model), D channels per head (d_head).
The sinusoidal and learned encodings map integer ``positions`` (any shape) to vectors that
are *added* to the token embeddings; rotary embeddings instead *rotate* queries and keys
inside attention, so that their dot product depends on the relative offset only.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .. import _checks


def sinusoidal_table(max_len: int, d_model: int) -> torch.Tensor:
    """(max_len, d_model) table of Vaswani et al. (2017):

    ``PE[pos, 2i] = sin(pos / 10000^(2i / d_model))``,
    ``PE[pos, 2i + 1] = cos(pos / 10000^(2i / d_model))``.
    """
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]  # (T, 1)
    inv_freq = torch.exp(
        -math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model
    )  # (ceil(C/2),)
    angles = pos * inv_freq  # (T, ceil(C/2))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return table


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoidal encodings (see :func:`sinusoidal_table`); no parameters.

    ``forward(positions)`` maps integer positions (any shape, e.g. ``torch.arange(T)``)
    to (*positions.shape, d_model).
    """

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        _checks.positive_int("d_model", d_model)
        _checks.positive_int("max_len", max_len)
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        _checks.positions(positions, self.max_len)
        return self.table[positions]  # (*positions.shape, C)


class LearnedPositionalEmbedding(nn.Embedding):
    """One trained vector per position (GPT-2): an ``nn.Embedding(max_len, d_model)`` whose
    ``forward(positions)`` checks that the positions fit (parameter name: ``weight``)."""

    def __init__(self, max_len: int, d_model: int):
        _checks.positive_int("max_len", max_len)
        _checks.positive_int("d_model", d_model)
        super().__init__(max_len, d_model)
        self.max_len, self.d_model = max_len, d_model

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        _checks.positions(positions, self.max_len)
        return super().forward(positions)  # (*positions.shape, C)


# ---------------------------------------------------------------------------- rotary


def rotary_angles(positions: torch.Tensor, d_head: int, base: float = 10000.0) -> torch.Tensor:
    """Angles ``m * theta_i`` with ``theta_i = base^(-2i / d_head)``: (T,) -> (T, d_head / 2)."""
    inv_freq = base ** (-torch.arange(0, d_head, 2, dtype=torch.float32) / d_head)  # (D/2,)
    return positions.to(torch.float32)[:, None] * inv_freq.to(positions.device)  # (T, D/2)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair of channels ``(x_2i, x_2i+1)`` of x (..., T, D) by the angle whose
    cosine and sine are ``cos``, ``sin`` (T, D/2):

    ``(x_2i, x_2i+1) -> (x_2i cos - x_2i+1 sin, x_2i sin + x_2i+1 cos)``.
    """
    pairs = x.unflatten(-1, (-1, 2))  # (..., T, D/2, 2)
    x1, x2 = pairs[..., 0], pairs[..., 1]  # (..., T, D/2) each
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., T, D/2, 2)
    return out.flatten(-2)  # (..., T, D)


def apply_rotary(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, base: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary position embedding (RoPE, Su et al. 2021) of q and k (..., T, D).

    Position ``m`` rotates channel pair ``i`` by ``m * theta_i``, ``theta_i = base^(-2i/D)``.
    Rotations keep norms, and ``<R_m q, R_n k> = <q, R_(n-m) k>`` depends only on ``n - m``.
    Channel pairs are adjacent ``(x_0, x_1), (x_2, x_3), ...`` as in the paper (the HF
    LLaMA code pairs ``x_i`` with ``x_(i + D/2)`` instead; the two differ by a permutation).
    ``positions`` (T,) gives each row's position, e.g. ``torch.arange(past, past + T)``.
    """
    _checks.rotary(q, k, positions)
    angles = rotary_angles(positions, q.shape[-1], base)  # (T, D/2)
    cos, sin = angles.cos(), angles.sin()
    return rotate(q, cos, sin), rotate(k, cos, sin)


class RotaryEmbedding(nn.Module):
    """RoPE with cos/sin tables precomputed for positions below ``max_len``.

    ``forward(q, k, positions)`` equals :func:`apply_rotary` (no parameters); positions at or
    beyond ``max_len`` raise ValueError.
    """

    def __init__(self, d_head: int, max_len: int = 4096, base: float = 10000.0):
        super().__init__()
        _checks.positive_int("d_head", d_head, even=True)
        _checks.positive_int("max_len", max_len)
        self.d_head, self.max_len, self.base = d_head, max_len, base
        angles = rotary_angles(torch.arange(max_len), d_head, base)  # (max_len, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k (..., T, d_head), positions (T,) -> rotated q, k (same shapes)."""
        _checks.rotary(q, k, positions, self.d_head, self.max_len)
        cos, sin = self.cos[positions], self.sin[positions]  # (T, D/2)
        return rotate(q, cos, sin), rotate(k, cos, sin)
