"""Learning-rate schedules, as multipliers of the base learning rate."""

from __future__ import annotations

import math


def warmup_cosine(step: int, *, warmup_steps: int, max_steps: int, min_ratio: float = 0.1) -> float:
    """Linear warm-up from 0 to 1 over ``warmup_steps``, then cosine decay to
    ``min_ratio`` at ``max_steps`` (and ``min_ratio`` after it)."""
    if max_steps < 1 or not 0 <= warmup_steps <= max_steps:
        raise ValueError(
            f"need 0 <= warmup_steps <= max_steps and max_steps >= 1, "
            f"got warmup_steps={warmup_steps}, max_steps={max_steps}"
        )
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_ratio must be in [0, 1], got {min_ratio}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= max_steps:
        return min_ratio
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
