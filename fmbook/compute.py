"""What a model costs: a calculator for parameters, FLOPs, memory, time, energy and CO2.

The calculator takes the book's :class:`~fmbook.models.gpt.GPTConfig` (or a
:class:`~fmbook.models.gpt.GPT`) or a plain description of a large decoder-only model,
:func:`large_model` (layers, width, heads, vocabulary, context). It does not derive
anything new: parameter and FLOP counts are the closed forms of
:mod:`fmbook.models.counting` (``6 N`` per token plus attention's ``12 L T C``), memory is
:func:`fmbook.scaling.training_memory` with :func:`fmbook.scaling.gpt_activation_bytes`.
On top of them it adds

* :func:`kv_cache_bytes` -- the keys and values a generating model keeps;
* :func:`training_seconds` -- time at a given utilisation (MFU) of a device's peak;
* :func:`energy_kwh` and :func:`co2_tonnes` -- energy and emissions from device-hours,
  power, the data centre's PUE and the grid's carbon intensity;

and the measurements to check it against this machine: :func:`measure_step` (FLOPs with
``torch.utils.flop_counter.FlopCounterMode``, seconds and peak memory of one training
step) and :func:`measure_peak_flops` (the FLOP/s of a large matrix multiply).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch
from torch import nn

from . import _checks
from .book import native_stderr_silenced
from .efficiency import timings
from .models import counting
from .models.gpt import GPT, GPTConfig
from .nn import swiglu_hidden
from .scaling import MemoryEstimate, gpt_activation_bytes, measure_memory, training_memory

__all__ = [
    "Shape",
    "co2_tonnes",
    "energy_kwh",
    "flops_per_token",
    "kv_cache_bytes",
    "large_model",
    "measure_peak_flops",
    "measure_step",
    "n_params",
    "shape",
    "tensor_bytes",
    "train_flops",
    "training_memory_of",
    "training_seconds",
]


@dataclasses.dataclass(frozen=True)
class Shape:
    """A decoder-only Transformer as the calculator sees it: a :class:`GPTConfig` (its
    ``max_len`` is the training context) and, if the MLP is not the default width (4C;
    SwiGLU: :func:`~fmbook.nn.swiglu_hidden`), its hidden width ``d_ff``."""

    config: GPTConfig
    d_ff: int | None = None
    name: str = ""


def large_model(
    n_layers: int,
    d_model: int,
    n_heads: int,
    vocab: int,
    context: int,
    *,
    d_ff: int | None = None,
    name: str = "",
    **options,
) -> Shape:
    """A model described by its sizes, e.g. GPT-3 175B:
    ``large_model(96, 12288, 96, 50257, 2048)``. ``options`` are the other fields of
    :class:`GPTConfig` (``mlp="swiglu"``, ``norm="rms"``, ``positions="rope"``,
    ``bias=False``, ``tie_embeddings=False`` for a LLaMA). Only numbers are stored: nothing
    the size of the model is allocated."""
    cfg = GPTConfig(
        vocab_size=vocab,
        max_len=context,
        n_layer=n_layers,
        n_head=n_heads,
        d_model=d_model,
        **options,
    )
    if d_ff is not None:
        _checks.positive_int("d_ff", d_ff)
    return Shape(cfg, d_ff, name)


def shape(model) -> Shape:
    """The :class:`Shape` of a GPT, a GPTConfig or a Shape."""
    if isinstance(model, Shape):
        return model
    if isinstance(model, GPT):
        model = model.config
    if isinstance(model, GPTConfig):
        return Shape(model)
    raise ValueError(
        f"model must be a GPT, a GPTConfig or a Shape (large_model), got {type(model).__name__}"
    )


def _mlp_correction(s: Shape, bias: bool) -> int:
    """Parameters one MLP has beyond the default width's (0 when d_ff is the default)."""
    cfg = s.config
    if s.d_ff is None:
        return 0
    default = swiglu_hidden(cfg.d_model) if cfg.mlp == "swiglu" else 4 * cfg.d_model
    mlp = counting.mlp_params
    return mlp(cfg.d_model, mlp=cfg.mlp, hidden=s.d_ff, bias=bias) - mlp(
        cfg.d_model, mlp=cfg.mlp, hidden=default, bias=bias
    )


def n_params(model) -> int:
    """All parameters: :func:`~fmbook.models.counting.gpt_params` (plus the difference an
    MLP of width ``d_ff`` makes in every layer)."""
    s = shape(model)
    return counting.gpt_params(s.config) + s.config.n_layer * _mlp_correction(s, s.config.bias)


# <show flops>
def flops_per_token(model, context: int | None = None, *, training: bool = True) -> int:
    """FLOPs per token on sequences of ``context`` tokens (default: the model's context):
    ``6 N_mm + 12 L T C`` to train, a third of it forward only
    (:func:`~fmbook.models.counting.gpt_flops_per_token`)."""
    s = shape(model)
    T = s.config.max_len if context is None else context
    per_token = counting.gpt_flops_per_token(s.config, T, training=training)
    extra = s.config.n_layer * _mlp_correction(s, bias=False)  # weights met by a token
    return per_token + (6 if training else 2) * extra


def train_flops(model, n_tokens: float, context: int | None = None) -> float:
    """FLOPs to train on ``n_tokens`` tokens: ``n_tokens * flops_per_token``."""
    _positive_number("n_tokens", n_tokens)
    return float(n_tokens) * flops_per_token(model, context)


def training_seconds(flops: float, peak_flops: float, mfu: float, n_devices: int = 1) -> float:
    """Wall-clock seconds for ``flops`` on ``n_devices`` devices of ``peak_flops`` FLOP/s
    each, running at model FLOPs utilisation ``mfu`` (the fraction of the peak the model's
    own FLOPs achieve): ``flops / (n_devices * peak_flops * mfu)``."""
    _positive_number("flops", flops)
    _positive_number("peak_flops", peak_flops)
    _utilisation(mfu)
    _checks.positive_int("n_devices", n_devices)
    return flops / (n_devices * peak_flops * mfu)


# </show flops>


# <show memory>
def training_memory_of(
    model,
    batch: int,
    context: int | None = None,
    *,
    bytes_per_param: int = 4,
    optimizer_states: int = 2,
    checkpointing: bool = False,
) -> MemoryEstimate:
    """A training step's memory: weights, gradients, AdamW's two moments
    (:func:`~fmbook.scaling.training_memory`) and the activations of ``batch`` sequences
    of ``context`` tokens (:func:`~fmbook.scaling.gpt_activation_bytes`, exact for the
    book's GPT, an estimate for other MLPs)."""
    s = shape(model)
    cfg = s.config
    T = cfg.max_len if context is None else context
    activations = gpt_activation_bytes(
        batch,
        T,
        cfg.d_model,
        cfg.n_layer,
        cfg.n_head,
        cfg.vocab_size,
        bytes_per_value=bytes_per_param,
        checkpointing=checkpointing,
    )
    return training_memory(
        n_params(s),
        activations,
        bytes_per_param=bytes_per_param,
        optimizer_states=optimizer_states,
    )


def kv_cache_bytes(model, batch: int, seq_len: int, *, bytes_per_value: int = 4) -> int:
    """The key/value cache of ``batch`` sequences of ``seq_len`` tokens: every layer keeps
    a key and a value of width C per token, ``2 L B T C`` values."""
    cfg = shape(model).config
    _checks.positive_ints(batch=batch, seq_len=seq_len, bytes_per_value=bytes_per_value)
    return 2 * cfg.n_layer * batch * seq_len * cfg.d_model * bytes_per_value


# </show memory>


# <show energy>
def energy_kwh(device_hours: float, watts: float, pue: float) -> float:
    """Energy drawn from the grid: device-hours times the average power per device (W),
    times the data centre's power usage effectiveness (PUE >= 1: cooling, power supply)."""
    _positive_number("device_hours", device_hours)
    _positive_number("watts", watts)
    if not (isinstance(pue, (int, float)) and pue >= 1):
        raise ValueError(f"pue must be a number >= 1, got {pue!r}")
    return device_hours * watts * pue / 1000


def co2_tonnes(kwh: float, grams_per_kwh: float) -> float:
    """Emissions in tonnes of CO2-equivalent: energy times the grid's carbon intensity."""
    _positive_number("kwh", kwh)
    _positive_number("grams_per_kwh", grams_per_kwh)
    return kwh * grams_per_kwh / 1e6


# </show energy>


# --- measuring --------------------------------------------------------------------------


def measure_peak_flops(
    sizes: tuple[int, ...] = (256, 512, 1024), repeats: int = 5, dtype=torch.float32
) -> float:
    """A measured peak: the best FLOP/s of products of two ``n x n`` matrices (``2 n^3``
    FLOPs each), over the ``sizes`` n and ``repeats`` timed products of each (after one
    warm-up), with the threads torch uses now. On a CPU the best size depends on its
    caches (and on what else runs), hence several."""
    if isinstance(sizes, int):
        sizes = (sizes,)
    _checks.positive_ints(repeats=repeats, **{f"sizes[{i}]": n for i, n in enumerate(sizes)})
    if not sizes:
        raise ValueError("sizes must name at least one matrix size")
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, dtype=dtype)
        b = torch.randn(n, n, dtype=dtype)
        a @ b  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def measure_step(step: Callable[[], object], repeats: int = 3) -> dict[str, float]:
    """One call of ``step()`` (a training step) measured three ways: the FLOPs torch's
    ``FlopCounterMode`` counts (``"flops"``), the median seconds of ``repeats`` further
    calls (``"seconds"``) and the peak bytes its tensors held (``"peak_bytes"``,
    :func:`~fmbook.scaling.measure_memory`); ``"flop_per_s"`` is their quotient.

    The FLOPs are counted with attention's plain (math) implementation: the counter has
    no formula for the fused CPU attention kernel and would silently count its FLOPs as
    zero. Time and memory are measured with the default kernels, those training uses."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    _checks.positive_int("repeats", repeats)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        step()
    times = timings(step, repeats)
    seconds = sorted(times)[len(times) // 2]
    flops = counter.get_total_flops()
    with native_stderr_silenced():  # the profiler's start/stop lines, from C++
        peak = measure_memory(step)["peak"]
    return {"flops": flops, "seconds": seconds, "flop_per_s": flops / seconds, "peak_bytes": peak}


def tensor_bytes(tensors) -> int:
    """Bytes held by ``tensors`` (any nested lists/tuples of tensors, or objects with
    tensor attributes ``k`` and ``v``, such as a :class:`~fmbook.nn.KVCache`)."""
    if torch.is_tensor(tensors):
        return tensors.numel() * tensors.element_size()
    if isinstance(tensors, (list, tuple)):
        return sum(tensor_bytes(t) for t in tensors)
    if hasattr(tensors, "k") and hasattr(tensors, "v"):
        return sum(tensor_bytes(t) for t in (tensors.k, tensors.v) if t is not None)
    if isinstance(tensors, nn.Module):
        return sum(tensor_bytes(p) for p in tensors.parameters())
    raise ValueError(f"cannot count the bytes of a {type(tensors).__name__}")


# --- checks -----------------------------------------------------------------------------


def _positive_number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _utilisation(mfu) -> None:
    if isinstance(mfu, bool) or not isinstance(mfu, (int, float)) or not 0 < mfu <= 1:
        raise ValueError(f"mfu (utilisation) must be in (0, 1], got {mfu!r}")
