"""fmbook.stats against independent references (binomial test, normal approximation)."""

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from fmbook import stats


def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_pairs():
    rng = np.random.default_rng(1)
    a, b = rng.random(300) < 0.7, rng.random(300) < 0.6
    n_ab, n_ba = int(np.sum(a & ~b)), int(np.sum(~a & b))
    expected = binomtest(min(n_ab, n_ba), n_ab + n_ba, 0.5).pvalue
    assert stats.mcnemar(a, b) == pytest.approx(expected)


def test_paired_bootstrap_matches_the_normal_approximation_of_the_paired_difference():
    rng = np.random.default_rng(2)
    a, b = rng.random(4000) < 0.62, rng.random(4000) < 0.55
    result = stats.paired_bootstrap(a, b, n_resamples=4000)
    d = a.astype(float) - b.astype(float)
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    assert result.estimate == pytest.approx(d.mean())
    assert result.low == pytest.approx(d.mean() - half, abs=0.006)
    assert result.high == pytest.approx(d.mean() + half, abs=0.006)
    assert result.excludes_zero()


def test_identical_predictions_give_a_zero_difference_and_p_one():
    a = np.array([1, 0, 1, 1])
    result = stats.paired_bootstrap(a, a)
    assert (result.estimate, result.low, result.high, result.p_value) == (0, 0, 0, 1.0)


def test_mean_interval_is_the_student_t_interval():
    values = [0.31, 0.35, 0.33, 0.40]
    result = stats.mean_interval(values)
    mean, sd = np.mean(values), np.std(values, ddof=1)
    half = 3.182446305284263 * sd / 2  # t_{0.975, 3} * sd / sqrt(4)
    assert (result.low, result.high) == pytest.approx((mean - half, mean + half))


def test_paired_seeds_detects_a_consistent_gain_and_not_noise():
    gain = stats.paired_seeds([0.50, 0.52, 0.55, 0.51], [0.40, 0.43, 0.44, 0.42])
    noise = stats.paired_seeds([0.50, 0.42, 0.55, 0.41], [0.45, 0.48, 0.44, 0.47])
    assert gain.excludes_zero() and gain.p_value < 0.01
    assert not noise.excludes_zero() and noise.p_value > 0.3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: stats.paired_bootstrap([1, 0], [1, 0, 1]), "same length"),
        (lambda: stats.paired_bootstrap([0.5, 1], [1, 0]), "correctness"),
        (lambda: stats.mean_interval([0.3]), "at least 2"),
        (lambda: stats.mean_interval([]), "non-empty"),
        (lambda: stats.mean_interval([0.3, float("nan")]), "NaN"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
