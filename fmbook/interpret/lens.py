"""The logit lens (nostalgebraist, 2020): read the residual stream after every block with
the model's own final norm and unembedding, as if the model stopped there.

Works for any model with ``blocks`` (a list of residual blocks, each returning the new
stream), ``ln_f`` and ``lm_head``: :class:`~fmbook.models.GPT` and
:class:`~fmbook.models.AttnOnlyTransformer`.

>>> stream = residual_stream(gpt, ids)        # (L + 1, B, T, C): embeddings, block 0, ...
>>> logits = logit_lens(gpt, stream)          # (L + 1, B, T, V); logits[-1] is gpt(ids)[0]
>>> lens_table(gpt, ids, targets)             # loss and accuracy at each depth
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks
from .hooks import forward_hooks

__all__ = ["lens_table", "logit_lens", "residual_stream"]


@torch.no_grad()
def residual_stream(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Run ``model(ids)``; return the residual stream before the first block (the
    embeddings) and after each block, stacked: (L + 1, B, T, C)."""
    blocks = _check_lens_model(model)
    states = {}

    def first_input(name, block, args, kwargs):  # the embeddings, as block 0 reads them
        states.setdefault("embed", args[0].detach().clone())

    def output(name, block, args, kwargs, out):
        states[name] = out.detach().clone()

    hooked = {str(i): b for i, b in enumerate(blocks)}
    with forward_hooks({"embed": blocks[0]}, lambda *a: None, first_input):
        with forward_hooks(hooked, output):
            model(ids)
    return torch.stack([states["embed"]] + [states[str(i)] for i in range(len(blocks))])


# <show lens>
def logit_lens(model, stream):
    """stream (..., C) -> logits (..., V): the final norm and the unembedding applied to
    a residual stream from any depth."""
    return model.lm_head(model.ln_f(stream))


@torch.no_grad()
def lens_table(model, ids, targets):
    """The next-token loss and accuracy of the logit lens after each block (depth 0: the
    embeddings alone) on ids (B, T) with targets (B, T); targets of -100 are skipped."""
    _check_targets(ids, targets)
    logits = logit_lens(model, residual_stream(model, ids))  # (L + 1, B, T, V)
    keep = targets != -100  # (B, T)
    rows = []
    for depth, z in enumerate(logits):
        z, y = z[keep], targets[keep]  # (N, V), (N,)
        rows.append(
            {
                "depth": depth,
                "loss": F.cross_entropy(z, y).item(),
                "accuracy": (z.argmax(-1) == y).float().mean().item(),
            }
        )
    return pd.DataFrame(rows).set_index("depth")


# </show lens>


def _check_lens_model(model) -> nn.ModuleList:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    missing = [a for a in ("blocks", "ln_f", "lm_head") if not hasattr(model, a)]
    if missing or not len(model.blocks):
        raise ValueError(
            f"the logit lens needs a model with blocks, ln_f and lm_head (a GPT or an "
            f"AttnOnlyTransformer); {type(model).__name__} lacks {missing or ['blocks']}"
        )
    return model.blocks


def _check_targets(ids, targets) -> None:
    if not torch.is_tensor(targets) or targets.shape != ids.shape:
        raise ValueError(
            f"targets must have the shape of ids {tuple(ids.shape)}, got "
            f"{_checks.describe(targets)}"
        )
