"""Colab, simulated: a reader opens two chapters in a fresh runtime and runs them top to bottom.

What Colab has, and nothing of the book's: a new virtual environment with torch (the pin of
constraints.txt) and a Jupyter kernel. The chapter's own setup cell installs
``fmbook==<version>`` -- here from a wheel built from this checkout (``PIP_FIND_LINKS``; pip
gets fmbook's dependencies as it would on Colab) -- and leaves torch alone. The book's
release assets are served by a local HTTP server standing in for GitHub releases
(``FMBOOK_RELEASE_URL``): ``data-v1`` built by ``tools/build_data_release.py`` from the data
mirror and ``weights-v1`` with the smoke profile's pretrained BERT built by
:func:`fmbook.pretrained.build_weights`. No data mirror and no cache: every file is
downloaded and checked against the registry. Each chapter runs in its own empty folder, in
the smoke profile: the translation chapter (encoder-decoder: fra-eng) and one that needs the
pretrained BERT (masked-lm: the weights, and Tiny Shakespeare for the corpus it reads).
Between them they fetch every kind of release asset.

The notebooks run are the ones the Colab button opens: generated from the chapters by
``tools/colab.py`` (citations as text, solutions folded) into a fresh folder.
"""

import hashlib
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import setup_cell
from local_server import LocalServer

from fmbook import pretrained
from fmbook.data import registry

ROOT = setup_cell.ROOT
CHAPTERS = [
    "chapters/2-concepts/encoder-decoder.ipynb",
    "chapters/3-algorithms/masked-lm.ipynb",
]
TORCH = setup_cell.TORCH
RUN_NOTEBOOK = setup_cell.RUN_NOTEBOOK
run = setup_cell.run_clean


def colab_notebook(path: str, folder) -> Path:
    """The notebook a Colab reader opens: the one tools/colab.py generates from the chapter."""
    generated = Path(folder) / path
    if not generated.is_file():
        load_tool("colab").build(Path(folder))
    return generated


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def release_folder(folder, data_mirror):
    """The book's release assets as GitHub would serve them: <folder>/<tag>/<file>."""
    load_tool("build_data_release").build(data_mirror, folder / registry.DATA_TAG)
    record = pretrained.WEIGHTS["smoke"]
    text = (data_mirror / registry.REGISTRY["tinyshakespeare"].path).read_text(encoding="utf-8")
    built = pretrained.build_weights("smoke", folder / pretrained.WEIGHTS_TAG, text=text)
    digest = hashlib.sha256(built.read_bytes()).hexdigest()
    assert digest == record.sha256, (
        f"this machine's smoke build of the pretrained BERT has sha256 {digest}, not the "
        f"registered {record.sha256}: the CPU rounds differently from the release build's, "
        "or the recipe changed without a new weights release (make weights-release)"
    )


@pytest.mark.slow
def test_chapters_run_as_on_colab(tmp_path, data_mirror):
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)])
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", TORCH, "nbclient", "ipykernel", "nbformat"])
    torch_before = run([python, "-c", "import torch; print(torch.__version__)"]).strip()
    release_folder(tmp_path / "release", data_mirror)

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FMBOOK_", "VIRTUAL_ENV", "PYTHON", "JUPYTER"))
    }
    home = tmp_path / "home"  # no cache, no configuration of this machine
    env.update(
        PATH=f"{venv / 'bin'}:/usr/bin:/bin",
        HOME=str(home),
        FMBOOK_PROFILE="smoke",
        MPLBACKEND="Agg",
        PIP_FIND_LINKS=" ".join(filter(None, [os.environ.get("PIP_FIND_LINKS"), str(wheels)])),
    )
    times = {}
    with LocalServer(tmp_path / "release") as server:
        env[registry.RELEASE_URL_ENV] = server.url
        for path in CHAPTERS:
            workdir = tmp_path / "run" / path.replace("/", "_").removesuffix(".ipynb")
            workdir.mkdir(parents=True)
            notebook = shutil.copy(colab_notebook(path, tmp_path / "colab"), workdir)
            start = time.perf_counter()
            out = run([python, "-c", RUN_NOTEBOOK, notebook], cwd=workdir, env=env, timeout=1800)
            times[path] = time.perf_counter() - start
            assert "EXECUTED" in out
    print({k: f"{v:.0f} s" for k, v in times.items()})

    # every file came from the stand-in release, once, and was checked on arrival
    weights = pretrained.WEIGHTS["smoke"]
    for record in (registry.REGISTRY["tinyshakespeare"], registry.REGISTRY["fra-eng"], weights):
        assert server.requests.count(f"/{record.asset}") == 1, (record.asset, server.requests)
        cached = home / ".cache" / "fmbook" / record.path
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == record.sha256
    # the setup cell installed the wheel and left Colab's torch alone
    check = "import fmbook, torch; print(fmbook.__version__, fmbook.__file__, torch.__version__)"
    version, where, torch_after = run([python, "-c", check], cwd=tmp_path, env=env).split()
    assert version == setup_cell.version() and where.startswith(str(venv))
    assert torch_after == torch_before
