import itertools
import math

import numpy as np
import pytest

from fmbook.models.hmm import HMM


def random_hmm(n_states, n_symbols, seed, zeros=False):
    """An HMM with random (Dirichlet) distributions; ``zeros`` forbids some transitions."""
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(n_states))
    transition = rng.dirichlet(np.ones(n_states), size=n_states)
    emission = rng.dirichlet(np.ones(n_symbols), size=n_states)
    if zeros:  # a left-to-right chain: no way back to a lower state
        transition = np.triu(transition)
        transition /= transition.sum(axis=1, keepdims=True)
    return HMM(start, transition, emission)


@pytest.mark.parametrize(("n_states", "n_symbols", "length"), [(1, 2, 3), (2, 3, 5), (3, 2, 6)])
@pytest.mark.parametrize("zeros", [False, True])
def test_forward_equals_brute_force(n_states, n_symbols, length, zeros):
    hmm = random_hmm(n_states, n_symbols, seed=n_states * 10 + length, zeros=zeros)
    obs = np.random.default_rng(length).integers(0, n_symbols, length)
    assert math.isclose(hmm.log_likelihood(obs), hmm.brute_force_log_likelihood(obs), rel_tol=1e-10)


def test_forward_by_hand_on_a_two_state_example():
    hmm = HMM([0.5, 0.5], [[0.9, 0.1], [0.2, 0.8]], [[0.7, 0.3], [0.1, 0.9]])
    alpha = np.exp(hmm.log_forward([0, 1]))
    assert np.allclose(alpha[0], [0.5 * 0.7, 0.5 * 0.1])
    expected = [
        (0.35 * 0.9 + 0.05 * 0.2) * 0.3,
        (0.35 * 0.1 + 0.05 * 0.8) * 0.9,
    ]
    assert np.allclose(alpha[1], expected)
    assert math.isclose(math.exp(hmm.log_likelihood([0, 1])), sum(expected))


@pytest.mark.parametrize("length", [1, 2, 4])
def test_probabilities_of_all_sequences_sum_to_one(length):
    hmm = random_hmm(3, 3, seed=length)
    total = sum(
        math.exp(hmm.log_likelihood(list(x))) for x in itertools.product(range(3), repeat=length)
    )
    assert math.isclose(total, 1.0, rel_tol=1e-10)


def test_long_sequences_do_not_underflow():
    hmm = random_hmm(3, 4, seed=0)
    obs = np.random.default_rng(0).integers(0, 4, 5000)
    log_p = hmm.log_likelihood(obs)
    assert math.isfinite(log_p) and log_p < -1000  # far below the smallest float64


def test_impossible_observation_has_log_probability_minus_infinity():
    hmm = HMM([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])
    assert hmm.log_likelihood([0, 0, 0]) == 0.0
    assert hmm.log_likelihood([0, 1]) == -math.inf
    assert hmm.brute_force_log_likelihood([0, 1]) == -math.inf


@pytest.mark.parametrize("seed", range(4))
def test_viterbi_equals_brute_force(seed):
    hmm = random_hmm(3, 3, seed=seed, zeros=seed % 2 == 1)
    obs = np.random.default_rng(seed).integers(0, 3, 7)
    path, log_p = hmm.viterbi(obs)
    best, best_log_p = hmm.brute_force_viterbi(obs)
    assert np.array_equal(path, best)
    assert math.isclose(log_p, best_log_p, rel_tol=1e-12)
    assert math.isclose(hmm.log_joint(path, obs), log_p, rel_tol=1e-12)


def test_sample_has_the_right_shapes_and_ranges():
    hmm = random_hmm(2, 5, seed=1)
    states, obs = hmm.sample(50, np.random.default_rng(0))
    assert states.shape == obs.shape == (50,)
    assert set(states) <= {0, 1} and obs.min() >= 0 and obs.max() < 5


GOOD = dict(
    start=[0.5, 0.5], transition=[[0.9, 0.1], [0.2, 0.8]], emission=[[0.7, 0.3], [0.1, 0.9]]
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(start=[0.5, 0.6]), "start must be stochastic"),
        (dict(start=[[0.5, 0.5]]), r"start must have shape \(\?\)"),
        (dict(start=[1.5, -0.5]), "non-negative"),
        (dict(transition=[[0.9, 0.2], [0.2, 0.8]]), "transition must be stochastic"),
        (dict(transition=[[1.0, 0.0, 0.0]] * 2), r"transition must have shape \(2, 2\)"),
        (dict(emission=[[0.7, 0.3]]), r"emission must have shape \(2, \?\)"),
        (dict(emission=[[0.7, 0.3], [0.1, 0.8]]), "emission must be stochastic"),
        (dict(emission=[[np.nan, 1.0], [0.1, 0.9]]), "finite"),
        (dict(start=[]), "must not be empty"),
    ],
)
def test_bad_parameters_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        HMM(**{**GOOD, **change})


@pytest.mark.parametrize(
    ("obs", "message"),
    [
        ([0, 2], r"\[0, n_symbols=2\)"),
        ([-1, 0], r"\[0, n_symbols=2\)"),
        ([], "non-empty 1-D"),
        ([[0, 1]], "non-empty 1-D"),
        ([0.0, 1.0], "integer symbol ids"),
    ],
)
def test_bad_observations_are_refused(obs, message):
    hmm = HMM(**GOOD)
    with pytest.raises(ValueError, match=message):
        hmm.log_likelihood(obs)


def test_brute_force_refuses_long_sequences_and_bad_arguments():
    hmm = HMM(**GOOD)
    with pytest.raises(ValueError, match="MAX_PATHS"):
        hmm.brute_force_log_likelihood([0] * 40)
    with pytest.raises(ValueError, match="states must be integer ids"):
        hmm.log_joint([0, 1, 0], [0, 1])
    with pytest.raises(ValueError, match=r"states must lie in \[0, n_states=2\)"):
        hmm.log_joint([0, 2], [0, 1])
    with pytest.raises(ValueError, match="length must be an int"):
        hmm.sample(0)
