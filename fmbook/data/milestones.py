"""Milestone language models: date, parameters and training tokens, each with its source.

The table ships with the package (``milestones.csv``): one row per model, with the key of
the reference in the book's ``references.bib`` that every number comes from. ``year`` and
``month`` date the model's first public description (preprint, report or paper), so that
models of the same year can be put in order. A cell is empty where the paper does not
publish the number; nothing is estimated.
``tokens_kind`` says what ``tokens`` counts: ``corpus`` tokens, ``corpus words`` or tokens
``seen`` in training.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PATH = Path(__file__).with_name("milestones.csv")
COLUMNS = ("model", "year", "month", "params", "tokens", "tokens_kind", "source_key", "note")


def load() -> pd.DataFrame:
    """The table as a DataFrame, in date order (``params`` and ``tokens`` are floats, NaN
    where unpublished)."""
    table = pd.read_csv(PATH)
    if tuple(table.columns) != COLUMNS:
        raise ValueError(f"{PATH} has columns {tuple(table.columns)}, expected {COLUMNS}")
    return table.astype({"year": int, "month": int, "params": float, "tokens": float})
