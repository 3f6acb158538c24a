"""The functions the autograder calls. If you restructure your code, edit only this file."""

from __future__ import annotations

import torch
import torch.nn as nn

from .gpt import get_batch, lm_loss, lr_at, sample, train


def run_get_batch(
    data: torch.Tensor, batch_size: int, context: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    return get_batch(data, batch_size, context, generator)


def run_lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return lm_loss(model, x, y)


def run_lr_at(step: int, max_steps: int, peak_lr: float, warmup: int, min_lr: float = 0.0) -> float:
    return lr_at(step, max_steps, peak_lr, warmup, min_lr)


def run_train(model: nn.Module, train_ids: torch.Tensor, steps: int, **options) -> list[float]:
    return train(model, train_ids, steps, **options)


def run_sample(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    return sample(model, idx, max_new_tokens, temperature, top_k, generator)
