"""Pooling: one vector per sequence from its hidden states.

>>> mean_pool(hidden, ids != pad_id)  # (B, T, C), (B, T) -> (B, C)
"""

from __future__ import annotations

import torch


def mean_pool(hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Hidden states (B, T, C) -> the mean over the positions where ``keep`` (B, T) is True
    (B, C). A row with no kept position gives zeros."""
    _check_mean_pool(hidden, keep)
    weights = keep.to(hidden.dtype)[..., None]  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (B, C)


def _describe(x) -> str:
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def _check_mean_pool(hidden, keep) -> None:
    if not torch.is_tensor(hidden) or hidden.dim() != 3:
        raise ValueError(f"hidden must be a (B, T, C) tensor, got {_describe(hidden)}")
    if not torch.is_tensor(keep) or keep.dtype != torch.bool or keep.shape != hidden.shape[:2]:
        raise ValueError(
            f"keep must be a bool tensor of shape {tuple(hidden.shape[:2])}, got {_describe(keep)}"
        )


__all__ = ["mean_pool"]
