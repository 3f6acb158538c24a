"""Honest comparisons: intervals over seeds and paired tests on one test set.

The book compares models on the same test examples, so a comparison is *paired*: what
matters is where the two models disagree, not the two accuracies on their own. The
functions here wrap the maintained implementations (``scipy.stats``, ``statsmodels``):

* :func:`mean_interval` -- mean and Student-t interval of one number measured over seeds;
* :func:`paired_bootstrap` -- interval for the difference in accuracy of two models on the
  same examples (``scipy.stats.bootstrap`` with ``paired=True``);
* :func:`mcnemar` -- exact McNemar test of the same (``statsmodels``);
* :func:`paired_seeds` -- interval and paired t-test for a difference measured over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _stats
from statsmodels.stats.contingency_tables import mcnemar as _mcnemar

__all__ = ["Interval", "mean_interval", "paired_bootstrap", "mcnemar", "paired_seeds"]


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval (and a p-value where a test was made)."""

    estimate: float
    low: float
    high: float
    level: float = 0.95
    p_value: float | None = None

    def __str__(self) -> str:
        text = f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"
        return text if self.p_value is None else f"{text} (p = {self.p_value:.3g})"

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _vector(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(a, "a"), _vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same length, got {a.size} and {b.size}")
    return a, b


def _correct(values, name: str) -> np.ndarray:
    array = _vector(values, name)
    if not np.all((array == 0) | (array == 1)):
        raise ValueError(f"{name} must be per-example correctness (0/1 or booleans)")
    return array


def mean_interval(values, level: float = 0.95) -> Interval:
    """Mean of ``values`` (one per seed) with a Student-t interval; needs >= 2 values."""
    x = _vector(values, "values")
    if x.size < 2:
        raise ValueError("an interval over seeds needs at least 2 values")
    mean = float(x.mean())
    sem = float(_stats.sem(x))
    if sem == 0.0:
        return Interval(mean, mean, mean, level)
    low, high = _stats.t.interval(level, df=x.size - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), level)


def paired_seeds(a, b, level: float = 0.95) -> Interval:
    """Mean of ``a - b`` over seeds (same seeds for both), t-interval and paired t-test."""
    a, b = _pair(a, b)
    interval = mean_interval(a - b, level)
    if np.all(a - b == (a - b)[0]):
        p = 0.0 if (a - b)[0] != 0 else 1.0
    else:
        p = float(_stats.ttest_rel(a, b).pvalue)
    return Interval(interval.estimate, interval.low, interval.high, level, p)


def paired_bootstrap(
    correct_a, correct_b, level: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """Accuracy of model a minus model b on the same examples, with a paired bootstrap interval.

    ``correct_a[i]`` and ``correct_b[i]`` say whether each model got example ``i`` right.
    The p-value is the exact McNemar test of the same pairs.
    """
    a, b = _correct(correct_a, "correct_a"), _correct(correct_b, "correct_b")
    a, b = _pair(a, b)
    diff = float(a.mean() - b.mean())
    if np.all(a == b):
        return Interval(diff, diff, diff, level, 1.0)
    result = _stats.bootstrap(
        (a, b),
        lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=level,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return Interval(diff, float(ci.low), float(ci.high), level, mcnemar(a, b))


def mcnemar(correct_a, correct_b) -> float:
    """p-value of the exact McNemar test: do two models err on the same examples equally often?"""
    a, b = _correct(correct_a, "correct_a"), _correct(correct_b, "correct_b")
    a, b = _pair(a, b)
    a, b = a.astype(bool), b.astype(bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return float(_mcnemar(table, exact=True).pvalue)
