"""Linear probes: what do a frozen model's features already know?

A *linear probe* (Alain & Bengio, 2017) freezes a pretrained network, turns each input
into one feature vector (here the mean of its final hidden states over the real, non-pad
tokens) and fits only a linear classifier on top. If a linear map of the features solves
a task, the features encode what the task needs.

>>> encode = module_output(gpt, gpt.ln_f)            # (B, T) ids -> (B, T, C) states
>>> x_train = pooled_features(encode, train_ids)      # (N, C)
>>> probe = fit_linear_probe(x_train, y_train, l2=1e-3)
>>> probe.accuracy(pooled_features(encode, test_ids), y_test)

The classifier is multinomial logistic regression on standardised features with an L2
penalty, fitted by L-BFGS in full batch: the problem is convex, so the fit is
deterministic and needs no learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

Encoder = Callable[[torch.Tensor], torch.Tensor]


def _describe(x) -> str:
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def mean_pool(hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Hidden states (B, T, C) -> the mean over the positions where ``keep`` (B, T) is True
    (B, C). A row with no kept position gives zeros."""
    if not torch.is_tensor(hidden) or hidden.dim() != 3:
        raise ValueError(f"hidden must be a (B, T, C) tensor, got {_describe(hidden)}")
    if not torch.is_tensor(keep) or keep.dtype != torch.bool or keep.shape != hidden.shape[:2]:
        raise ValueError(
            f"keep must be a bool tensor of shape {tuple(hidden.shape[:2])}, got {_describe(keep)}"
        )
    weights = keep.to(hidden.dtype)[..., None]  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def module_output(model: nn.Module, module: nn.Module) -> Encoder:
    """An encoder ``ids -> output of module`` that runs ``model(ids)`` and captures what
    ``module`` (a submodule of ``model``, e.g. a GPT's final LayerNorm) returns."""
    if not any(m is module for m in model.modules()):
        raise ValueError("module must be a submodule of model")

    def encode(ids: torch.Tensor) -> torch.Tensor:
        captured = []
        handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            model(ids)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise ValueError(f"module ran {len(captured)} times in one forward pass, expected 1")
        return captured[0]

    encode.model = model  # lets pooled_features switch the model to eval mode
    return encode


@torch.no_grad()
def pooled_features(
    encode: Encoder | nn.Module, ids: torch.Tensor, *, pad_id: int = 0, batch_size: int = 256
) -> torch.Tensor:
    """One vector per sequence: ``encode`` (ids (B, T) -> states (B, T, C)) applied in
    batches, then :func:`mean_pool` over the tokens that are not ``pad_id``. Returns (N, C)
    on the CPU. The model (an ``nn.Module`` encoder, or the one behind a
    :func:`module_output` encoder) is put in eval mode for the call, then restored."""
    if not torch.is_tensor(ids) or ids.dtype != torch.long or ids.dim() != 2:
        raise ValueError(f"ids must be an (N, T) tensor of dtype torch.long, got {_describe(ids)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    owner = encode if isinstance(encode, nn.Module) else getattr(encode, "model", None)
    was_training = owner.training if isinstance(owner, nn.Module) else None
    if was_training is not None:
        owner.eval()
    try:
        out = [
            mean_pool(encode(batch), batch != pad_id).float().cpu()
            for batch in ids.split(batch_size)
        ]
    finally:
        if was_training is not None:
            owner.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0)


@dataclass
class LinearProbe:
    """A fitted multinomial logistic regression on standardised features."""

    mean: torch.Tensor  # (C,)
    std: torch.Tensor  # (C,)
    weight: torch.Tensor  # (C, K)
    bias: torch.Tensor  # (K,)
    l2: float

    @property
    def n_classes(self) -> int:
        return self.weight.shape[1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(x) or x.dim() != 2 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(
                f"x must be an (N, {self.weight.shape[0]}) tensor of features, got {_describe(x)}"
            )
        return ((x.float() - self.mean) / self.std) @ self.weight + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(-1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        _check_labels(y, len(x), self.n_classes)
        return (self.predict(x) == y).float().mean().item()


def _check_labels(y, n: int, n_classes: int) -> None:
    if not torch.is_tensor(y) or y.dtype != torch.long or y.shape != (n,):
        raise ValueError(f"labels must be a long tensor of shape ({n},), got {_describe(y)}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, n_classes={n_classes})")


def probe_objective(probe: LinearProbe, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy plus ``l2/2 * ||weight||^2``: what :func:`fit_linear_probe`
    minimises."""
    return F.cross_entropy(probe.logits(x), y) + 0.5 * probe.l2 * probe.weight.pow(2).sum()


def fit_linear_probe(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_classes: int | None = None,
    l2: float = 1e-3,
    max_iter: int = 500,
) -> LinearProbe:
    """Fit multinomial logistic regression ``softmax(standardise(x) W + b)`` to labels ``y``
    by minimising :func:`probe_objective` with L-BFGS (full batch, from zero weights).

    ``x`` (N, C) features, ``y`` (N,) long labels in ``[0, n_classes)`` (default: max + 1).
    The features are standardised with their own mean and standard deviation, which the
    probe keeps and applies to new inputs."""
    if not torch.is_tensor(x) or x.dim() != 2 or len(x) < 2:
        raise ValueError(f"x must be an (N, C) tensor with N >= 2, got {_describe(x)}")
    if n_classes is None:
        n_classes = int(y.max()) + 1 if torch.is_tensor(y) and y.numel() else 0
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    _check_labels(y, len(x), n_classes)
    if not isinstance(l2, (int, float)) or l2 < 0:
        raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    x = x.detach().float()
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    weight = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    probe = LinearProbe(mean, std, weight, bias, float(l2))
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-6,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        loss = probe_objective(probe, x, y)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return LinearProbe(mean, std, weight.detach(), bias.detach(), float(l2))


def select_probe(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    l2s: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
    **kwargs,
) -> tuple[LinearProbe, dict[float, float]]:
    """Fit one probe per ``l2`` on ``train`` (x, y); return the one with the best accuracy
    on ``val`` (the first among ties) and ``{l2: val accuracy}``."""
    if not l2s:
        raise ValueError("l2s must name at least one penalty")
    scores, best, best_acc = {}, None, -1.0
    for l2 in l2s:
        probe = fit_linear_probe(*train, l2=l2, **kwargs)
        scores[l2] = probe.accuracy(*val)
        if scores[l2] > best_acc:
            best, best_acc = probe, scores[l2]
    return best, scores


__all__ = [
    "LinearProbe",
    "fit_linear_probe",
    "mean_pool",
    "module_output",
    "pooled_features",
    "probe_objective",
    "select_probe",
]
