"""Helpers for the book's notebooks: show library source, report the environment."""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import platform
import re
import subprocess
import sys
import textwrap
from pathlib import Path

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


def repository_root() -> Path | None:
    """The source checkout this ``fmbook`` was imported from (the folder that holds
    ``fmbook/``, ``tests/`` and ``pyproject.toml``), or None for an installed package
    (as on Colab), which comes without the tests."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "tests").is_dir() and (root / "pyproject.toml").is_file() else None


def _node_file(path: str) -> Path:
    """The file of a test id's path: as given, else under the current folder, else under
    the repository root."""
    candidates = [Path(path)]
    if not Path(path).is_absolute():
        candidates = [Path.cwd() / path]
        if repository_root() is not None:
            candidates.append(repository_root() / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ValueError(
        f"no file {path!r} here or in a source checkout: the tests live in the book's "
        "repository (git clone it), not in the installed package"
    )


def node_source(node_id: str) -> str:
    """The source of a test (or any function or class) named by a pytest node id,
    ``"tests/test_gpt.py::test_name"`` or ``"path.py::Class::method"``, with its
    decorators, dedented. The file is parsed, not imported; a parametrized id's
    ``[...]`` suffix is ignored."""
    path, *names = node_id.split("::")
    if not names:
        raise ValueError(f"{node_id!r} is not a node id 'path.py::name'")
    text = _node_file(path).read_text(encoding="utf-8")
    node = ast.parse(text)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for name in (re.sub(r"\[.*\]$", "", n) for n in names):
        found = {c.name: c for c in getattr(node, "body", []) if isinstance(c, kinds)}
        if name not in found:
            raise ValueError(f"{node_id}: no {name!r} here; there are {sorted(found)}")
        node = found[name]
    lines = text.splitlines()
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    end, indent = node.end_lineno, _indent(lines[node.lineno - 1])
    while end < len(lines) and lines[end].lstrip().startswith("#") and _indent(lines[end]) > indent:
        end += 1  # comments that close the body, e.g. a '# </show name>' marker
    return textwrap.dedent("\n".join(lines[start - 1 : end]))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def source(obj, part: str | None = None) -> str:
    """The source code of a function, class or module of the package, dedented, without
    its ``# <show name>`` / ``# </show name>`` marker comments; with ``part``, only the
    lines between that pair of markers. ``obj`` may also be a pytest node id, e.g.
    ``"tests/test_gpt.py::test_name"`` (see :func:`node_source`)."""
    if isinstance(obj, str) and "::" in obj:
        text, parts = _parts(node_source(obj), obj)
        return text if part is None else _part(parts, part, obj)
    try:
        text = textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as err:
        raise ValueError(f"cannot show the source of {obj!r}: {err}") from None
    where = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    text, parts = _parts(text, where)
    return text if part is None else _part(parts, part, where)


def _part(parts: dict[str, str], part: str, where: str) -> str:
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

    ``obj`` is a function, class or module, or a pytest node id such as
    ``"tests/test_gpt.py::test_name"`` (a test, read from the file without importing it).
    The whole object is shown, unless ``part`` names a part of it marked
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
    if isinstance(obj, str):  # a pytest node id
        module, name = None, obj
    else:
        name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
        module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    header = f"# {module}.{name}" if module and module != name else f"# {name}"
    if part is not None:
        header += f" ({part})"
    code = fold_listing(f"```python\n{header}\n{text.rstrip()}\n```")
    return Markdown(code)


def accelerator() -> str:
    """The accelerator the book's Trainer uses (Lightning's ``accelerator="auto"``):
    ``"cuda"`` (an NVIDIA GPU, or an AMD one through a ROCm build of torch), else ``"mps"``
    (Apple silicon), else ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def environment() -> dict[str, str]:
    """What this notebook runs on: versions, device and the active profile."""
    import lightning

    kind = accelerator()
    if kind == "cuda":
        dev = f"cuda ({torch.cuda.get_device_name(0)})"
    elif kind == "mps":
        dev = "mps (Apple GPU)"
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


_OUTCOME = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", re.M)


def run_tests(*node_ids: str, root: str | os.PathLike | None = None, timeout: float = 600):
    """Run tests with pytest in a fresh Python process and return ``{node id: outcome}``,
    the outcome being ``"passed"``, ``"failed"``, ``"error"``, ``"skipped"``, ``"xfail"``
    or ``"xpass"`` (a parametrized test gives one entry per case).

    ``node_ids`` are relative to ``root`` (default: :func:`repository_root`), e.g.
    ``"tests/test_gpt.py::test_name"``. The process starts in ``root`` with this process's
    environment minus ``PYTHONPATH``, the notebook's plotting backend and the variables of
    a pytest that runs the notebook (``PYTEST_*``), so it imports the
    ``fmbook`` found in ``root`` -- a changed copy of the repository tests that copy.
    """
    root = repository_root() if root is None else Path(root)
    if root is None or not Path(root).is_dir():
        raise ValueError("no source checkout to run tests in: git clone the book's repository")
    if not node_ids:
        raise ValueError("name at least one test, e.g. 'tests/test_gpt.py::test_name'")
    drop = ("PYTHONPATH", "PYTHONHOME", "MPLBACKEND")  # and a calling pytest's PYTEST_*
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_")}
    cmd = [sys.executable, "-m", "pytest", "-v", "--color=no", "-p", "no:cacheprovider", *node_ids]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    outcomes = {m[1]: m[2].lower() for m in _OUTCOME.finditer(done.stdout)}
    if not outcomes:
        raise RuntimeError(
            f"pytest ran no test (exit code {done.returncode}):\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return outcomes
