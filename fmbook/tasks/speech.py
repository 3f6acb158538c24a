"""Lightning tasks for speech: CTC recognition of digit strings, and spectrogram generation."""

from __future__ import annotations

import torch
import torch.nn as nn

from .base import AdamWCosineTask


class CTCRecognition(AdamWCosineTask):
    """Train a ``model(x, lengths) -> (log_probs (T, B, V), out_lengths)`` such as
    :class:`~fmbook.models.spoken_digits.CTCRecognizer` with :class:`torch.nn.CTCLoss` on
    batches ``(x, x_lengths, targets, target_lengths)`` (targets are digits, padded with
    -1; the model's label of digit ``d`` is ``d + 1``, label 0 the blank).
    Logs ``train_loss`` and ``val_loss``."""

    def __init__(self, model: nn.Module, **hparams):
        super().__init__(model, **hparams)
        self.ctc = nn.CTCLoss(blank=0, zero_infinity=True)

    def loss(self, batch):
        x, x_lengths, targets, target_lengths = batch
        log_probs, out_lengths = self.model(x, x_lengths)
        labels = (targets + 1).clamp(min=0)  # the padding is never read by CTCLoss
        return self.ctc(log_probs, labels, out_lengths, target_lengths), len(x)

    def training_step(self, batch, batch_idx):
        loss, _ = self.loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, n = self.loss(batch)
        self.log("val_loss", loss, batch_size=n)
        return loss


class SpectrogramGeneration(AdamWCosineTask):
    """Train a ``model(*conditions, target) -> (spectrogram, loss)`` such as
    :class:`~fmbook.models.spoken_digits.DigitToMel` on batches ``(*conditions, target)``.
    Logs ``train_loss`` and ``val_loss``."""

    def training_step(self, batch, batch_idx):
        _, loss = self.model(*batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        _, loss = self.model(*batch)
        self.log("val_loss", loss, batch_size=len(batch[0]))
        return loss


@torch.no_grad()
def ctc_log_probs(model: nn.Module, loader) -> list[tuple[torch.Tensor, list[int]]]:
    """``(log_probs (T_i, V), digits)`` of every string of ``loader``, ``model`` in eval mode
    (restored afterwards) on its device."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    out = []
    try:
        for x, x_lengths, targets, target_lengths in loader:
            log_probs, lengths = model(x.to(device), x_lengths.to(device))
            for i in range(len(x)):
                digits = targets[i, : int(target_lengths[i])].tolist()
                out.append((log_probs[: int(lengths[i]), i].cpu(), digits))
    finally:
        model.train(was_training)
    return out
