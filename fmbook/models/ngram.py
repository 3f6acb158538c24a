"""Count-based n-gram language models: add-k smoothing and interpolated Kneser-Ney.

An order-n model predicts token t from the n-1 tokens before it:

    p(w | c) = (count(c, w) + k) / (count(c) + k * V)

Contexts are packed into one integer (base V), so counting is a sort over the corpus:
fast enough for orders up to 5 on a million characters.
"""

from __future__ import annotations

import math

import numpy as np


def _check_order_and_vocab(order, vocab_size) -> None:
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an int >= 1, got {order!r}")
    if not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be an int >= 1, got {vocab_size!r}")
    if vocab_size**order >= 2**62:
        raise ValueError(f"vocab_size**order = {vocab_size}**{order} is too large to pack")


class NGramLM:
    """An add-k smoothed n-gram model over integer token ids ``0 .. vocab_size-1``."""

    def __init__(self, order: int, vocab_size: int, k: float = 1.0):
        _check_order_and_vocab(order, vocab_size)
        if not k > 0:
            raise ValueError(f"k must be > 0 (add-k smoothing), got {k!r}")
        self.order, self.vocab_size, self.k = order, vocab_size, float(k)
        self._grams = self._contexts = None

    def _pack(self, ids: np.ndarray, n: int) -> np.ndarray:
        """Pack every window of n consecutive ids into one integer (base V)."""
        codes = np.zeros(len(ids) - n + 1, dtype=np.int64)
        for j in range(n):
            codes = codes * self.vocab_size + ids[j : len(ids) - n + 1 + j]
        return codes

    def _as_ids(self, ids, fitted=True) -> np.ndarray:
        """``ids`` as a checked int64 array; ``fitted`` is None before fit() (then an error)."""
        if fitted is None:
            raise RuntimeError("call fit() before scoring")
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) < self.order:
            raise ValueError(f"need a 1-D sequence of at least order={self.order} ids")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"ids must lie in [0, vocab_size={self.vocab_size})")
        return ids

    def fit(self, ids) -> NGramLM:
        """Count n-grams (and their (n-1)-gram contexts) in ``ids``."""
        ids = self._as_ids(ids)
        self._grams = np.unique(self._pack(ids, self.order), return_counts=True)
        if self.order == 1:  # the context is empty: its count is the number of tokens
            self._contexts = (np.zeros(1, np.int64), np.array([len(ids)]))
        else:  # contexts that are followed by a token (all but the last window)
            self._contexts = np.unique(self._pack(ids[:-1], self.order - 1), return_counts=True)
        return self

    @staticmethod
    def _lookup(table, keys: np.ndarray) -> np.ndarray:
        values, counts = table
        pos = np.clip(np.searchsorted(values, keys), 0, len(values) - 1)
        return np.where(values[pos] == keys, counts[pos], 0)

    def log_probs(self, ids) -> np.ndarray:
        """log p(ids[t] | ids[t-n+1:t]) for every t >= n-1 (natural log)."""
        ids = self._as_ids(ids, fitted=self._grams)
        grams = self._lookup(self._grams, self._pack(ids, self.order))
        if self.order == 1:
            ctx = np.full(len(grams), self._contexts[1][0])
        else:
            ctx = self._lookup(self._contexts, self._pack(ids[:-1], self.order - 1))
        return np.log(grams + self.k) - np.log(ctx + self.k * self.vocab_size)

    def cross_entropy(self, ids) -> float:
        """Mean negative log-likelihood in nats per predicted token."""
        return float(-self.log_probs(ids).mean())

    def perplexity(self, ids) -> float:
        return math.exp(self.cross_entropy(ids))

    def unseen_fraction(self, ids) -> float:
        """Share of n-grams in ``ids`` never seen in training (the sparsity problem)."""
        ids = self._as_ids(ids)
        return float((self._lookup(self._grams, self._pack(ids, self.order)) == 0).mean())


class KneserNeyLM:
    """Interpolated Kneser-Ney smoothing (Kneser & Ney 1995; Chen & Goodman 1998), one
    absolute discount ``D`` at every order, recursive down to the uniform distribution.

    For the highest order (context ``h`` of n-1 tokens, ``c`` = counts)::

        p(w | h) = max(c(h w) − D, 0) / c(h·)  +  D · N1+(h ·) / c(h·) · p_lower(w | h')

    where ``h'`` drops the oldest token of ``h`` and ``N1+(h ·)`` is the number of distinct
    words seen after ``h``. The lower orders use the same formula with *continuation counts*
    in place of counts: ``N1+(· h' w)``, the number of distinct tokens seen *before* the
    m-gram ``h' w``. A word that appears often but in few contexts ("Francisco", almost always
    after "San") thus gets a small lower-order probability. The recursion ends at the uniform
    distribution ``1 / V``, so every token gets a positive probability. When a context was
    never seen (its total is 0) the model uses the lower order unchanged. The probabilities
    over the vocabulary sum to 1 for every context.

    Same interface as :class:`NGramLM`: ``fit``, ``log_probs``, ``cross_entropy``,
    ``perplexity``, plus :meth:`next_log_probs` for one context.
    """

    def __init__(self, order: int, vocab_size: int, discount: float = 0.75):
        _check_order_and_vocab(order, vocab_size)
        if not 0 < discount <= 1:
            raise ValueError(f"discount must lie in (0, 1], got {discount!r}")
        self.order, self.vocab_size, self.discount = order, vocab_size, float(discount)
        self._levels: list | None = None

    _as_ids = NGramLM._as_ids
    _lookup = staticmethod(NGramLM._lookup)

    def _pack_windows(self, windows: np.ndarray) -> np.ndarray:
        codes = np.zeros(len(windows), dtype=np.int64)
        for j in range(windows.shape[1]):
            codes = codes * self.vocab_size + windows[:, j]
        return codes

    def _level_table(self, grams: np.ndarray, numerators: np.ndarray) -> tuple:
        """From m-gram codes (sorted, unique) and their numerators (counts or continuation
        counts), the tables: m-gram -> numerator, context -> (total, number of types)."""
        contexts, start = np.unique(grams // self.vocab_size, return_index=True)
        totals = np.add.reduceat(numerators, start)
        types = np.diff(np.append(start, len(grams)))
        return (grams, numerators), (contexts, totals), (contexts, types)

    def fit(self, ids) -> KneserNeyLM:
        """Count n-grams (highest order) and continuation counts (lower orders) in ``ids``."""
        ids = self._as_ids(ids)
        V, levels = self.vocab_size, []
        for m in range(1, self.order + 1):
            windows = np.lib.stride_tricks.sliding_window_view(ids, m)
            if m == self.order:  # raw counts c(h w)
                grams, numerators = np.unique(self._pack_windows(windows), return_counts=True)
            else:  # continuation counts N1+(· g): distinct (m+1)-grams ending in g
                longer = np.unique(
                    self._pack_windows(np.lib.stride_tricks.sliding_window_view(ids, m + 1))
                )
                grams, numerators = np.unique(longer % V**m, return_counts=True)
            levels.append(self._level_table(grams, numerators.astype(np.float64)))
        self._levels = levels
        return self

    def _log_probs_of_windows(self, windows: np.ndarray) -> np.ndarray:
        """log p(windows[:, -1] | windows[:, :-1]) for windows of ``order`` ids."""
        if self._levels is None:
            raise RuntimeError("call fit() before scoring")
        D = self.discount
        p = np.full(len(windows), 1.0 / self.vocab_size)
        for m, (grams, totals, types) in enumerate(self._levels, start=1):
            codes = self._pack_windows(windows[:, -m:])
            count = self._lookup(grams, codes)
            ctx = codes // self.vocab_size
            total, n_types = self._lookup(totals, ctx), self._lookup(types, ctx)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = (np.maximum(count - D, 0.0) + D * n_types * p) / safe
            p = np.where(seen, mixed, p)
        return np.log(p)

    def log_probs(self, ids) -> np.ndarray:
        """log p(ids[t] | ids[t-n+1:t]) for every t >= n-1 (natural log)."""
        ids = self._as_ids(ids)
        return self._log_probs_of_windows(np.lib.stride_tricks.sliding_window_view(ids, self.order))

    def next_log_probs(self, context) -> np.ndarray:
        """The (V,) vector of log p(w | context) for a context of ``order - 1`` ids."""
        context = np.asarray(context, dtype=np.int64).reshape(-1)
        if len(context) != self.order - 1:
            raise ValueError(f"context must hold order-1={self.order - 1} ids, got {len(context)}")
        if len(context) and (context.min() < 0 or context.max() >= self.vocab_size):
            raise ValueError(f"ids must lie in [0, vocab_size={self.vocab_size})")
        words = np.arange(self.vocab_size)[:, None]
        windows = np.hstack([np.tile(context, (self.vocab_size, 1)), words])
        return self._log_probs_of_windows(windows)

    def cross_entropy(self, ids) -> float:
        """Mean negative log-likelihood in nats per predicted token."""
        return float(-self.log_probs(ids).mean())

    def perplexity(self, ids) -> float:
        return math.exp(self.cross_entropy(ids))
