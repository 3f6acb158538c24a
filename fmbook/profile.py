"""The one knob that sizes every chapter: ``FMBOOK_PROFILE`` = ``smoke`` | ``full``.

* ``smoke`` -- what CI runs: each notebook in seconds (at most 60 s on 2 CPU cores).
* ``full``  -- the run whose outputs the website shows (at most 10 minutes per notebook
  on 2 CPU cores; faster on a GPU, which is used when present).

A chapter states both budgets side by side and gets the one the knob selects::

    budget = fmbook.profile.budget(
        smoke=dict(max_steps=100, n_layer=2),
        full=dict(max_steps=5000, n_layer=4),
    )
    budget.max_steps

The source of the chapter is the same in both profiles: only the numbers change.
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any

ENV_VAR = "FMBOOK_PROFILE"
PROFILES = ("smoke", "full")
DEFAULT = "full"


def name() -> str:
    """The active profile, read from ``FMBOOK_PROFILE`` (default ``full``)."""
    value = os.environ.get(ENV_VAR, DEFAULT).strip().lower()
    if value not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} is not a profile; expected one of {PROFILES}"
        )
    return value


class Budget:
    """The numbers of the active profile, read as attributes (``budget.max_steps``)."""

    def __init__(self, profile: str, values: dict[str, Any]):
        self._profile = profile
        self._values = MappingProxyType(dict(values))

    @property
    def profile(self) -> str:
        return self._profile

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(
                f"budget has no entry {key!r}; it has {sorted(self._values)}"
            ) from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Budget[{self._profile}]({items})"


def budget(*, smoke: dict[str, Any], full: dict[str, Any]) -> Budget:
    """Pick the chapter's budget for the active profile.

    Both profiles must name the same keys, so that a chapter cannot silently depend on
    a number that exists in only one of them.
    """
    if set(smoke) != set(full):
        raise ValueError(
            "smoke and full budgets must have the same keys; "
            f"only in smoke: {sorted(set(smoke) - set(full))}, "
            f"only in full: {sorted(set(full) - set(smoke))}"
        )
    chosen = smoke if name() == "smoke" else full
    return Budget(name(), chosen)
