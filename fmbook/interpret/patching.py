"""Activation patching: run the model on a *corrupted* input, but with one component's
activation taken from the run on the *clean* input, and measure how much of the clean
behaviour comes back (Vig et al., 2020; Meng et al., 2022; Wang et al., 2023).

* :func:`head_outputs` records each attention head's output (the input of the layer's
  output projection, split by head) and :func:`patch_heads` writes chosen heads back in,
  at all positions or at chosen ones.
* :func:`module_outputs` and :func:`patch_outputs` do the same for whole modules (a block's
  output is the residual stream after it).
* :func:`normalised_effect` puts a patched metric on the scale 0 (the corrupted run) to 1
  (the clean run); :func:`head_patching_table` patches every head, one at a time.

>>> clean = head_outputs(model, clean_ids)                       # {layer: (B, T, H, D)}
>>> with patch_heads(model, clean, {"blocks.1.attn": [3]}):
...     patched = metric(model(corrupt_ids)[0])
>>> normalised_effect(patched, corrupt=metric(model(corrupt_ids)[0]),
...                   clean=metric(model(clean_ids)[0]))

All patching happens through forward hooks (:func:`~fmbook.interpret.hooks.forward_hooks`);
the weights are never touched and the hooks are removed when the block ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import contextmanager

import pandas as pd
import torch
import torch.nn as nn

from fmbook.nn.attention import MultiHeadAttention

from .. import _checks
from .hooks import forward_hooks
from .induction import head_layers
from .trace import _select

__all__ = [
    "head_outputs",
    "head_patching_table",
    "module_outputs",
    "normalised_effect",
    "patch_heads",
    "patch_outputs",
]


@torch.no_grad()
def head_outputs(model: nn.Module, ids: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
    """Run ``model(ids)``; return {layer name: (B, T, H, D)}, the output of every head of
    every :class:`~fmbook.nn.MultiHeadAttention` (or of those named in ``layers``) before
    the layer's output projection mixes them."""
    attn = {n: m for n, m in model.named_modules() if isinstance(m, MultiHeadAttention)}
    if layers is not None:
        attn = {n: m for n, m in attn.items() if n in set(layers)}
        _known(layers, attn, "attention layers")
    out = {}

    def save(name, proj, args, kwargs):  # proj's input: (B, T, H * D)
        y = args[0]
        out[name] = y.detach().clone().unflatten(-1, (attn[name].n_head, -1))

    with forward_hooks({n: m.proj for n, m in attn.items()}, lambda *a: None, save):
        model(ids)
    return out


# <show patch_heads>
@contextmanager
def patch_heads(model, source, heads, positions=None):
    """While the block runs, the heads in ``heads`` ({layer name: [head indices]}) output
    what they output in another run, ``source`` ({layer: (B, T, H, D)}, from
    :func:`head_outputs`): at every position, or only at ``positions`` (indices of T)."""
    layers = head_layers(model, heads)
    _check_source(source, layers, positions)

    def before(name, proj, args, kwargs):  # proj's input: the heads side by side
        y = args[0].unflatten(-1, (layers[name][0].n_head, -1)).clone()  # (B, T, H, D)
        _check_like(name, source[name], y, positions)
        pos = slice(None) if positions is None else positions
        for h in layers[name][1]:
            y[:, pos, h] = source[name][:, pos, h].to(y)  # the other run's head output
        return (y.flatten(-2), *args[1:]), kwargs

    projs = {name: layer.proj for name, (layer, _) in layers.items()}
    with forward_hooks(projs, lambda *a: None, before):
        yield


# </show patch_heads>


@torch.no_grad()
def module_outputs(model: nn.Module, ids: torch.Tensor, names) -> dict[str, torch.Tensor]:
    """Run ``model(ids)``; return {name: output} of the named submodules (each must return
    one tensor and run once), e.g. ``"blocks.0"``: the residual stream after block 0."""
    out = {}

    def save(name, module, args, kwargs, output):
        if name in out:
            raise ValueError(f"module {name!r} ran more than once in one forward pass")
        if not torch.is_tensor(output):
            raise ValueError(f"module {name!r} returns {type(output).__name__}, not a tensor")
        out[name] = output.detach().clone()

    with forward_hooks(_select(model, names), save):
        model(ids)
    return out


@contextmanager
def patch_outputs(model, source, positions=None):
    """While the block runs, each module named in ``source`` ({name: (B, T, ...)}, from
    :func:`module_outputs`) returns its output from that other run, at every position or
    only at ``positions`` (indices of T); the rest of its output is left as computed."""
    if not isinstance(source, Mapping) or not source:
        raise ValueError(f"source must be a non-empty {{module name: tensor}} dict, got {source!r}")
    modules = _select(model, list(source))

    def after(name, module, args, kwargs, output):
        _check_like(name, source[name], output, positions)
        patched = output.clone()
        pos = slice(None) if positions is None else positions
        patched[:, pos] = source[name][:, pos].to(output)
        return patched

    with forward_hooks(modules, after):
        yield


def normalised_effect(patched, corrupt, clean):
    """``(patched - corrupt) / (clean - corrupt)``: 0 when patching changes nothing, 1 when
    it restores the clean value of the metric (any metric: a loss, a logit difference)."""
    patched, corrupt, clean = (
        torch.as_tensor(v, dtype=torch.float64) for v in (patched, corrupt, clean)
    )
    gap = clean - corrupt
    if (gap.abs() < 1e-12).any():
        raise ValueError("clean and corrupt runs give the same metric: nothing to normalise by")
    out = (patched - corrupt) / gap
    return out.item() if out.dim() == 0 else out


@torch.no_grad()
def head_patching_table(
    model: nn.Module,
    clean_ids: torch.Tensor,
    corrupt_ids: torch.Tensor,
    metric: Callable[[torch.Tensor], float],
    positions=None,
) -> pd.DataFrame:
    """Patch every head, one at a time, from the clean run into the corrupted run.

    ``metric(logits) -> float``. Returns one row per head (index ``"blocks.1.attn.3"``):
    the metric of the patched run and its :func:`normalised_effect`; the frame's
    ``attrs`` hold the clean and the corrupted metric."""
    if clean_ids.shape != corrupt_ids.shape:
        raise ValueError(
            f"clean and corrupt ids must have the same shape, got {tuple(clean_ids.shape)} "
            f"and {tuple(corrupt_ids.shape)}"
        )
    source = head_outputs(model, clean_ids)
    clean, corrupt = float(metric(model(clean_ids)[0])), float(metric(model(corrupt_ids)[0]))
    rows = []
    for name, y in source.items():
        for h in range(y.shape[2]):
            with patch_heads(model, source, {name: [h]}, positions):
                value = float(metric(model(corrupt_ids)[0]))
            effect = normalised_effect(value, corrupt, clean)
            rows.append({"head": f"{name}.{h}", "metric": value, "effect": effect})
    table = pd.DataFrame(rows).set_index("head")
    table.attrs.update(clean=clean, corrupt=corrupt)
    return table


# ---------------------------------------------------------------------------- checks


def _known(names, found, what) -> None:
    if isinstance(names, str):
        names = [names]
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"unknown {what}: {missing}")


def _check_source(source, layers, positions) -> None:
    if not isinstance(source, Mapping):
        raise ValueError(
            f"source must be a {{layer: (B, T, H, D)}} dict, got {_checks.describe(source)}"
        )
    for name, (layer, _) in layers.items():
        y = source.get(name)
        if not torch.is_tensor(y) or y.dim() != 4 or y.shape[2] != layer.n_head:
            raise ValueError(
                f"source[{name!r}] must be a (B, T, {layer.n_head}, D) tensor of head outputs "
                f"(from head_outputs), got {_checks.describe(y)}"
            )


def _check_like(name, value, output, positions) -> None:
    if not torch.is_tensor(output):
        raise ValueError(f"module {name!r} returns {type(output).__name__}, not a tensor")
    if not torch.is_tensor(value) or value.shape != output.shape:
        raise ValueError(
            f"source[{name!r}] must have the shape of the module's output {tuple(output.shape)}, "
            f"got {_checks.describe(value)}; record it on inputs of the same shape"
        )
