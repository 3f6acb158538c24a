"""fmbook-train (fmbook.cli): configs by name or path, and a 2-process DDP run on CPU."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fmbook import cli

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_resolve_by_name_and_path(tmp_path):
    assert {"gpt-shakespeare", "gpt-tiny"} <= set(cli.config_names())
    path = cli.config_path("gpt-tiny")
    assert path.is_file() and path.parent == cli.CONFIG_DIR
    own = tmp_path / "run.yaml"
    own.write_text("trainer: {max_steps: 1}\n")
    assert cli.config_path(str(own)) == own
    assert cli.resolve_config_args(["fit", "--config", "gpt-tiny", "--config=gpt-tiny"]) == [
        "fit",
        "--config",
        str(path),
        f"--config={path}",
    ]
    with pytest.raises(FileNotFoundError, match="shipped configs: .*gpt-tiny"):
        cli.config_path("no-such-config")
    with pytest.raises(FileNotFoundError, match="no config file"):
        cli.config_path(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("name", cli.config_names())
def test_book_configs_are_quiet(name):
    trainer = yaml.safe_load(cli.config_path(name).read_text())["trainer"]
    assert trainer["enable_progress_bar"] is False
    assert trainer["enable_model_summary"] is False
    assert trainer["logger"] is False


def test_configs_are_package_data():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "configs/*.yaml" in project["tool"]["setuptools"]["package-data"]["fmbook"]
    assert project["project"]["scripts"]["fmbook-train"] == "fmbook.cli:main"


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(data_mirror):
    """``python -m fmbook.cli fit --config gpt-tiny`` with 2 DDP processes (gloo) on CPU."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PL_", "LOCAL_RANK", "RANK"))}
    env.update(PYTHONPATH=str(ROOT), FMBOOK_DATA_MIRROR=str(data_mirror), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "fmbook.cli", "fit", "--config", "gpt-tiny"]
    command += ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    run = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "fit done: 4 steps on 2 process(es) (DDPStrategy)" in run.stdout, run.stdout
    assert "Warning" not in run.stderr and "warn" not in run.stderr.lower(), run.stderr
