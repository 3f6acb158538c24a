"""Sequence-to-sequence training (translation) with teacher forcing, as a LightningModule."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..metrics import accuracy
from .base import AdamWCosineTask


class Seq2Seq(AdamWCosineTask):
    """Train an encoder-decoder ``model(src, tgt_in, src_pad_mask=None) -> logits (B, T, V)``
    (:class:`~fmbook.models.transformer.Transformer`, an LSTM encoder-decoder, ...) with
    teacher forcing: the decoder reads the true target shifted right and predicts each next
    token.

    Batches are ``(src, tgt)`` with ``tgt = [BOS, y_1, ..., y_n, EOS, PAD, ...]`` (then
    ``tgt_in = tgt[:, :-1]``, ``tgt_out = tgt[:, 1:]``), or ``(src, tgt_in, tgt_out)``.
    Sequences are right-padded with ``pad_id`` (the same id in source and target);
    ``src_pad_mask = src != pad_id`` is passed to the model and pad targets are ignored.

    ``label_smoothing`` (Szegedy et al., 2016; Vaswani et al., 2017 use 0.1) trains
    against the mixture ``(1 - eps) * one_hot(y) + eps / V`` instead of the one-hot target;
    it applies to ``train_loss`` only: ``val_loss`` is always the plain cross-entropy (nats
    per target token), so that runs with and without smoothing can be compared.

    Logs ``train_loss``, and ``val_loss`` and ``val_acc`` (token accuracy) as exact means
    over all non-pad target tokens. Optimiser and schedule: :class:`~.base.AdamWCosineTask`.
    """

    def __init__(
        self, model: nn.Module, *, pad_id: int = 0, label_smoothing: float = 0.0, **kwargs
    ):
        if not isinstance(pad_id, int) or pad_id < 0:
            raise ValueError(f"pad_id must be an int >= 0, got {pad_id!r}")
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, (int, float))
            or not 0.0 <= label_smoothing < 1.0
        ):
            raise ValueError(f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")
        super().__init__(model, pad_id=pad_id, label_smoothing=label_smoothing, **kwargs)
        self.pad_id = pad_id
        self.label_smoothing = float(label_smoothing)

    def forward(self, src, tgt_in, src_pad_mask=None):
        return self.model(src, tgt_in, src_pad_mask)

    def _split(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            src, tgt = batch
            if not torch.is_tensor(tgt) or tgt.dim() != 2 or tgt.shape[1] < 2:
                raise ValueError("tgt must be a (B, T) tensor with T >= 2 (BOS ... EOS)")
            return src, tgt[:, :-1], tgt[:, 1:]
        if isinstance(batch, (tuple, list)) and len(batch) == 3:
            return tuple(batch)
        raise ValueError("a Seq2Seq batch must be (src, tgt) or (src, tgt_in, tgt_out)")

    def _loss(
        self, batch, label_smoothing: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean loss over non-pad target tokens, the logits (B, T, V) and the targets (B, T)."""
        src, tgt_in, tgt_out = self._split(batch)
        logits = self.model(src, tgt_in, src != self.pad_id)  # (B, T, V)
        if logits.shape[:2] != tgt_out.shape:
            raise ValueError(
                f"model returned logits of shape {tuple(logits.shape)}; expected "
                f"(B, T, V) with (B, T) = {tuple(tgt_out.shape)}"
            )
        loss = F.cross_entropy(
            logits.flatten(0, 1),
            tgt_out.flatten(),
            ignore_index=self.pad_id,
            label_smoothing=label_smoothing,
        )
        return loss, logits, tgt_out

    def training_step(self, batch, batch_idx):
        loss, _, _ = self._loss(batch, self.label_smoothing)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, logits, tgt_out = self._loss(batch)
        n = int((tgt_out != self.pad_id).sum())
        if n:  # weighting by token counts makes the epoch means exact per-token means
            self.log("val_loss", loss, prog_bar=True, batch_size=n)
            self.log("val_acc", accuracy(logits, tgt_out, ignore_index=self.pad_id), batch_size=n)
        return loss
