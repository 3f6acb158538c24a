"""Record what the submodules of a model compute: forward hooks, named outputs, shapes.

>>> import torch.nn as nn
>>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
>>> with record(net) as trace:
...     _ = net(torch.ones(2, 3))
>>> trace.names
['0', '1', '']
>>> tuple(trace["0"].shape)
(2, 4)

:func:`record` registers a forward hook (:func:`~fmbook.interpret.hooks.forward_hooks`)
on each chosen submodule for the duration of a ``with`` block and removes the hooks on exit
(also after an error). Each call of a hooked module appends one :class:`Record` (its name,
its class and a detached copy of its output), so the records come in the order the modules *finish*: a block is recorded
after the sub-layers inside it. A module called several times (token-by-token decoding)
has one record per call; ``trace[name]`` is the latest, ``trace.calls(name)`` all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import torch.nn as nn

from .hooks import forward_hooks


@dataclass
class Record:
    """One call of a hooked module: its name in the model, its class, its output
    (tensors detached and copied; tuples and lists keep their structure)."""

    name: str
    kind: str
    output: Any


def _detach(value: Any) -> Any:
    """A copy of ``value`` that later in-place changes and autograd cannot touch."""
    if torch.is_tensor(value):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(v) for v in value)
    return value


def _shape(value: Any):
    """The shape of a tensor as a tuple, of a tuple/list as a tuple of shapes (None
    for what is not a tensor)."""
    if torch.is_tensor(value):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shape(v) for v in value)
    return None


def _mean_norm(value: Any) -> float:
    """Mean Euclidean norm of the vectors along the last dim of a floating tensor, else NaN."""
    if torch.is_tensor(value) and value.dtype.is_floating_point and value.numel():
        return value.float().norm(dim=-1).mean().item()
    return float("nan")


class Trace:
    """The records of one :func:`record` block, in call order."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    @property
    def names(self) -> list[str]:
        """The recorded module names, each once, in the order of their first call."""
        return list(dict.fromkeys(r.name for r in self.records))

    def calls(self, name: str) -> list[Any]:
        """The outputs of every call of module ``name``, in order."""
        outputs = [r.output for r in self.records if r.name == name]
        if not outputs:
            raise KeyError(f"no module named {name!r} was recorded; recorded: {self.names}")
        return outputs

    def __getitem__(self, name: str) -> Any:
        """The output of the latest call of module ``name``."""
        return self.calls(name)[-1]

    def table(self) -> pd.DataFrame:
        """One row per call: module name, class, output shape, dtype and the mean norm of
        the output's last-dim vectors (NaN for non-float outputs)."""
        rows = [
            {
                "module": r.name or "(model)",
                "class": r.kind,
                "shape": _shape(r.output),
                "dtype": str(r.output.dtype).removeprefix("torch.")
                if torch.is_tensor(r.output)
                else "",
                "mean norm": _mean_norm(r.output),
            }
            for r in self.records
        ]
        return pd.DataFrame(rows, columns=["module", "class", "shape", "dtype", "mean norm"])


@contextmanager
def record(model: nn.Module, names: Iterable[str] | None = None) -> Iterator[Trace]:
    """Record the outputs of ``model``'s submodules while the ``with`` block runs.

    names: module names as in ``model.named_modules()`` (``"blocks.0.attn"``; ``""`` is the
    model itself); None hooks every module. Yields a :class:`Trace` that fills as the model
    runs; the hooks are removed when the block ends.
    """
    trace = Trace()

    def save(name, module, args, kwargs, output):
        trace.records.append(Record(name, type(module).__name__, _detach(output)))

    with forward_hooks(_select(model, names), save):
        yield trace


def _select(model: nn.Module, names: Iterable[str] | None) -> dict[str, nn.Module]:
    """The modules to hook: all of ``model.named_modules()`` (model itself as ``""``), or
    those in ``names`` (checked)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    if names is None:
        return modules
    if isinstance(names, str):
        raise ValueError(f"names must be an iterable of module names, not the string {names!r}")
    names = list(names)
    missing = [n for n in names if n not in modules]
    if missing:
        known = [n for n in modules if n][:12]
        raise ValueError(
            f"names holds modules that the model does not have: {missing}; "
            f"it has e.g. {known}{' ...' if len(modules) > 13 else ''}"
        )
    return {n: modules[n] for n in names}


__all__ = ["Record", "Trace", "record"]
