"""Linear probes: what do a frozen model's features already know?

A *linear probe* (Alain & Bengio, 2017) freezes a pretrained network, turns each input
into one feature vector (here the mean of its final hidden states over the real, non-pad
tokens) and fits only a linear classifier on top. If a linear map of the features solves
a task, the features encode what the task needs.

>>> encode = module_output(gpt, gpt.ln_f)            # (B, T) ids -> (B, T, C) states
>>> x_train = pooled_features(encode, train_ids)      # (N, C)
>>> probe = fit_linear_probe(x_train, y_train, l2=1e-3)
>>> probe.accuracy(pooled_features(encode, test_ids), y_test)

The classifier is :class:`~fmbook.models.logistic.LogisticRegression` on standardised
features with an L2 penalty, fitted by L-BFGS in full batch: the problem is convex, so the
fit is deterministic and needs no learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
import torch.nn as nn

from fmbook.interpret.hooks import forward_hooks
from fmbook.models.logistic import LogisticRegression
from fmbook.nn.pooling import mean_pool

from .._checks import describe

Encoder = Callable[[torch.Tensor], torch.Tensor]

# L-BFGS settings of the probes: a tighter gradient tolerance and a shorter history than
# torch's defaults (what the probes have always used).
PROBE_LBFGS = dict(tolerance_grad=1e-6, tolerance_change=1e-10, history_size=20)


def module_output(model: nn.Module, module: nn.Module) -> Encoder:
    """An encoder ``ids -> output of module`` that runs ``model(ids)`` and captures what
    ``module`` (a submodule of ``model``, e.g. a GPT's final LayerNorm) returns."""
    _check_submodule(model, module)

    def encode(ids: torch.Tensor) -> torch.Tensor:
        captured = []
        with forward_hooks({"": module}, lambda *call: captured.append(call[-1])):
            model(ids)
        _check_one_call(captured)
        return captured[0]

    encode.model = model  # lets pooled_features switch the model to eval mode
    return encode


@torch.no_grad()
def pooled_features(
    encode: Encoder | nn.Module, ids: torch.Tensor, *, pad_id: int = 0, batch_size: int = 256
) -> torch.Tensor:
    """One vector per sequence: ``encode`` (ids (B, T) -> states (B, T, C)) applied in
    batches, then :func:`~fmbook.nn.pooling.mean_pool` over the tokens that are not
    ``pad_id``. Returns (N, C) on the CPU. The model (an ``nn.Module`` encoder, or the one
    behind a :func:`module_output` encoder) is put in eval mode for the call, then restored."""
    _check_ids(ids, batch_size)
    with _eval_mode(encode):
        out = [
            mean_pool(encode(batch), batch != pad_id).float().cpu()  # (B, C)
            for batch in ids.split(batch_size)
        ]
    return torch.cat(out) if out else torch.zeros(0, 0)


def fit_linear_probe(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_classes: int | None = None,
    l2: float = 1e-3,
    max_iter: int = 500,
) -> LogisticRegression:
    """Fit multinomial logistic regression ``softmax(standardise(x) W + b)`` to labels ``y``
    (:class:`~fmbook.models.logistic.LogisticRegression` with ``standardize=True``).

    ``x`` (N, C) features, ``y`` (N,) long labels in ``[0, n_classes)`` (default: max + 1).
    The features are standardised with their own mean and standard deviation, which the
    probe keeps and applies to new inputs."""
    n_classes = _largest_label(y) + 1 if n_classes is None else n_classes
    probe = LogisticRegression(n_classes, l2=l2, standardize=True, max_iter=max_iter, **PROBE_LBFGS)
    return probe.fit(x, y)


def select_probe(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    l2s: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
    **kwargs,
) -> tuple[LogisticRegression, dict[float, float]]:
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


# <show control>
def control_labels(types, labels, seed=0):
    """A control task (Hewitt & Liang, 2019): every type (a word or character id, (N,))
    gets one label drawn from the empirical distribution of the task's labels (N,), and
    all its tokens carry it. A probe can only solve it by memorising types."""
    _check_control(types, labels)
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(labels).float()  # (n_classes,): the label distribution
    kinds, which = torch.unique(types, return_inverse=True)  # (K,), (N,): type of each
    per_type = torch.multinomial(counts, len(kinds), replacement=True, generator=g)
    return per_type[which]  # (N,): a function of the type only


# </show control>


@contextmanager
def _eval_mode(encode: Encoder | nn.Module):
    """Put the model behind ``encode`` (if any) in eval mode; restore its mode on exit."""
    owner = encode if isinstance(encode, nn.Module) else getattr(encode, "model", None)
    was_training = owner.training if isinstance(owner, nn.Module) else None
    if was_training is not None:
        owner.eval()
    try:
        yield
    finally:
        if was_training is not None:
            owner.train(was_training)


# ---------------------------------------------------------------------------- checks


def _largest_label(y) -> int:
    """The largest label in ``y`` (-1 when there is none, which n_classes then refuses)."""
    return int(y.max()) if torch.is_tensor(y) and y.numel() else -1


def _check_submodule(model: nn.Module, module: nn.Module) -> None:
    if not any(m is module for m in model.modules()):
        raise ValueError("module must be a submodule of model")


def _check_one_call(captured: list) -> None:
    if len(captured) != 1:
        raise ValueError(f"module ran {len(captured)} times in one forward pass, expected 1")


def _check_control(types, labels) -> None:
    for name, t in (("types", types), ("labels", labels)):
        if not torch.is_tensor(t) or t.dtype != torch.long or t.dim() != 1 or not len(t):
            raise ValueError(
                f"{name} must be a non-empty (N,) torch.long tensor, got {describe(t)}"
            )
    if types.shape != labels.shape:
        raise ValueError(
            f"types and labels must have the same length, got {len(types)} and {len(labels)}"
        )
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got a minimum of {int(labels.min())}")


def _check_ids(ids, batch_size) -> None:
    if not torch.is_tensor(ids) or ids.dtype != torch.long or ids.dim() != 2:
        raise ValueError(f"ids must be an (N, T) tensor of dtype torch.long, got {describe(ids)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")


__all__ = [
    "PROBE_LBFGS",
    "control_labels",
    "fit_linear_probe",
    "module_output",
    "pooled_features",
    "select_probe",
]
