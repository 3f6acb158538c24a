"""The setup cell that opens every chapter, rendered from the book's one source of truth.

The repository URL lives only in ``_config.yml``; the version only in ``pyproject.toml``.
``python tests/setup_cell.py`` rewrites the first code cell of every notebook from them;
``tests/test_notebooks.py`` checks that every notebook carries the rendered cell.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAGS = ["setup-cell", "hide-input", "remove-stderr"]  # the site folds the code, shows its report

TEMPLATE = """\
# Setup: the same first cell in every chapter. Where fmbook is missing or another
# version (Colab), it installs the book's release from PyPI and keeps Colab's own
# torch. For a development install set FMBOOK_PIP, e.g.
# FMBOOK_PIP="fmbook @ git+{url}@main".
import importlib.metadata
import os
import subprocess
import sys

FMBOOK_VERSION = "{version}"
try:
    installed = importlib.metadata.version("fmbook")
except importlib.metadata.PackageNotFoundError:
    installed = None
if installed != FMBOOK_VERSION or "FMBOOK_PIP" in os.environ:
    package = os.environ.get("FMBOOK_PIP", f"fmbook=={{FMBOOK_VERSION}}")
    pip = [sys.executable, "-m", "pip", "install", "-q", package]
    subprocess.run(pip, check=True)

import fmbook

fmbook.setup()"""


# A fresh environment's torch: $TORCH, else the pin in constraints.txt (the Makefile's choice).
TORCH = os.environ.get("TORCH") or next(
    line.strip()
    for line in (ROOT / "constraints.txt").read_text().splitlines()
    if line.startswith("torch==")
)

# Runs one notebook top to bottom in a fresh environment's own kernel (python -c, argv[1]).
RUN_NOTEBOOK = """
import sys, time, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
nbformat.write(nb, sys.argv[1])
print(f"EXECUTED in {time.perf_counter() - start:.1f} s")
"""


def run_clean(cmd, env=None, **kwargs):
    """Run ``cmd``; by default without this process's PYTHONPATH, through which pip would
    take a source checkout (its fmbook.egg-info, left by the wheel build) for an installed
    fmbook and skip installing the wheel."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, **kwargs)
    assert result.returncode == 0, (
        f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def repository_url() -> str:
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    url = (config.get("repository") or {}).get("url")
    if not url:
        raise ValueError("_config.yml has no repository: url: entry")
    return url.rstrip("/")


def version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def render() -> str:
    return TEMPLATE.format(version=version(), url=repository_url())


def notebooks() -> list[Path]:
    return sorted(
        p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
    )


def first_code_cell(nb: dict) -> dict | None:
    return next((c for c in nb["cells"] if c["cell_type"] == "code"), None)


def sync(path: Path) -> bool:
    """Make the first code cell of ``path`` the setup cell; True if the file changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = first_code_cell(nb)
    source = render()
    if cell is None:
        raise ValueError(f"{path} has no code cell to hold the setup cell")
    if "".join(cell["source"]) == source and cell["metadata"].get("tags") == TAGS:
        return False
    cell["source"] = source.splitlines(keepends=True)
    cell["metadata"]["tags"] = list(TAGS)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


if __name__ == "__main__":
    changed = [str(p.relative_to(ROOT)) for p in notebooks() if sync(p)]
    print("updated:", ", ".join(changed) if changed else "nothing")
    sys.exit(0)
