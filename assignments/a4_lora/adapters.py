"""The functions the autograder calls. If you restructure your code, edit only this file."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from .lora import LoRALinear, add_lora, merge, trainable_parameters


def run_lora_linear(base: nn.Linear, r: int, alpha: float) -> nn.Module:
    return LoRALinear(base, r=r, alpha=alpha)


def get_lora_factors(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The (A (r, d_in), B (d_out, r)) parameters of a LoRA layer."""
    return layer.A, layer.B


def get_lora_base(layer: nn.Module) -> nn.Linear:
    """The frozen nn.Linear a LoRA layer wraps."""
    return layer.base


def run_add_lora(model: nn.Module, targets: Sequence[str], r: int, alpha: float) -> list[str]:
    return add_lora(model, targets, r=r, alpha=alpha)


def run_trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return trainable_parameters(model)


def run_merge(layer: nn.Module) -> nn.Linear:
    return merge(layer)
