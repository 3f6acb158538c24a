"""Checks shared by the model configs (``GPTConfig``, ``BERTConfig``, ``Seq2SeqConfig``).

Each function reads fields of a config dataclass by name and raises a ValueError that names
the field and the value it got.
"""

from __future__ import annotations


def require_positive_ints(config, *fields: str) -> None:
    """Each named field must be an int >= 1."""
    for field in fields:
        value = getattr(config, field)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{field} must be a positive int, got {value!r}")


def require_divisible(config, width_field: str, heads_field: str) -> None:
    """The model width must split evenly across the attention heads."""
    width, heads = getattr(config, width_field), getattr(config, heads_field)
    if width % heads:
        raise ValueError(f"{width_field} ({width}) must be divisible by {heads_field} ({heads})")


def require_dropout(config, field: str = "dropout") -> None:
    """A dropout probability must lie in [0, 1)."""
    value = getattr(config, field)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{field} must be in [0, 1), got {value!r}")


def require_optional_id(config, field: str, size_field: str) -> None:
    """The field is None or a token id in [0, size), size being the field ``size_field``."""
    value, size = getattr(config, field), getattr(config, size_field)
    if value is not None and not (isinstance(value, int) and 0 <= value < size):
        raise ValueError(
            f"{field} must be None or an id in [0, {size_field}={size}), got {value!r}"
        )
