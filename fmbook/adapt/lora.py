"""LoRA: low-rank adaptation of frozen linear layers (Hu et al., 2022).

A pretrained weight ``W`` (out, in) stays frozen; a LoRA layer learns a low-rank update

    h = x W^T + b + (alpha / r) * x A^T B^T        A: (r, in), B: (out, r), r << min(in, out)

``B`` starts at zero, so at the start of fine-tuning the layer computes exactly what the
pretrained one did. Only ``A`` and ``B`` train: r * (in + out) numbers instead of
in * out. After training the update can be merged, ``W' = W + (alpha / r) B A``, so the
adapted model costs nothing extra at inference.

>>> model = BERTForSequenceClassification(cfg, n_classes=4)
>>> names = add_lora(model, r=8, targets=("attn.qkv", "attn.proj"))
>>> freeze_except_lora(model, train=("classifier",))
>>> trainable, total = count_parameters(model)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update of rank ``r``, scaled by
    ``alpha / r``. ``A`` is initialised like a linear layer (Kaiming uniform), ``B`` at zero.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        _check_lora(base, r, alpha)
        self.base, self.r, self.alpha = base, r, float(alpha)
        self.scaling = self.alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        w = base.weight
        options = dict(dtype=w.dtype, device=w.device)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **options))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **options))  # (out, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def delta_weight(self) -> torch.Tensor:
        """The update (alpha / r) B A, shaped like the base weight (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)  # (..., out)
        return self.base(x) + self.scaling * update

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with weight W + (alpha / r) B A (same outputs, no dropout)."""
        base = self.base
        out = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        out = out.to(device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(base.weight + self.delta_weight())
            if base.bias is not None:
                out.bias.copy_(base.bias)
        return out

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def add_lora(
    model: nn.Module,
    *,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    targets: Sequence[str] = ("attn.qkv", "attn.proj"),
) -> list[str]:
    """Wrap every ``nn.Linear`` whose qualified name ends with one of ``targets`` in a
    :class:`LoRALinear` (in place) and return the wrapped names.

    Raises ValueError if no layer matches (a misspelt target would otherwise silently
    fine-tune nothing) or if the model already has LoRA layers.
    """
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("model already has LoRA layers")
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(n == t or n.endswith("." + t) for t in targets)
    ]
    if not names:
        linears = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        )
        raise ValueError(
            f"no nn.Linear matches targets={tuple(targets)}; linear layers end in {linears}"
        )
    for n in names:
        _replace(model, n, LoRALinear(model.get_submodule(n), r=r, alpha=alpha, dropout=dropout))
    return names


def freeze_except_lora(model: nn.Module, train: Sequence[str] = ()) -> None:
    """Freeze every parameter except LoRA's ``A`` and ``B`` and those of the submodules
    named in ``train`` (e.g. ``("classifier",)``, a new head that must learn from scratch)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.lora_A.requires_grad_(True)
            m.lora_B.requires_grad_(True)
    for name in train:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(True)


def merge_lora(model: nn.Module) -> int:
    """Replace every :class:`LoRALinear` by its merged ``nn.Linear`` (in place); return how many."""
    names = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for n in names:
        _replace(model, n, model.get_submodule(n).merged())
    return len(names)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) numbers of parameters."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _check_lora(base, r, alpha) -> None:
    if not isinstance(base, nn.Linear):
        raise ValueError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
    if not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be an int >= 1, got {r!r}")
    if r > min(base.in_features, base.out_features):
        raise ValueError(
            f"r={r} exceeds min(in_features, out_features) = "
            f"{min(base.in_features, base.out_features)}: the update would not be low-rank"
        )
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")


__all__ = ["LoRALinear", "add_lora", "count_parameters", "freeze_except_lora", "merge_lora"]
