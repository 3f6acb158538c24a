"""Induction heads: the prefix-matching score of each attention head, head ablation, and
the in-context loss on repeated segments (Olsson et al., 2022).

* :func:`prefix_matching_score`: how much attention each head puts, from a token, on the
  token *after* the earlier occurrences of that same token (``[A][B] ... [A]`` attends to
  ``[B]``); 1 for a perfect induction head, :func:`prefix_matching_chance` for uniform
  attention.
* :func:`ablate_heads`: zero (or mean-) ablate chosen heads of
  :class:`~fmbook.nn.MultiHeadAttention` layers while a ``with`` block runs.
* :func:`masked_loss`: the mean next-token loss over chosen target positions.
* :class:`InductionMonitor`: a Lightning callback that records both during training.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

import lightning as L
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from fmbook.nn.attention import MultiHeadAttention

from .. import _checks
from .attention import record_attention
from .hooks import forward_hooks

__all__ = [
    "InductionMonitor",
    "ablate_heads",
    "induction_targets",
    "masked_loss",
    "prefix_matching_chance",
    "prefix_matching_score",
    "previous_token_score",
]


# <show prefix_matching>
def induction_targets(tokens):
    """(B, T) ids -> boolean (B, T, T): key k is a target of query i when the token
    before k is the query's token, earlier in the sequence (x[k-1] == x[i], k-1 < i)."""
    B, T = tokens.shape
    same = tokens[:, :, None] == tokens[:, None, :]  # (B, Ti, Tj): x[i] == x[j]
    earlier = torch.ones(T, T, dtype=torch.bool).tril(-1)  # j < i
    prev = same & earlier  # (B, T, T): j is an earlier occurrence of x[i]
    return F.pad(prev[:, :, :-1], (1, 0))  # shift j -> k = j + 1; k = 0 is never one


def prefix_matching_score(attn, tokens, query_mask=None):
    """attn (B, H, T, T), tokens (B, T) -> (H,): the mean over queries (those in
    query_mask (B, T) that have a target) of the attention on their targets."""
    _check_score(attn, tokens, query_mask)
    targets = induction_targets(tokens)  # (B, T, T)
    has = targets.any(-1)  # (B, T)
    if query_mask is not None:
        has = has & query_mask
    on_target = (attn * targets[:, None]).sum(-1)  # (B, H, T): attention on targets
    return (on_target * has[:, None]).sum((0, 2)) / has.sum()  # (H,)


# </show prefix_matching>


def previous_token_score(attn, query_mask=None):
    """attn (B, H, T, T) -> (H,): the mean attention of each query i >= 1 (those in
    query_mask (B, T), if given) on key i - 1: 1 for a previous-token head."""
    B, H, T, _ = attn.shape
    on_prev = attn.diagonal(offset=-1, dim1=-2, dim2=-1)  # (B, H, T - 1): i -> i - 1
    mask = torch.ones(B, T - 1, dtype=torch.bool)
    if query_mask is not None:
        _checks.bool_mask(query_mask, (B, T), "query_mask")
        mask = query_mask[:, 1:]
    return (on_prev * mask[:, None]).sum((0, 2)) / mask.sum().clamp(min=1)


def prefix_matching_chance(tokens, query_mask=None) -> float:
    """The score of uniform causal attention (every query spreads its weight evenly over
    itself and the keys before it): the baseline a head has to beat."""
    _check_tokens(tokens, query_mask)
    T = tokens.shape[1]
    uniform = torch.ones(T, T).tril() / torch.arange(1, T + 1)[:, None]  # (T, T)
    attn = uniform.expand(tokens.shape[0], 1, T, T)
    return float(prefix_matching_score(attn, tokens, query_mask)[0])


def _check_tokens(tokens, query_mask) -> None:
    if not torch.is_tensor(tokens) or tokens.dim() != 2:
        raise ValueError(f"tokens must be a (B, T) tensor, got {_checks.describe(tokens)}")
    if query_mask is not None:
        _checks.bool_mask(query_mask, tuple(tokens.shape), "query_mask")


def _check_score(attn, tokens, query_mask) -> None:
    _check_tokens(tokens, query_mask)
    B, T = tokens.shape
    if (
        not torch.is_tensor(attn)
        or attn.dim() != 4
        or attn.shape[::2] != (B, T)
        or (attn.shape[-1] != T)
    ):
        raise ValueError(
            f"attn must be (B, H, T, T) = ({B}, H, {T}, {T}) for tokens of shape {(B, T)}, "
            f"got {_checks.describe(attn)}"
        )
    has = induction_targets(tokens).any(-1)
    if query_mask is not None:
        has = has & query_mask
    if not has.any():
        raise ValueError("no query has an earlier occurrence of its token: nothing to score")


# <show ablate>
@contextmanager
def ablate_heads(model, heads, mode="zero"):
    """While the block runs, replace the output of each head in ``heads``
    ({layer name: [head indices]}) by zeros (``mode="zero"``) or by its mean over the
    batch at each position (``mode="mean"``), before the layer's output projection."""
    layers = _ablation_layers(model, heads, mode)

    def before(name, proj, args, kwargs):  # proj's input: the heads side by side
        y = args[0].clone()  # (B, T, C) = (B, T, H * D)
        D = y.shape[-1] // layers[name][0].n_head
        for h in layers[name][1]:
            part = y[..., h * D : (h + 1) * D]  # (B, T, D): head h
            y[..., h * D : (h + 1) * D] = 0.0 if mode == "zero" else part.mean(0)
        return (y, *args[1:]), kwargs

    projs = {name: layer.proj for name, (layer, _) in layers.items()}
    with forward_hooks(projs, lambda *a: None, before):
        yield


# </show ablate>


def _ablation_layers(model, heads, mode) -> dict[str, tuple[MultiHeadAttention, list[int]]]:
    _checks.one_of("mode", mode, ("zero", "mean"))
    return head_layers(model, heads)


def head_layers(model, heads) -> dict[str, tuple[MultiHeadAttention, list[int]]]:
    """Check ``heads`` ({layer name: [head indices]}) against ``model``; return
    {layer name: (layer, [head indices])}."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(heads, Mapping) or not heads:
        raise ValueError(f"heads must be a non-empty {{layer name: [heads]}} dict, got {heads!r}")
    modules = dict(model.named_modules())
    layers = {}
    for name, idx in heads.items():
        layer = modules.get(name)
        if not isinstance(layer, MultiHeadAttention):
            known = [n for n, m in modules.items() if isinstance(m, MultiHeadAttention)]
            raise ValueError(f"{name!r} is not an attention layer of the model; it has {known}")
        idx = [idx] if isinstance(idx, int) else list(idx)
        bad = [h for h in idx if not isinstance(h, int) or not 0 <= h < layer.n_head]
        if bad:
            raise ValueError(f"heads of {name!r} must be in [0, {layer.n_head}), got {bad}")
        layers[name] = (layer, idx)
    return layers


def masked_loss(logits, targets, mask) -> float:
    """Mean cross-entropy (nats) of logits (B, T, V) against targets (B, T) over the
    positions where the boolean mask (B, T) is True."""
    _checks.bool_mask(mask, tuple(targets.shape), "mask")
    if not mask.any():
        raise ValueError("mask selects no position")
    return F.cross_entropy(logits[mask], targets[mask]).item()


class InductionMonitor(L.Callback):
    """Every ``every`` training steps (and at step 0), evaluate the model on one fixed
    batch: the loss on the first and on the second occurrence of the repeated segment
    (``first_mask``, ``second_mask``, (B, T) over the targets) and the prefix-matching
    score of every head (queries: the second occurrence, columns ``"blocks.1.attn.0"``...)
    and its previous-token score (columns ``"prev:blocks.1.attn.0"``...). ``frame()``
    holds the rows."""

    def __init__(self, x, y, first_mask, second_mask, every: int = 25):
        _checks.positive_int("every", every)
        self.x, self.y, self.first, self.second, self.every = (x, y, first_mask, second_mask, every)
        self.rows: list[dict] = []

    def measure(self, model: nn.Module, step: int) -> dict:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad(), record_attention(model) as maps:
            logits, _ = model(self.x.to(device))
        logits = logits.cpu()
        row = {
            "step": step,
            "loss_first": masked_loss(logits, self.y, self.first),
            "loss_second": masked_loss(logits, self.y, self.second),
        }
        for name in maps.names():
            scores = prefix_matching_score(maps[name], self.x, self.second)
            prev = previous_token_score(maps[name])
            for h, (s, p) in enumerate(zip(scores.tolist(), prev.tolist(), strict=True)):
                row[f"{name}.{h}"] = s
                row[f"prev:{name}.{h}"] = p
        model.train(was_training)
        self.rows.append(row)
        return row

    def on_train_start(self, trainer, pl_module):
        if trainer.global_step == 0:
            self.measure(pl_module.model, 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            self.measure(pl_module.model, step)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)
