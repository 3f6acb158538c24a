"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The read-only data mirror: $FMBOOK_DATA_MIRROR, else ../shared/data next to the repo."""
    folder = Path(os.environ.get("FMBOOK_DATA_MIRROR") or REPO_ROOT.parent / "shared" / "data")
    if not folder.is_dir():
        pytest.skip(f"no data mirror at {folder}; set FMBOOK_DATA_MIRROR to the mirror folder")
    return folder
