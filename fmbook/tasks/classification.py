"""Sequence classification (e.g. sentiment) as a LightningModule."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..metrics import accuracy
from .base import AdamWCosineTask


class SequenceClassification(AdamWCosineTask):
    """Train a ``model(ids, labels) -> (logits (B, K), loss)`` such as
    :class:`~fmbook.models.bert.BERTForSequenceClassification` on batches ``(ids, labels)``.

    Logs ``train_loss``, and ``val_loss`` and ``val_acc`` as exact means over all validation
    examples. Optimiser and schedule: :class:`~.base.AdamWCosineTask`.
    """

    def forward(self, ids, labels=None):
        return self.model(ids, labels)

    @staticmethod
    def _split(batch):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError("a SequenceClassification batch must be (ids, labels)")
        return batch

    def training_step(self, batch, batch_idx):
        ids, labels = self._split(batch)
        _, loss = self.model(ids, labels)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        ids, labels = self._split(batch)
        logits, loss = self.model(ids, labels)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(labels))
        self.log("val_acc", accuracy(logits, labels), batch_size=len(labels))
        return loss


@torch.no_grad()
def predict(model: nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted classes, true labels) over all batches ``(ids, labels)`` of ``loader``,
    with ``model(ids) -> (logits, _)`` in eval mode (restored afterwards) on its device.
    Their :func:`~fmbook.metrics.accuracy` is ``accuracy(*predict(model, loader))``."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    preds, labels = [], []
    try:
        for ids, y in loader:
            preds.append(model(ids.to(device))[0].argmax(-1).cpu())
            labels.append(y)
    finally:
        model.train(was_training)
    if not preds:
        raise ValueError("loader yielded no batches")
    return torch.cat(preds), torch.cat(labels)
