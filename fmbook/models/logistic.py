"""Multinomial logistic regression fitted by L-BFGS: the one linear classifier of the book.

It serves both the bag-of-words baseline (:mod:`fmbook.models.bow`, sparse features) and
the linear probes on a frozen network's features (:mod:`fmbook.adapt.probes`, standardised
dense features). The objective is convex, so the full-batch fit from zero weights is
deterministic and needs no learning rate.

>>> model = LogisticRegression(n_classes=4, l2=1e-3).fit(X, y)   # X (N, D), y (N,)
>>> model.predict(X_test), model.accuracy(X_test, y_test)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fmbook.metrics import accuracy

from .._checks import describe


class LogisticRegression:
    """``p(y | x) = softmax(x W + b)``, fitted by L-BFGS on the mean cross-entropy plus
    ``l2 / 2 * ||W||^2`` (the bias is not penalised).

    ``standardize=True`` fits on ``(x - mean) / std`` with the mean and standard deviation
    of the training features, which the model keeps and applies to new inputs. ``X`` may be
    dense or (without standardisation) sparse (N, D); ``y`` holds class ids in
    ``[0, n_classes)``. Other keyword arguments (``tolerance_grad``, ``tolerance_change``,
    ``history_size``) go to ``torch.optim.LBFGS``.
    """

    def __init__(
        self,
        n_classes: int,
        *,
        l2: float = 1e-3,
        standardize: bool = False,
        max_iter: int = 200,
        **lbfgs,
    ):
        _check_options(n_classes, l2, max_iter)
        self.n_classes, self.l2, self.max_iter = n_classes, l2, max_iter
        self.standardize, self.lbfgs = standardize, lbfgs
        self.mean: torch.Tensor | None = None  # (D,), with standardize
        self.std: torch.Tensor | None = None  # (D,)
        self.weight: torch.Tensor | None = None  # (D, K)
        self.bias: torch.Tensor | None = None  # (K,)

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """(N, K) scores ``X W + b`` (of the standardised X with ``standardize``)."""
        _check_X(self, X)
        if self.standardize:
            X = (X.float() - self.mean) / self.std  # (N, D)
        product = torch.sparse.mm(X, self.weight) if X.is_sparse else X @ self.weight
        return product + self.bias  # (N, K)

    def loss(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The objective: mean cross-entropy + ``l2 / 2 * ||W||^2``."""
        return F.cross_entropy(self.logits(X), y) + 0.5 * self.l2 * self.weight.pow(2).sum()

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> LogisticRegression:
        """Minimise :meth:`loss` over W and b by L-BFGS, in full batch, from zero."""
        _check_fit(self, X, y)
        X = X.detach().float()
        if self.standardize:
            self.mean, self.std = X.mean(0), X.std(0).clamp(min=1e-6)  # (D,) each
        self.weight = torch.zeros(X.shape[1], self.n_classes, requires_grad=True)  # (D, K)
        self.bias = torch.zeros(self.n_classes, requires_grad=True)  # (K,)
        optimizer = torch.optim.LBFGS(
            [self.weight, self.bias],
            max_iter=self.max_iter,
            line_search_fn="strong_wolfe",
            **self.lbfgs,
        )

        def closure():
            optimizer.zero_grad()
            loss = self.loss(X, y)
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(closure)
        self.weight, self.bias = self.weight.detach(), self.bias.detach()
        return self

    @torch.no_grad()
    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        return self.logits(X).softmax(-1)

    @torch.no_grad()
    def predict(self, X: torch.Tensor) -> torch.Tensor:
        return self.logits(X).argmax(-1)

    def accuracy(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """The fraction of rows of ``X`` whose predicted class equals ``y``."""
        return accuracy(self.predict(X), y)


# ---------------------------------------------------------------------------- checks


def _check_options(n_classes, l2, max_iter) -> None:
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    if not isinstance(l2, (int, float)) or not l2 >= 0:
        raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")


def _check_X(model: LogisticRegression, X) -> None:
    """X for a fitted model: (N, D) with the D it was fitted on."""
    if model.weight is None:
        raise ValueError("LogisticRegression is not fitted: call fit(X, y) first")
    _check_features(X, model.weight.shape[0], model.standardize)


def _check_features(X, D: int | None, standardize: bool) -> None:
    if (
        not torch.is_tensor(X)
        or X.dim() != 2
        or not X.dtype.is_floating_point
        or (D is not None and X.shape[1] != D)
    ):
        raise ValueError(
            f"X must be an (N, {D or 'D'}) floating-point tensor of features, got {describe(X)}"
        )
    if standardize and X.is_sparse:
        raise ValueError("X must be dense with standardize=True (standardising fills it in)")


def _check_fit(model: LogisticRegression, X, y) -> None:
    _check_features(X, None, model.standardize)
    N = X.shape[0]
    if not torch.is_tensor(y) or y.dtype != torch.long or y.shape != (N,):
        raise ValueError(
            f"y must be a long tensor of shape ({N},), one label per row of X, got {describe(y)}"
        )
    if N < (2 if model.standardize else 1):
        raise ValueError(f"X must hold at least {2 if model.standardize else 1} examples, got {N}")
    if y.min() < 0 or y.max() >= model.n_classes:
        raise ValueError(f"y must hold class ids in [0, n_classes={model.n_classes})")


__all__ = ["LogisticRegression"]
