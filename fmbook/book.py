"""Helpers for the book's notebooks: show library source, report the environment."""

from __future__ import annotations

import contextlib
import inspect
import os
import platform
import re
import sys
import textwrap

import torch

from . import __version__, profile
from .utils import seed_everything

# A part of the source the book shows on its own is marked by two full-line comments:
#     # <show name>
#     ...the lines shown...
#     # </show name>
_MARKER = re.compile(r"^\s*# <(/?)show ([A-Za-z0-9_-]+)>\s*$")


def _parts(text: str, where: str) -> tuple[str, dict[str, str]]:
    """The text without its marker lines, and each marked part (its lines, dedented)."""
    kept: list[str] = []
    starts: dict[str, int] = {}  # open part -> index in kept of its first line
    parts: dict[str, str] = {}
    for line in text.splitlines():
        match = _MARKER.match(line)
        if match is None:
            kept.append(line)
            continue
        closing, name = match.groups()
        if not closing:
            if name in starts or name in parts:
                raise ValueError(f"{where}: the part {name!r} is marked twice")
            starts[name] = len(kept)
        elif name not in starts:
            raise ValueError(f"{where}: '# </show {name}>' has no '# <show {name}>' before it")
        else:
            parts[name] = textwrap.dedent("\n".join(kept[starts.pop(name) :]))
    if starts:
        raise ValueError(f"{where}: the part(s) {sorted(starts)} are never closed (# </show ...>)")
    return "\n".join(kept) + "\n", parts


def source(obj, part: str | None = None) -> str:
    """The source code of a function, class or module of the package, dedented, without
    its ``# <show name>`` / ``# </show name>`` marker comments; with ``part``, only the
    lines between that pair of markers."""
    try:
        text = textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as err:
        raise ValueError(f"cannot show the source of {obj!r}: {err}") from None
    where = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    text, parts = _parts(text, where)
    if part is None:
        return text
    if part not in parts:
        raise ValueError(
            f"{where} has no part {part!r} marked '# <show {part}>'; "
            f"its parts: {sorted(parts) or 'none'}"
        )
    return parts[part]


FOLD_AFTER = 40  # lines; longer listings are folded


def fold_listing(code: str) -> str:
    """A fenced listing (```` ```python ```` + ``# title`` line + code) folded behind a toggle
    (HTML ``<details>``) when the code is longer than ``FOLD_AFTER`` lines."""
    fence, title, *body = code.rstrip().split("\n")
    lines = len(body) - 1  # without the closing fence
    if lines <= FOLD_AFTER or code.startswith("<details>"):
        return code
    what = re.sub(r" \([^)]*\)$", "", title.removeprefix("# "))
    summary = f"The source of <code>{what}</code> ({lines} lines): click to show"
    return f"<details>\n<summary>{summary}</summary>\n\n{code}\n\n</details>"


def show_source(obj, *, part: str | None = None):
    """Display the real source of ``obj`` in a notebook (instead of pasting a copy).

    The whole function, class or module is shown, unless ``part`` names a part of it marked
    in the source by a pair of full-line comments::

        # <show name>
        ...the lines shown by show_source(obj, part="name")...
        # </show name>

    The part is shown dedented; marker comments never appear in the shown text (neither in
    a part nor in the whole object). A ``part`` that is not marked raises ``ValueError``
    naming the parts that are. Returns an IPython ``Markdown`` object rendered as a Python
    code block; a listing longer than ``FOLD_AFTER`` lines is folded behind a toggle
    (an HTML ``<details>``), so that a long class does not bury the chapter's text.
    """
    from IPython.display import Markdown

    text = source(obj, part)
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    header = f"# {module}.{name}" if module and module != name else f"# {name}"
    if part is not None:
        header += f" ({part})"
    code = fold_listing(f"```python\n{header}\n{text.rstrip()}\n```")
    return Markdown(code)


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

    # Known library warnings that say nothing about the chapter (stored outputs stay clean);
    # set before lightning is imported, since importing it imports tqdm, which warns at once.
    for message in (
        "IProgress not found",  # tqdm without ipywidgets
        ".*does not have many workers.*",  # Lightning's DataLoader hint
        ".*LeafSpec.*",
        ".*'pin_memory' argument is set as true but no accelerator.*",
        ".*defined a `validation_step` but have no `val_dataloader`.*",
    ):
        warnings.filterwarnings("ignore", message=message)
    import lightning  # noqa: F401  (imported first: importing it resets its loggers' levels)

    from .viz import set_theme

    seed_everything(seed)
    set_theme()
    # Book output shows results, not Lightning's notes about hardware, tips and summaries.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not quiet:
        print("  ".join(f"{k}: {v}" for k, v in environment().items()))


@contextlib.contextmanager
def native_stderr_silenced():
    """Silence what C++ code writes to the process's stderr (file descriptor 2) inside the
    block, e.g. the profiler's start/stop lines, which Python's warnings filters cannot
    reach. Python exceptions still propagate as usual."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _plain(value):
    """numpy/torch scalars as Python numbers, so that ``{glue:text}`name:.3f``` can format them."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"glue needs a single number, got a tensor of shape {tuple(value.shape)}"
            )
        value = value.item()
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, float) and value != value:
        raise ValueError("glue got NaN: a number in the prose must be a real result")
    return value


def glue(name: str, value, *, display: bool = False):
    """Record a result under ``name`` for the prose (myst-nb ``{glue:text}`name:.3f```).

    The value is stored in the cell's output and the website puts it into the text, so a
    number in the prose is always the number the run produced. Outside a book build (e.g.
    in Colab without myst-nb) it does nothing. Returns the value, so a cell can go on using it.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
        raise ValueError(f"glue name {name!r} must be letters, digits, '_' or '-'")
    value = _plain(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=display)
    return value
