"""Seeding."""

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
