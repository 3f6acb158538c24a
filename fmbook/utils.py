"""Small shared helpers: seeding and devices."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int = 1337) -> int:
    """Seed Python, NumPy and torch (CPU and all GPUs) and return the seed."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def device() -> torch.device:
    """The device a chapter computes on outside the Trainer: a GPU when there is one."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
