"""Normalisation layers: LayerNorm (Ba et al., 2016) and RMSNorm (Zhang & Sennrich, 2019).

Both act on the last dim C of x (..., C) and keep its shape.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import _checks


class LayerNorm(nn.LayerNorm):
    """``y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias`` over the last dim.

    ``torch.nn.LayerNorm`` (biased variance) with an optional bias; the parameter names
    ``weight`` and ``bias`` are those of ``nn.LayerNorm``.
    """

    def __init__(self, d_model: int, bias: bool = True, eps: float = 1e-5):
        _checks.positive_int("d_model", d_model)
        super().__init__(d_model, eps=eps, bias=bias)
        self.d_model = d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.features(x, self.d_model)
        return super().forward(x)


class RMSNorm(nn.Module):
    """``y = x / sqrt(mean(x^2) + eps) * weight`` over the last dim: LayerNorm without
    centring and bias (used by T5 and LLaMA). Computed in float32, returned in x's dtype.
    """

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        _checks.positive_int("d_model", d_model)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.d_model, self.eps = d_model, eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.features(x, self.d_model)
        xf = x.float()
        rms = torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return (xf * rms * self.weight.float()).to(x.dtype)  # (..., C)

    def extra_repr(self) -> str:
        return f"{self.d_model}, eps={self.eps}"
