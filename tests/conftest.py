"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The read-only data mirror: $FMBOOK_DATA_MIRROR, else ../shared/data next to the repo.
    Without it the tests that need data are skipped on a reader's machine, and fail in CI
    (where the environment variable CI is set), so that CI never passes by skipping them."""
    folder = Path(os.environ.get("FMBOOK_DATA_MIRROR") or REPO_ROOT.parent / "shared" / "data")
    if not folder.is_dir():
        message = (
            f"no data mirror at {folder}: set FMBOOK_DATA_MIRROR to the folder that holds the "
            "book's data sets (e.g. FMBOOK_DATA_MIRROR=/path/to/shared/data make test)"
        )
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message}; in CI (CI={os.environ['CI']!r}) a missing mirror is an error")
        pytest.skip(message)
    return folder


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a test module, restored afterwards: the test tensors are tiny,
    and one thread leaves the other core to whatever else runs on the machine.
    Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
