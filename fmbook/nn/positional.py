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


def _check_positions(positions, max_len: int | None = None) -> None:
    """Raise ValueError unless ``positions`` is an integer tensor with values in [0, max_len)."""
    if (
        not torch.is_tensor(positions)
        or positions.dtype.is_floating_point
        or positions.dtype.is_complex
        or positions.dtype == torch.bool
    ):
        got = (
            f"{positions.dtype} tensor" if torch.is_tensor(positions) else type(positions).__name__
        )
        raise ValueError(f"positions must be an integer tensor, got {got}")
    if positions.numel() == 0:
        return
    if positions.min() < 0:
        raise ValueError(f"positions must be >= 0, got {int(positions.min())}")
    if max_len is not None and positions.max() >= max_len:
        length = int(positions.max()) + 1
        raise ValueError(
            f"sequence of length {length} is longer than max_len={max_len} "
            f"(position {length - 1} has no encoding)"
        )


def _check_dim(name: str, value, even: bool = False) -> None:
    if not isinstance(value, int) or value < 1 or (even and value % 2):
        kind = "a positive even int" if even else "a positive int"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


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
        _check_dim("d_model", d_model)
        _check_dim("max_len", max_len)
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        _check_positions(positions, self.max_len)
        return self.table[positions]  # (*positions.shape, C)


class LearnedPositionalEmbedding(nn.Embedding):
    """One trained vector per position (GPT-2): an ``nn.Embedding(max_len, d_model)`` whose
    ``forward(positions)`` checks that the positions fit (parameter name: ``weight``)."""

    def __init__(self, max_len: int, d_model: int):
        _check_dim("max_len", max_len)
        _check_dim("d_model", d_model)
        super().__init__(max_len, d_model)
        self.max_len, self.d_model = max_len, d_model

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        _check_positions(positions, self.max_len)
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


def _check_rotary_inputs(q, k, positions) -> None:
    for name, t in (("q", q), ("k", k)):
        if not torch.is_tensor(t) or not t.dtype.is_floating_point or t.dim() < 2:
            raise ValueError(f"{name} must be a floating-point (..., T, D) tensor")
        if t.shape[-1] % 2:
            raise ValueError(f"{name} needs an even last dim D for rotary pairs, got {t.shape[-1]}")
    if q.shape[-2:] != k.shape[-2:]:
        raise ValueError(
            f"q and k must share (T, D) for rotary embedding, got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if not torch.is_tensor(positions) or positions.dim() != 1 or positions.numel() != q.shape[-2]:
        raise ValueError(
            f"positions must be a 1-D integer tensor of length T={q.shape[-2]}, got {positions!r}"
        )


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
    _check_rotary_inputs(q, k, positions)
    _check_positions(positions)
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
        _check_dim("d_head", d_head, even=True)
        _check_dim("max_len", max_len)
        self.d_head, self.max_len, self.base = d_head, max_len, base
        angles = rotary_angles(torch.arange(max_len), d_head, base)  # (max_len, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k (..., T, d_head), positions (T,) -> rotated q, k (same shapes)."""
        _check_rotary_inputs(q, k, positions)
        if q.shape[-1] != self.d_head:
            raise ValueError(f"q and k must have last dim d_head={self.d_head}, got {q.shape[-1]}")
        _check_positions(positions, self.max_len)
        cos, sin = self.cos[positions], self.sin[positions]  # (T, D/2)
        return rotate(q, cos, sin), rotate(k, cos, sin)
