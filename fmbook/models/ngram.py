"""Count-based n-gram language models with add-k smoothing.

An order-n model predicts token t from the n-1 tokens before it:

    p(w | c) = (count(c, w) + k) / (count(c) + k * V)

Contexts are packed into one integer (base V), so counting is a sort over the corpus:
fast enough for orders up to 5 on a million characters.
"""

from __future__ import annotations

import math

import numpy as np


class NGramLM:
    """An add-k smoothed n-gram model over integer token ids ``0 .. vocab_size-1``."""

    def __init__(self, order: int, vocab_size: int, k: float = 1.0):
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be an int >= 1, got {order!r}")
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be an int >= 1, got {vocab_size!r}")
        if vocab_size**order >= 2**62:
            raise ValueError(f"vocab_size**order = {vocab_size}**{order} is too large to pack")
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

    def _as_ids(self, ids) -> np.ndarray:
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
        if self._grams is None:
            raise RuntimeError("call fit() before scoring")
        ids = self._as_ids(ids)
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
