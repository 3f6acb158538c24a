"""Pooling: one vector per sequence from its hidden states.

>>> mean_pool(hidden, ids != pad_id)  # (B, T, C), (B, T) -> (B, C)
"""

from __future__ import annotations

import torch

from .._checks import describe


def mean_pool(hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Hidden states (B, T, C) -> the mean over the positions where ``keep`` (B, T) is True
    (B, C). A row with no kept position gives zeros."""
    _check_mean_pool(hidden, keep)
    weights = keep.to(hidden.dtype)[..., None]  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (B, C)


def _check_mean_pool(hidden, keep) -> None:
    if not torch.is_tensor(hidden) or hidden.dim() != 3:
        raise ValueError(f"hidden must be a (B, T, C) tensor, got {describe(hidden)}")
    if not torch.is_tensor(keep) or keep.dtype != torch.bool or keep.shape != hidden.shape[:2]:
        raise ValueError(
            f"keep must be a bool tensor of shape {tuple(hidden.shape[:2])}, got {describe(keep)}"
        )


__all__ = ["mean_pool"]
