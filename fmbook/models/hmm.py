"""A discrete hidden Markov model: the forward algorithm, Viterbi and brute-force checks.

An HMM with ``S`` hidden states and ``K`` observable symbols is three tables:

* ``start[i]``         = p(z_1 = i),                      shape (S,)
* ``transition[i, j]`` = p(z_{t+1} = j | z_t = i),         shape (S, S)
* ``emission[i, k]``   = p(x_t = k | z_t = i),             shape (S, K)

It assigns every observation sequence ``x_1 .. x_T`` the probability

    p(x) = sum over all S**T state paths z of  start[z_1] emission[z_1, x_1]
           * prod_{t>1} transition[z_{t-1}, z_t] emission[z_t, x_t].

The forward algorithm computes this sum in O(T S^2) time with the recursion

    alpha_1(j) = start[j] emission[j, x_1]
    alpha_t(j) = (sum_i alpha_{t-1}(i) transition[i, j]) emission[j, x_t]
    p(x)       = sum_j alpha_T(j),

here in log space, so that long sequences do not underflow. The brute-force functions
enumerate all S**T paths; they exist to check the fast ones on tiny examples.

>>> hmm = HMM([0.5, 0.5], [[0.9, 0.1], [0.2, 0.8]], [[0.7, 0.3], [0.1, 0.9]])
>>> round(float(np.exp(hmm.log_likelihood([0, 1, 1]))), 6)
0.08775
"""

from __future__ import annotations

import itertools

import numpy as np

#: The largest number of state paths the brute-force functions will enumerate.
MAX_PATHS = 2_000_000


def _stochastic(name: str, value, shape: tuple[int | None, ...], atol: float = 1e-8) -> np.ndarray:
    """``value`` as a float array of the given shape (None: any size >= 1) whose entries are
    finite, non-negative and whose rows (last axis) sum to 1."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        expected = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(array)) or array.min() < 0:
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    sums = array.sum(axis=-1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=atol):
        worst = float(sums.flat[np.argmax(np.abs(sums - 1.0))])
        what = "its rows" if array.ndim == 2 else "it"
        raise ValueError(f"{name} must be stochastic: {what} must sum to 1, found a sum of {worst}")
    return array


def _log(array: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(array)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(a))) along ``axis``, exact for entries of -inf."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis)


class HMM:
    """A discrete HMM given by its start, transition and emission probabilities.

    Every argument is checked: the shapes must agree ((S,), (S, S), (S, K)) and every
    distribution must be stochastic (non-negative, summing to 1).
    """

    def __init__(self, start, transition, emission):
        start = _stochastic("start", start, (None,))
        n_states = len(start)
        self.start = start
        self.transition = _stochastic("transition", transition, (n_states, n_states))
        self.emission = _stochastic("emission", emission, (n_states, None))
        self.n_states, self.n_symbols = self.emission.shape
        self._log_start, self._log_transition, self._log_emission = (
            _log(self.start),
            _log(self.transition),
            _log(self.emission),
        )

    def __repr__(self) -> str:
        return f"HMM(n_states={self.n_states}, n_symbols={self.n_symbols})"

    def check_observations(self, observations) -> np.ndarray:
        """``observations`` as a 1-D int array of symbols in ``[0, n_symbols)``, length >= 1."""
        obs = np.asarray(observations)
        if obs.ndim != 1 or len(obs) == 0:
            raise ValueError(
                f"observations must be a non-empty 1-D sequence of symbol ids, got shape {obs.shape}"
            )
        if not np.issubdtype(obs.dtype, np.integer):
            raise ValueError(f"observations must be integer symbol ids, got dtype {obs.dtype}")
        if obs.min() < 0 or obs.max() >= self.n_symbols:
            raise ValueError(
                f"observations must lie in [0, n_symbols={self.n_symbols}), "
                f"got values from {obs.min()} to {obs.max()}"
            )
        return obs.astype(np.int64)

    def log_forward(self, observations) -> np.ndarray:
        """The (T, S) table of log alpha_t(j) = log p(x_1 .. x_t, z_t = j)."""
        obs = self.check_observations(observations)
        log_alpha = np.empty((len(obs), self.n_states))
        log_alpha[0] = self._log_start + self._log_emission[:, obs[0]]
        for t in range(1, len(obs)):
            # (S, 1) + (S, S): sum over the previous state i for every next state j
            into = _logsumexp(log_alpha[t - 1][:, None] + self._log_transition, axis=0)
            log_alpha[t] = into + self._log_emission[:, obs[t]]
        return log_alpha

    def log_likelihood(self, observations) -> float:
        """log p(x_1 .. x_T), summed over all hidden paths by the forward algorithm."""
        return float(_logsumexp(self.log_forward(observations)[-1], axis=0))

    def log_joint(self, states, observations) -> float:
        """log p(z, x) of one state path ``states`` together with the observations."""
        obs = self.check_observations(observations)
        z = np.asarray(states)
        if z.shape != obs.shape or not np.issubdtype(z.dtype, np.integer):
            raise ValueError(
                f"states must be integer ids of the same length as observations ({len(obs)}), "
                f"got shape {z.shape}"
            )
        if z.min() < 0 or z.max() >= self.n_states:
            raise ValueError(f"states must lie in [0, n_states={self.n_states})")
        total = self._log_start[z[0]] + self._log_transition[z[:-1], z[1:]].sum()
        return float(total + self._log_emission[z, obs].sum())

    def paths(self, length: int):
        """All ``n_states**length`` state paths (tuples), in lexicographic order."""
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be an int >= 1, got {length!r}")
        if self.n_states**length > MAX_PATHS:
            raise ValueError(
                f"{self.n_states}**{length} paths is more than MAX_PATHS={MAX_PATHS:,}: "
                "brute force is for tiny examples"
            )
        return itertools.product(range(self.n_states), repeat=length)

    def brute_force_log_likelihood(self, observations) -> float:
        """log p(x) by enumerating every state path: O(S^T), for checking only."""
        obs = self.check_observations(observations)
        joints = np.array([self.log_joint(z, obs) for z in self.paths(len(obs))])
        return float(_logsumexp(joints, axis=0))

    def viterbi(self, observations) -> tuple[np.ndarray, float]:
        """The most probable state path and its log p(z, x) (max instead of sum in the forward
        recursion, with back-pointers). Ties go to the lowest state id."""
        obs = self.check_observations(observations)
        score = self._log_start + self._log_emission[:, obs[0]]
        back = np.zeros((len(obs), self.n_states), dtype=np.int64)
        for t in range(1, len(obs)):
            candidates = score[:, None] + self._log_transition  # (previous i, next j)
            back[t] = np.argmax(candidates, axis=0)
            score = candidates[back[t], np.arange(self.n_states)] + self._log_emission[:, obs[t]]
        path = np.empty(len(obs), dtype=np.int64)
        path[-1] = int(np.argmax(score))
        for t in range(len(obs) - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        return path, float(score[path[-1]])

    def brute_force_viterbi(self, observations) -> tuple[np.ndarray, float]:
        """The most probable state path by enumeration (first one on ties), for checking."""
        obs = self.check_observations(observations)
        best = max(self.paths(len(obs)), key=lambda z: self.log_joint(z, obs))
        return np.array(best, dtype=np.int64), self.log_joint(best, obs)

    def sample(self, length: int, rng: np.random.Generator | None = None):
        """Draw (states, observations) of the given length."""
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be an int >= 1, got {length!r}")
        rng = np.random.default_rng() if rng is None else rng
        states = np.empty(length, dtype=np.int64)
        obs = np.empty(length, dtype=np.int64)
        states[0] = rng.choice(self.n_states, p=self.start)
        for t in range(length):
            if t:
                states[t] = rng.choice(self.n_states, p=self.transition[states[t - 1]])
            obs[t] = rng.choice(self.n_symbols, p=self.emission[states[t]])
        return states, obs
