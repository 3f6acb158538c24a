"""A notebook depends on nothing but the installed package and the data loader.

Build a wheel of fmbook, install it into a new virtual environment, copy one chapter
into an empty folder and run it there, top to bottom, in the smoke profile.
"""

import shutil
import sys

import pytest
import setup_cell

ROOT = setup_cell.ROOT
CHAPTER = ROOT / "chapters" / "3-algorithms" / "pretraining-gpt.ipynb"
TORCH = setup_cell.TORCH

RUN_NOTEBOOK = setup_cell.RUN_NOTEBOOK
run = setup_cell.run_clean


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
