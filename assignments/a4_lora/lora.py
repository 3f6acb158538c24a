"""Assignment 4: LoRA fine-tuning. Fill in every ``NotImplementedError``.

LoRA (Hu et al., 2022) adapts a pretrained linear layer y = x W^T + b, W (d_out, d_in),
without touching W: it learns a low-rank update of rank r << min(d_in, d_out),

    y = x W^T + b + (alpha / r) * x A^T B^T        A: (r, d_in), B: (d_out, r)

that is, W x + b + (alpha / r) B A x for one column vector x. Only A and B train:
r (d_in + d_out) numbers per layer instead of d_in d_out. After training the update can be
merged into the weight, W' = W + (alpha / r) B A, so the adapted model costs nothing extra.

Shapes: ... any leading (batch) dimensions, d_in / d_out the features of the wrapped layer.
"""

from __future__ import annotations

import math  # noqa: F401 (you will need it)
from collections.abc import Sequence

import torch
import torch.nn as nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` (``self.base``) plus a trainable update (alpha / r) B A.

    In ``__init__``:

    * keep ``base`` as ``self.base`` and freeze its parameters (``requires_grad_(False)``);
    * create ``self.A`` (r, d_in) and ``self.B`` (d_out, r) as ``nn.Parameter``s with the
      base weight's dtype and device; initialise A at random like a linear layer
      (``nn.init.kaiming_uniform_(A, a=math.sqrt(5))``) and B at zero, so that the wrapped
      layer starts out computing exactly what the base layer computes;
    * store the scaling ``self.scaling = alpha / r``.

    (Why not both at zero? Then the gradient of each would be zero and nothing would train.)
    """

    def __init__(self, base: nn.Linear, r: int = 4, alpha: float = 8.0):
        super().__init__()
        # BEGIN SOLUTION
        self.base, self.r, self.alpha = base, r, alpha
        self.scaling = alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        options = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.A = nn.Parameter(torch.empty(r, base.in_features, **options))  # (r, d_in)
        self.B = nn.Parameter(torch.zeros(base.out_features, r, **options))  # (d_out, r)
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d_in) -> base(x) + (alpha / r) * x A^T B^T, shape (..., d_out).

        Multiply x by A^T first, then by B^T: never form the (d_out, d_in) product B A here
        (that would cost d_out * d_in per step, what LoRA avoids).
        """
        # BEGIN SOLUTION
        update = (x @ self.A.T) @ self.B.T  # (..., r) -> (..., d_out)
        return self.base(x) + self.scaling * update
        # END SOLUTION


def add_lora(model: nn.Module, targets: Sequence[str], r: int = 4, alpha: float = 8.0) -> list[str]:
    """Wrap, in place, every ``nn.Linear`` of ``model`` whose qualified name (as in
    ``model.named_modules()``) equals a target or ends with ``"." + target`` in a
    :class:`LoRALinear`; freeze every other parameter of the model; return the wrapped names.

    Example: with targets ``("attn.qkv",)`` a GPT's ``blocks.0.attn.qkv``,
    ``blocks.1.attn.qkv``, ... are wrapped, and after the call only their A and B train.
    Raise ``ValueError`` if no ``nn.Linear`` matches (a misspelt target would otherwise
    fine-tune nothing, silently). Hint: collect the names first, then replace (changing a
    model while iterating over its modules is a bug); ``model.get_submodule(name)`` finds a
    module and ``setattr(parent, child_name, new)`` replaces one.
    """
    # BEGIN SOLUTION
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and any(name == t or name.endswith("." + t) for t in targets)
    ]
    if not names:
        raise ValueError(f"no nn.Linear of the model matches targets={tuple(targets)}")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(model.get_submodule(name), r=r, alpha=alpha))
    return names
    # END SOLUTION


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model`` that require a gradient: what the optimiser gets.

    After :func:`add_lora` these are the A and B of every wrapped layer, nothing else.
    """
    # BEGIN SOLUTION
    return [p for p in model.parameters() if p.requires_grad]
    # END SOLUTION


@torch.no_grad()
def merge(layer: LoRALinear) -> nn.Linear:
    """A new plain ``nn.Linear`` with weight W' = W + (alpha / r) B A (d_out, d_in) and the
    base layer's bias (if it has one), same dtype and device: its outputs equal ``layer``'s.

    Do not modify ``layer`` (its base weight must stay W).
    """
    # BEGIN SOLUTION
    base = layer.base
    merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
    merged = merged.to(dtype=base.weight.dtype, device=base.weight.device)
    merged.weight.copy_(base.weight + layer.scaling * (layer.B @ layer.A))  # (d_out, d_in)
    if base.bias is not None:
        merged.bias.copy_(base.bias)
    return merged
    # END SOLUTION
