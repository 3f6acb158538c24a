"""Helpers for the book's notebooks: show library source, report the environment."""

from __future__ import annotations

import inspect
import platform
import textwrap

import torch

from . import __version__, profile
from .utils import seed_everything


def source(obj) -> str:
    """The source code of a function, class or module of the package, dedented."""
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as err:
        raise ValueError(f"cannot show the source of {obj!r}: {err}") from None


def show_source(obj, *, lines: tuple[int, int] | None = None):
    """Display the real source of ``obj`` in a notebook (instead of pasting a copy).

    ``lines=(start, stop)`` shows only that slice of the source's lines (0-based, stop
    exclusive). Returns an IPython ``Markdown`` object rendered as a Python code block.
    """
    from IPython.display import Markdown

    text = source(obj)
    if lines is not None:
        start, stop = lines
        text = "\n".join(text.splitlines()[start:stop])
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    header = f"# {module}.{name}" if module and module != name else f"# {name}"
    return Markdown(f"```python\n{header}\n{text.rstrip()}\n```")


def environment() -> dict[str, str]:
    """What this notebook runs on: versions, device and the active profile."""
    import lightning

    if torch.cuda.is_available():
        dev = f"cuda ({torch.cuda.get_device_name(0)})"
    else:
        dev = f"cpu ({torch.get_num_threads()} threads)"
    return {
        "fmbook": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "device": dev,
        "profile": profile.name(),
    }


def setup(seed: int = 1337, *, quiet: bool = False) -> None:
    """Prepare a chapter: seed everything, set the plot theme, quieten Lightning's banners,
    and (unless ``quiet``) print the environment report."""
    import logging
    import warnings

    import lightning  # noqa: F401  (imported first: importing it resets its loggers' levels)

    from .viz import set_theme

    seed_everything(seed)
    set_theme()
    # Book output shows results, not Lightning's notes about hardware, tips and summaries.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    if not quiet:
        print("  ".join(f"{k}: {v}" for k, v in environment().items()))
