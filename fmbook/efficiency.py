"""Making a trained model cheaper to run: int8 quantization, and how to measure the gain.

* :func:`quantize_int8` -- post-training dynamic quantization of every ``nn.Linear``
  (weights stored as int8 with one scale per matrix, activations quantized on the fly);
* :func:`serialized_bytes` -- the size of a model's saved state;
* :func:`latency` -- seconds per call of a function, several repeats, with an interval.

Distillation, the other way to a cheaper model, is a training task:
:class:`fmbook.tasks.DistilledLM`.
"""

from __future__ import annotations

import copy
import io
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from . import _checks
from .stats import Interval, mean_interval

__all__ = ["latency", "quantize_int8", "serialized_bytes"]


def quantize_int8(model: nn.Module, skip: tuple[str, ...] = ("lm_head",)) -> nn.Module:
    """A copy of ``model`` (in eval mode) whose ``nn.Linear`` layers are dynamically
    quantized to int8 (:func:`torch.ao.quantization.quantize_dynamic`), except those
    named in ``skip`` (a GPT's output head shares its matrix with the token embeddings,
    which stay in fp32). The original is left unchanged."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name not in skip
    ]
    if not names:
        raise ValueError("model has no nn.Linear layer to quantize")
    # torch.ao.quantization is deprecated in favour of torchao (a separate package); it
    # still works in torch 2.13 but warns on import and when it creates quantized
    # tensors. The warnings say nothing about this model, so we silence them here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

        spec = {name: default_dynamic_qconfig for name in names}
        return quantize_dynamic(copy.deepcopy(model).eval(), spec, dtype=torch.qint8)


def serialized_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what a checkpoint of the weights costs
    on disk (a tied matrix is stored once)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # quantized tensors, see above
        torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def timings(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn()``, one per call."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def latency(fn: Callable[[], object], repeats: int = 10, warmup: int = 2) -> Interval:
    """Seconds per call of ``fn()``: ``warmup`` calls, then the mean of ``repeats`` timed
    calls with a 95% t-interval (:func:`fmbook.stats.mean_interval`)."""
    _checks.positive_int("repeats", repeats)
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2 for an interval, got {repeats}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    for _ in range(warmup):
        fn()
    return mean_interval(timings(fn, repeats))
