"""The classic task-specific baseline: bag-of-n-grams features + logistic regression.

Before pretrained models, a text classifier was built by hand for each task: choose
features (counts of words or of character n-grams, weighted by TF-IDF), then fit a linear
model on the labelled examples. It needs no pretraining, trains in a second, and is often
hard to beat when the labels depend on surface cues (names, topical words).

* :class:`BagOfNgrams` turns texts into a sparse (N, V) matrix of (TF-IDF weighted,
  L2-normalised) n-gram counts; its vocabulary comes from the training texts only.
* :class:`~fmbook.models.logistic.LogisticRegression` is multinomial logistic regression
  with an L2 penalty, fitted full-batch with L-BFGS in torch.
* :class:`BagOfNgramsClassifier` chains the two: ``fit(texts, labels)``, ``predict(texts)``,
  ``predict_proba(texts)``, ``accuracy(texts, labels)``.

>>> clf = BagOfNgramsClassifier(analyzer="word").fit(train_texts, train_labels)
>>> clf.accuracy(test_texts, test_labels)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import torch

from fmbook.metrics import accuracy

from .logistic import LogisticRegression

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def _check_texts(texts, name: str = "texts") -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"{name} must be a sequence of strings, got {type(texts).__name__}")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"{name} must hold only strings; item {bad[0]} is {texts[bad[0]]!r}")
    return list(texts)


class BagOfNgrams:
    """Sparse n-gram count features, optionally TF-IDF weighted, rows L2-normalised.

    ``analyzer``: ``"word"`` (lower-cased words) or ``"char"`` (character n-grams of the
    lower-cased text, newlines read as spaces). ``ngram_range=(lo, hi)``: the n-gram orders.
    ``min_df``: keep n-grams that occur in at least this many training texts.
    ``max_features``: keep only the most frequent ones (None: all).
    ``tfidf``: weight counts by the smoothed inverse document frequency
    ``idf = log((1 + N) / (1 + df)) + 1`` and use ``1 + log(count)`` for counts
    (``sublinear``); without it, raw counts. N-grams not in the vocabulary are ignored.
    """

    def __init__(
        self,
        analyzer: str = "word",
        ngram_range: tuple[int, int] = (1, 1),
        *,
        min_df: int = 1,
        max_features: int | None = None,
        tfidf: bool = True,
        sublinear: bool = True,
    ):
        if analyzer not in ("word", "char"):
            raise ValueError(f"analyzer must be 'word' or 'char', got {analyzer!r}")
        pair = isinstance(ngram_range, (tuple, list)) and len(ngram_range) == 2
        lo, hi = ngram_range if pair else (0, 0)
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise ValueError(
                f"ngram_range must be (lo, hi) with 1 <= lo <= hi, got {ngram_range!r}"
            )
        if not isinstance(min_df, int) or min_df < 1:
            raise ValueError(f"min_df must be an int >= 1, got {min_df!r}")
        if max_features is not None and (not isinstance(max_features, int) or max_features < 1):
            raise ValueError(f"max_features must be None or an int >= 1, got {max_features!r}")
        self.analyzer, self.ngram_range = analyzer, (lo, hi)
        self.min_df, self.max_features = min_df, max_features
        self.tfidf, self.sublinear = tfidf, sublinear
        self.vocabulary: dict[str, int] | None = None
        self.idf: torch.Tensor | None = None

    def ngrams(self, text: str) -> list[str]:
        """The n-grams of one text, in order (with repeats)."""
        lo, hi = self.ngram_range
        if self.analyzer == "word":
            units, sep = _WORD.findall(text.lower()), " "
        else:
            units, sep = list(" ".join(text.lower().split())), ""
        return [
            sep.join(units[i : i + n]) for n in range(lo, hi + 1) for i in range(len(units) - n + 1)
        ]

    def fit(self, texts: Sequence[str]) -> BagOfNgrams:
        """Build the vocabulary (and document frequencies) from ``texts``."""
        texts = _check_texts(texts)
        if not texts:
            raise ValueError("texts must not be empty")
        df = Counter(g for t in texts for g in set(self.ngrams(t)))
        kept = sorted((g for g, c in df.items() if c >= self.min_df), key=lambda g: (-df[g], g))
        if self.max_features is not None:
            kept = kept[: self.max_features]
        if not kept:
            raise ValueError(f"no n-gram occurs in at least min_df={self.min_df} texts")
        self.vocabulary = {g: i for i, g in enumerate(kept)}
        counts = torch.tensor([df[g] for g in kept], dtype=torch.float32)
        self.idf = torch.log((1 + len(texts)) / (1 + counts)) + 1
        return self

    @property
    def size(self) -> int:
        self._check_fitted()
        return len(self.vocabulary)

    def _check_fitted(self) -> None:
        if self.vocabulary is None:
            raise ValueError("BagOfNgrams is not fitted: call fit(texts) first")

    def transform(self, texts: Sequence[str]) -> torch.Tensor:
        """A sparse (N, V) float tensor: one row of features per text (zero rows for texts
        with no known n-gram)."""
        self._check_fitted()
        texts = _check_texts(texts)
        rows, cols, vals = [], [], []
        for r, text in enumerate(texts):
            counts = Counter(g for g in self.ngrams(text) if g in self.vocabulary)
            for g, c in counts.items():
                rows.append(r)
                cols.append(self.vocabulary[g])
                vals.append(1 + math.log(c) if self.tfidf and self.sublinear else float(c))
        index = torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1)
        values = torch.tensor(vals, dtype=torch.float32)
        if self.tfidf:
            values = values * self.idf[index[1]]
        norms = torch.zeros(len(texts)).index_add_(0, index[0], values**2).sqrt()
        values = values / norms[index[0]].clamp(min=1e-12)
        shape = (len(texts), self.size)
        return torch.sparse_coo_tensor(index, values, shape, check_invariants=True).coalesce()

    def fit_transform(self, texts: Sequence[str]) -> torch.Tensor:
        return self.fit(texts).transform(texts)


class BagOfNgramsClassifier:
    """:class:`BagOfNgrams` features + :class:`LogisticRegression`, fitted on the same
    labelled texts. ``n_classes``: the number of classes (default: the largest label + 1).
    Other keyword arguments go to :class:`BagOfNgrams`."""

    def __init__(
        self, *, n_classes: int | None = None, l2: float = 1e-3, max_iter: int = 200, **features
    ):
        self.features = BagOfNgrams(**features)
        self.n_classes, self.l2, self.max_iter = n_classes, l2, max_iter
        self.model: LogisticRegression | None = None

    def fit(self, texts: Sequence[str], labels) -> BagOfNgramsClassifier:
        texts = _check_texts(texts)
        y = torch.as_tensor(labels, dtype=torch.long) if not torch.is_tensor(labels) else labels
        if y.shape != (len(texts),):
            raise ValueError(
                f"labels must hold one label per text ({len(texts)}), got shape {tuple(y.shape)}"
            )
        if y.numel() and y.min() < 0:
            raise ValueError("labels must be class ids >= 0")
        n_classes = self.n_classes or (max(int(y.max()) + 1, 2) if y.numel() else 2)
        X = self.features.fit_transform(texts)
        self.model = LogisticRegression(n_classes, l2=self.l2, max_iter=self.max_iter).fit(X, y)
        return self

    def _check_fitted(self) -> None:
        if self.model is None:
            raise ValueError("BagOfNgramsClassifier is not fitted: call fit(texts, labels) first")

    def predict(self, texts: Sequence[str]) -> torch.Tensor:
        self._check_fitted()
        return self.model.predict(self.features.transform(texts))

    def predict_proba(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, n_classes) class probabilities of ``texts`` (each row sums to 1)."""
        self._check_fitted()
        with torch.no_grad():
            return self.model.predict_proba(self.features.transform(texts))

    def accuracy(self, texts: Sequence[str], labels) -> float:
        """The fraction of ``texts`` whose predicted class equals the label."""
        return accuracy(self.predict(texts), torch.as_tensor(labels, dtype=torch.long))

    def top_features(self, k: int = 10) -> dict[int, list[tuple[str, float]]]:
        """``{class: [(n-gram, weight), ...]}``: the ``k`` n-grams with the largest weights
        for each class (the evidence the linear model relies on most)."""
        self._check_fitted()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        names = list(self.features.vocabulary)
        W = self.model.weight
        out = {}
        for c in range(W.shape[1]):
            values, index = W[:, c].topk(min(k, W.shape[0]))
            out[c] = [(names[i], v) for i, v in zip(index.tolist(), values.tolist(), strict=True)]
        return out


__all__ = ["BagOfNgrams", "BagOfNgramsClassifier"]
