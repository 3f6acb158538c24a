"""One forward-hook recorder: call a function after (and optionally before) each forward
pass of chosen submodules while a ``with`` block runs.

>>> outputs = []
>>> with forward_hooks({"ln_f": gpt.ln_f}, lambda name, module, args, kwargs, out: outputs.append(out)):
...     gpt(ids)

Everything in :mod:`fmbook.interpret` (:func:`~fmbook.interpret.trace.record`,
:func:`~fmbook.interpret.attention.record_attention`) and the probes'
:func:`~fmbook.adapt.probes.module_output` are built on it. The hooks are removed when the
block ends, also after an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial

import torch.nn as nn

After = Callable[..., None]  # after(name, module, args, kwargs, output)
Before = Callable[..., None]  # before(name, module, args, kwargs)


@contextmanager
def forward_hooks(
    modules: Mapping[str, nn.Module], after: After, before: Before | None = None
) -> Iterator[None]:
    """While the block runs, call ``after(name, module, args, kwargs, output)`` when each of
    ``modules`` (``{name: module}``) finishes a forward pass, and ``before(name, module,
    args, kwargs)`` when it starts one; remove the hooks on exit."""
    handles = []
    for name, module in modules.items():
        if before is not None:
            handles.append(
                module.register_forward_pre_hook(partial(before, name), with_kwargs=True)
            )
        handles.append(module.register_forward_hook(partial(after, name), with_kwargs=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


__all__ = ["forward_hooks"]
