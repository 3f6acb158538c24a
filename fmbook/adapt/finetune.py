"""Fine-tuning a sequence classifier: the one training routine of the adaptation chapters,
and a measure of how far it moved the pretrained weights.

>>> model, seconds = fine_tune_classifier(
...     lambda: pre.classifier(n_classes, seed=0), data.train_dataloader(), lr=1e-3, steps=100
... )

The RNGs are seeded *before* the model is built, so a model factory that draws random
weights (a new head, LoRA's ``A``) and the training that follows (dropout, shuffling) are
both reproducible from ``seed``. Training is AdamW with a linear warm-up over the first
tenth of the steps and cosine decay
(:class:`~fmbook.tasks.classification.SequenceClassification`), no validation.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn as nn

from fmbook.tasks import SequenceClassification, make_trainer
from fmbook.utils import seed_everything

from .lora import LoRALinear, merge_lora


def fine_tune_classifier(
    make_model: Callable[[], nn.Module],
    train_loader: Iterable,
    *,
    lr: float,
    steps: int,
    seed: int = 0,
    weight_decay: float = 0.1,
) -> tuple[nn.Module, float]:
    """Seed everything with ``seed``, build ``make_model()`` (a classifier ``model(ids,
    labels) -> (logits, loss)``) and train it for ``steps`` optimiser steps on batches
    ``(ids, labels)`` of ``train_loader``. Returns the trained model and the training
    seconds."""
    seed_everything(seed)
    model = make_model()
    task = SequenceClassification(
        model, lr=lr, warmup_steps=max(1, steps // 10), max_steps=steps, weight_decay=weight_decay
    )
    trainer = make_trainer(max_steps=steps, val_every=steps, limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(task, train_dataloaders=train_loader)
    return model, time.perf_counter() - start


@torch.no_grad()
def relative_change(model: nn.Module, reference: nn.Module) -> float:
    """How far training moved the weights: ``||theta - theta_0|| / ||theta_0||`` over all
    parameters of ``reference`` (theta_0), each matched by name with ``model``'s (theta).

    A model with LoRA layers is merged first (in a copy), so that its weights are
    ``W + (alpha / r) B A`` and their names those of the model without LoRA. Raises
    ValueError if the names or shapes differ."""
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        model = copy.deepcopy(model)
        merge_lora(model)
    after, before = dict(model.named_parameters()), dict(reference.named_parameters())
    if after.keys() != before.keys():
        only = sorted(set(after) ^ set(before))
        raise ValueError(f"model and reference have different parameters, e.g. {only[0]!r}")
    moved, size = 0.0, 0.0
    for name, theta_0 in before.items():
        if after[name].shape != theta_0.shape:
            raise ValueError(
                f"{name}: shape {tuple(after[name].shape)} in model, "
                f"{tuple(theta_0.shape)} in reference"
            )
        moved += float((after[name].float() - theta_0.float()).pow(2).sum())
        size += float(theta_0.float().pow(2).sum())
    return (moved / size) ** 0.5


__all__ = ["fine_tune_classifier", "relative_change"]
