"""What every benchmark records about the machine, and how it writes its results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def machine() -> dict:
    """Python version, CPU count, architecture and the process's nice level."""
    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "nice": os.nice(0),
    }


def write_results(result: dict, path: Path) -> None:
    """Write ``result`` as JSON to ``path`` (creating its folder) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
