"""Adapting a frozen encoder with linear probes: features computed once, many small heads.

The cheapest way to reuse a pretrained encoder for a new task is to leave it untouched,
turn every input into one vector (here: the mean of the encoder's final hidden states over
the real, non-padding tokens) and train only a linear classifier on those vectors, a
*linear probe*. Because the encoder never changes, its features can be computed once and
shared by every task that reads the same inputs.

>>> bank = FeatureBank(pre.model.bert, passages, pre.tokenizer)   # one pass of the encoder
>>> X, y = bank.split(plays_datamodule, "train")                   # rows of bank.features
>>> probe = fit_linear_probe(X, y)
>>> probe.accuracy(*bank.split(plays_datamodule, "test"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data.plays import Passage, encode_passages
from .nn.attention import describe


def _encoder(model: nn.Module) -> nn.Module:
    """The encoder itself: ``model.bert`` for the BERT heads, else the model."""
    return model.bert if hasattr(model, "bert") else model


@torch.no_grad()
def mean_pooled_features(
    model: nn.Module, ids: torch.Tensor, *, pad_id: int | None = None, batch_size: int = 256
) -> torch.Tensor:
    """(N, C) features: the mean of the final hidden states over the non-padding tokens.

    ``model`` is an encoder ``(ids (B, T)) -> (B, T, C)`` taking a ``pad_mask`` keyword, such
    as :class:`~fmbook.models.bert.BERT`, or a model holding one as ``.bert``. ``pad_id``
    defaults to the encoder's ``config.pad_id``. The encoder runs in eval mode (no dropout;
    its mode is restored afterwards) on its own device. Each batch is cut to its longest
    passage: with absolute positions and masked padding, trailing padding changes nothing.
    """
    encoder = _encoder(model)
    if pad_id is None:
        pad_id = encoder.config.pad_id
    if not torch.is_tensor(ids) or ids.dtype != torch.long or ids.dim() != 2 or not len(ids):
        raise ValueError(
            f"ids must be a non-empty (N, T) tensor of dtype torch.long, got {describe(ids)}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    device, was_training = next(encoder.parameters()).device, encoder.training
    encoder.eval()
    out = []
    try:
        for batch in ids.split(batch_size):
            real = batch != pad_id  # (B, T)
            length = int(real.sum(1).max())
            if length == 0:
                raise ValueError("a passage consists of padding only")
            batch, real = batch[:, :length].to(device), real[:, :length].to(device)
            h = encoder(batch, pad_mask=real)  # (B, T, C)
            weights = real.to(h.dtype)[..., None]  # (B, T, 1)
            out.append(((h * weights).sum(1) / weights.sum(1).clamp(min=1.0)).cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(out)  # (N, C)


class FeatureBank:
    """The features of a fixed list of passages under one frozen encoder, computed once.

    ``features[i]`` belongs to ``passages[i]``; :meth:`split` picks the rows (and labels) of
    one split of a :class:`~fmbook.data.plays.PlaysDataModule`, so that several tasks over
    the same passages share one pass of the encoder.
    """

    def __init__(
        self,
        model: nn.Module,
        passages: Sequence[Passage],
        tokenizer,
        *,
        max_len: int = 128,
        batch_size: int = 256,
    ):
        if not len(passages):
            raise ValueError("passages must not be empty")
        self.passages = list(passages)
        self.row = {p: i for i, p in enumerate(self.passages)}
        if len(self.row) != len(self.passages):
            raise ValueError("passages must not repeat")
        ids = encode_passages(self.passages, tokenizer, max_len, cls=False)
        self.features = mean_pooled_features(model, ids, batch_size=batch_size)  # (N, C)

    def rows(self, passages: Sequence[Passage]) -> torch.Tensor:
        """The row indices of ``passages`` in :attr:`features`."""
        missing = [p for p in passages if p not in self.row]
        if missing:
            raise ValueError(
                f"{len(missing)} passages are not in the bank, e.g. {missing[0].text[:40]!r} "
                f"({missing[0].play}); build the bank over every passage the tasks use"
            )
        return torch.tensor([self.row[p] for p in passages], dtype=torch.long)

    def split(self, datamodule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (n, C), labels (n,))`` of one split ("train", "val" or "test") of a
        :class:`~fmbook.data.plays.PlaysDataModule`."""
        if split not in datamodule.passages:
            raise ValueError(f"split must be one of {tuple(datamodule.passages)}, got {split!r}")
        rows = datamodule.passages[split]
        labels = torch.tensor([k for _, k in rows], dtype=torch.long)
        return self.features[self.rows([p for p, _ in rows])], labels


@dataclass
class LinearProbe:
    """A multinomial logistic-regression head on standardised features:
    ``logits = ((x - mean) / std) @ weight.T + bias``."""

    weight: torch.Tensor  # (K, C)
    bias: torch.Tensor  # (K,)
    mean: torch.Tensor  # (C,)
    std: torch.Tensor  # (C,)
    l2: float

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        _check_features(features, self.mean.numel())
        return ((features - self.mean) / self.std) @ self.weight.T + self.bias  # (n, K)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits(features).argmax(-1)

    def accuracy(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        return (self.predict(features) == labels).float().mean().item()


def _check_features(features, n_dims: int | None = None) -> None:
    if not torch.is_tensor(features) or features.dim() != 2 or not features.is_floating_point():
        raise ValueError(f"features must be an (n, C) float tensor, got {describe(features)}")
    if n_dims is not None and features.shape[1] != n_dims:
        raise ValueError(f"features must have {n_dims} columns, got {features.shape[1]}")


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_classes: int | None = None,
    l2: float = 1e-2,
    max_iter: int = 300,
) -> LinearProbe:
    """Fit a :class:`LinearProbe` by minimising the mean cross-entropy plus
    ``l2 / 2 * ||weight||^2`` with L-BFGS (convex: the start, zero, does not matter).

    ``n_classes`` defaults to ``labels.max() + 1``. Features are standardised with their
    own mean and standard deviation, which the probe keeps for new inputs.
    """
    _check_features(features)
    if (
        not torch.is_tensor(labels)
        or labels.dtype != torch.long
        or labels.shape != features.shape[:1]
    ):
        raise ValueError(
            f"labels must be a long tensor of shape ({len(features)},), got {describe(labels)}"
        )
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    if n_classes < 2 or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, n_classes) with n_classes >= 2, got {n_classes}")
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2!r}")
    x = features.detach().double()
    mean, std = x.mean(0), x.std(0).clamp(min=1e-8)
    z = (x - mean) / std
    weight = torch.zeros(n_classes, x.shape[1], dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(z @ weight.T + bias, labels) + 0.5 * l2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    dtype = features.dtype
    return LinearProbe(
        weight.detach().to(dtype), bias.detach().to(dtype), mean.to(dtype), std.to(dtype), l2
    )


def select_probe(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    l2_grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
    **kwargs,
) -> tuple[LinearProbe, dict[float, float]]:
    """Fit one probe per ``l2`` of ``l2_grid`` on ``train`` and keep the one with the best
    validation accuracy (the smallest ``l2`` among ties). Returns it and ``{l2: val acc}``."""
    if not len(l2_grid):
        raise ValueError("l2_grid must not be empty")
    probes = {l2: fit_linear_probe(*train, l2=l2, **kwargs) for l2 in sorted(l2_grid)}
    scores = {l2: probe.accuracy(*val) for l2, probe in probes.items()}
    best = max(scores, key=lambda l2: (scores[l2], -l2))
    return probes[best], scores


__all__ = [
    "FeatureBank",
    "LinearProbe",
    "fit_linear_probe",
    "mean_pooled_features",
    "select_probe",
]
