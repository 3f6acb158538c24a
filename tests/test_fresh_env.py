"""A notebook depends on nothing but the installed package and the data loader.

Build a wheel of fmbook, install it into a new virtual environment, copy one chapter
into an empty folder and run it there, top to bottom, in the smoke profile.
"""

import os
import shutil
import subprocess
import sys

import pytest
import setup_cell

ROOT = setup_cell.ROOT
CHAPTER = ROOT / "chapters" / "3-algorithms" / "pretraining-gpt.ipynb"
# the Makefile's choice: $TORCH, else the pin in constraints.txt (CPU build here)
TORCH = os.environ.get("TORCH") or next(
    line.strip()
    for line in (ROOT / "constraints.txt").read_text().splitlines()
    if line.startswith("torch==")
)

RUN_NOTEBOOK = """
import sys, time, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
print(f"EXECUTED in {time.perf_counter() - start:.1f}")
"""


def run(cmd, env=None, **kwargs):
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


@pytest.mark.slow
def test_chapter_runs_from_a_wheel_in_a_new_venv(tmp_path, data_mirror):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)])
    wheel = next(dist.glob("fmbook-*.whl"))

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", TORCH])
    run([python, "-m", "pip", "install", "-q", str(wheel), "nbclient", "ipykernel"])

    workdir = tmp_path / "empty"
    workdir.mkdir()
    shutil.copy(CHAPTER, workdir / CHAPTER.name)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),  # no cache, no config from this machine
        "FMBOOK_PROFILE": "smoke",
        "FMBOOK_DATA_MIRROR": str(data_mirror),
        "MPLBACKEND": "Agg",
    }
    out = run([python, "-c", RUN_NOTEBOOK, CHAPTER.name], cwd=workdir, env=env)
    assert "EXECUTED" in out
    # the installed wheel was used, not the source tree
    where = run([python, "-c", "import fmbook; print(fmbook.__file__)"], cwd=workdir, env=env)
    assert str(venv) in where and str(ROOT) not in where
