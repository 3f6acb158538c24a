"""Record the attention weights of a model's :class:`~fmbook.nn.MultiHeadAttention` layers.

The layers compute attention through the fused ``sdpa`` path, which returns only the output,
not the weights. :func:`record_attention` attaches forward hooks
(:func:`~fmbook.interpret.hooks.forward_hooks`) that take each layer's
inputs and recompute the weights with the explicit
:func:`~fmbook.nn.scaled_dot_product_attention` (same projections, rotary positions, masks
and key/value cache), without changing what the model computes::

    with record_attention(model) as maps:
        model(src, tgt_in)
    maps["decoder.0.cross_attn"]        # (B, H, Tq, Tk), the last call of that layer
    maps.calls["decoder.0.cross_attn"]  # every call, in order

Weights are recorded without dropout (as at evaluation time): in ``eval()`` mode
``proj(concat_h(weights_h @ v_h))`` reproduces the layer's output.
"""

from __future__ import annotations

import inspect as _pyinspect
from contextlib import contextmanager

import torch
import torch.nn as nn

from fmbook.nn.attention import MultiHeadAttention, scaled_dot_product_attention

from .. import _checks
from .hooks import forward_hooks

__all__ = ["AttentionMaps", "attention_inputs", "record_attention"]


class AttentionMaps:
    """Recorded weights by module name: ``maps[name]`` is the last call's (B, H, Tq, Tk)
    tensor, ``maps.calls[name]`` the list of all calls (detached, on the CPU)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[torch.Tensor]] = {}

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.calls:
            raise KeyError(
                f"no attention recorded for {name!r}; recorded: {sorted(self.calls) or 'none'}"
            )
        return self.calls[name][-1]

    def __contains__(self, name: str) -> bool:
        return name in self.calls

    def __len__(self) -> int:
        return len(self.calls)

    def names(self) -> list[str]:
        """Names of the layers that recorded at least one call, in recording order."""
        return list(self.calls)

    def add(self, name: str, weights: torch.Tensor) -> None:
        self.calls.setdefault(name, []).append(weights.detach().cpu())


_FORWARD = _pyinspect.signature(MultiHeadAttention.forward)


def attention_inputs(
    module: MultiHeadAttention, args: tuple, kwargs: dict, *, cache_before: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
    """q (B, H, Tq, D), k, v (B, H, Tk, D), the checked 4-D mask (or None) and ``causal`` of
    one call ``module(*args, **kwargs)``, recomputed from its inputs.

    With a key/value cache, call it *after* the forward pass (the cache then holds all keys
    and values) and pass ``cache_before``, the cache length before the call.
    """
    if not isinstance(module, MultiHeadAttention):
        raise ValueError(f"module must be a MultiHeadAttention, got {type(module).__name__}")
    bound = _FORWARD.bind(module, *args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    x, context, mask, causal, cache = a["x"], a["context"], a["mask"], a["causal"], a["cache"]
    B, Tq = x.shape[0], x.shape[1]
    q, k, v = module._project(x, context)  # (B, H, Tq, D), (B, H, Tk_new, D) x 2
    past = 0
    if cache is not None:
        if cache_before is None:
            raise ValueError("cache_before (the cache length before the call) is required")
        past = cache_before
    if module.rotary is not None:
        q, k = module.rotary(q, k, torch.arange(past, past + Tq, device=x.device))
    if cache is not None:
        k, v = cache.k, cache.v  # (B, H, Tk, D): the cached positions and the new ones
    _checks.attention_mask(mask, B, module.n_head, Tq, k.shape[-2])
    mask = module._as_4d(mask)  # as attention applies it
    return q, k, v, mask, causal


@contextmanager
def record_attention(model: nn.Module, names=None):
    """Record the attention weights of every :class:`MultiHeadAttention` in ``model`` (or of
    those whose names are in ``names``) while the block runs; yields an
    :class:`AttentionMaps`. The hooks are removed on exit."""
    maps, cache_before = AttentionMaps(), {}

    def before(name, module, args, kwargs):  # note the cache length before the call
        cache = _FORWARD.bind(module, *args, **kwargs).arguments.get("cache")
        cache_before[name] = None if cache is None else len(cache)

    def after(name, module, args, kwargs, output):  # recompute the weights from the inputs
        with torch.no_grad():
            q, k, v, mask, causal = attention_inputs(
                module, args, kwargs, cache_before=cache_before[name]
            )
            _, weights = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)
        maps.add(name, weights)  # (B, H, Tq, Tk)

    with forward_hooks(_attention_layers(model, names), after, before):
        yield maps


def _attention_layers(model: nn.Module, names) -> dict[str, MultiHeadAttention]:
    """The attention layers of ``model`` to hook: all of them, or those in ``names`` (checked)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layers = {n: m for n, m in model.named_modules() if isinstance(m, MultiHeadAttention)}
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in layers]
        if unknown:
            raise ValueError(
                f"names must be attention layers of the model; unknown: {unknown}; "
                f"the model has {sorted(layers)}"
            )
        layers = {n: layers[n] for n in names}
    if not layers:
        raise ValueError("model has no MultiHeadAttention layer to record")
    return layers
