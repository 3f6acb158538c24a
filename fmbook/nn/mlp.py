"""Position-wise feed-forward networks: the GELU MLP of GPT-2 (or its ReLU² variant) and
SwiGLU (Shazeer, 2020).

Both map x (..., C) to (..., C) and act on every position independently. Their output
layer is named ``proj`` (a residual projection, see :class:`fmbook.nn.MultiHeadAttention`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks


def relu2(x: torch.Tensor) -> torch.Tensor:
    """``ReLU(x)^2``, the squared ReLU of Primer (So et al., 2021) and modded-nanogpt."""
    return F.relu(x).square()


_ACTIVATIONS = {"gelu": F.gelu, "relu2": relu2}


class MLP(nn.Module):
    """``MLP(x) = dropout(W_2 GELU(W_1 x + b_1) + b_2)``: C -> hidden (default 4C) -> C.

    Parameters ``fc`` (W_1) and ``proj`` (W_2), as in GPT-2; exact (erf) GELU by default,
    or ``activation="relu2"``: :func:`relu2` (same parameters).
    """

    def __init__(
        self,
        d_model: int,
        hidden: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        activation: str = "gelu",
    ):
        super().__init__()
        hidden = 4 * d_model if hidden is None and isinstance(d_model, int) else hidden
        _checks.positive_ints(d_model=d_model, hidden=hidden)
        _checks.dropout(dropout)
        _checks.one_of("activation", activation, sorted(_ACTIVATIONS))
        self.d_model, self.activation = d_model, activation
        self.act = _ACTIVATIONS[activation]
        self.fc = nn.Linear(d_model, hidden, bias=bias)
        self.proj = nn.Linear(hidden, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.features(x, self.d_model)
        return self.drop(self.proj(self.act(self.fc(x))))  # (..., C) -> (..., H) -> (..., C)


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
        _checks.positive_ints(d_model=d_model, multiple_of=multiple_of)
        hidden = swiglu_hidden(d_model, multiple_of) if hidden is None else hidden
        _checks.positive_ints(hidden=hidden)
        _checks.dropout(dropout)
        self.d_model = d_model
        self.gate = nn.Linear(d_model, hidden, bias=bias)
        self.up = nn.Linear(d_model, hidden, bias=bias)
        self.proj = nn.Linear(hidden, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.features(x, self.d_model)
        return self.drop(self.proj(F.silu(self.gate(x)) * self.up(x)))  # (..., C)
