"""Position-wise feed-forward networks: the GELU MLP of GPT-2 and SwiGLU (Shazeer, 2020).

Both map x (..., C) to (..., C) and act on every position independently. Their output
layer is named ``proj`` (a residual projection, see :class:`fmbook.nn.MultiHeadAttention`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check_args(d_model, hidden, dropout) -> None:
    for name, value in (("d_model", d_model), ("hidden", hidden)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


def _check_input(x, d_model: int) -> None:
    if not torch.is_tensor(x) or not x.dtype.is_floating_point or x.shape[-1:] != (d_model,):
        got = (
            f"{x.dtype} tensor of shape {tuple(x.shape)}"
            if torch.is_tensor(x)
            else type(x).__name__
        )
        raise ValueError(f"x must be a floating-point (..., d_model={d_model}) tensor, got {got}")


class MLP(nn.Module):
    """``MLP(x) = dropout(W_2 GELU(W_1 x + b_1) + b_2)``: C -> hidden (default 4C) -> C.

    Parameters ``fc`` (W_1) and ``proj`` (W_2), as in GPT-2; exact (erf) GELU.
    """

    def __init__(
        self, d_model: int, hidden: int | None = None, dropout: float = 0.0, bias: bool = True
    ):
        super().__init__()
        hidden = 4 * d_model if hidden is None and isinstance(d_model, int) else hidden
        _check_args(d_model, hidden, dropout)
        self.d_model = d_model
        self.fc = nn.Linear(d_model, hidden, bias=bias)
        self.proj = nn.Linear(hidden, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.d_model)
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (..., C) -> (..., H) -> (..., C)


def swiglu_hidden(d_model: int, multiple_of: int = 8) -> int:
    """Hidden size with the parameter count of a 4C GELU MLP: ``2/3 * 4C`` rounded up to a
    multiple of ``multiple_of`` (LLaMA's convention; SwiGLU has three matrices, not two)."""
    h = int(2 * 4 * d_model / 3)
    return multiple_of * ((h + multiple_of - 1) // multiple_of)


class SwiGLU(nn.Module):
    """``SwiGLU(x) = dropout(W_2 (SiLU(W_1 x) * W_3 x))`` (Shazeer, 2020), with
    ``SiLU(z) = z * sigmoid(z)``; parameters ``gate`` (W_1), ``up`` (W_3), ``proj`` (W_2).

    ``hidden`` defaults to :func:`swiglu_hidden` (``d_model``, ``multiple_of``).
    """

    def __init__(
        self,
        d_model: int,
        hidden: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        multiple_of: int = 8,
    ):
        super().__init__()
        if not isinstance(multiple_of, int) or multiple_of < 1:
            raise ValueError(f"multiple_of must be a positive int, got {multiple_of!r}")
        if hidden is None and isinstance(d_model, int):
            hidden = swiglu_hidden(d_model, multiple_of)
        _check_args(d_model, hidden, dropout)
        self.d_model = d_model
        self.gate = nn.Linear(d_model, hidden, bias=bias)
        self.up = nn.Linear(d_model, hidden, bias=bias)
        self.proj = nn.Linear(hidden, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.d_model)
        return self.drop(self.proj(F.silu(self.gate(x)) * self.up(x)))  # (..., C)
