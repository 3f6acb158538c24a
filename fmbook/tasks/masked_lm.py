"""Masked language modelling (BERT's pretraining objective) as a LightningModule."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

from ..metrics import accuracy
from ..models.bert import mask_tokens
from .base import AdamWCosineTask


class MaskedLM(AdamWCosineTask):
    """Train a ``model(inputs, labels) -> (logits (B, T, V), loss)`` such as
    :class:`~fmbook.models.bert.BERTForMaskedLM` to recover masked tokens.

    Batches are token ids (B, T), or tuples/lists whose first item is the ids (as a
    ``TensorDataset`` gives). Each batch is masked on the fly by
    :func:`~fmbook.models.bert.mask_tokens` (80/10/10 rule, ``p``; dynamic masking as in
    RoBERTa, so every epoch sees new masks); ``special_ids`` (padding, [CLS], [SEP], ...)
    are never masked. Validation masks are fixed: batch ``i`` uses a generator seeded with
    ``val_seed + i``, so validation losses are comparable across epochs.

    The loss is the cross-entropy over the masked positions only. Logs ``train_loss``, and
    ``val_loss`` and ``val_acc`` (accuracy of the prediction at masked positions) as exact
    means over all masked validation tokens. Optimiser and schedule:
    :class:`~.base.AdamWCosineTask`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        mask_id: int,
        vocab_size: int,
        special_ids: Iterable[int] = (),
        p: float = 0.15,
        val_seed: int = 0,
        **kwargs,
    ):
        special_ids = tuple(int(i) for i in special_ids)
        ids = torch.zeros(1, 1, dtype=torch.long)
        mask_tokens(ids, mask_id=mask_id, vocab_size=vocab_size, special_ids=special_ids, p=p)
        super().__init__(
            model,
            mask_id=mask_id,
            vocab_size=vocab_size,
            special_ids=special_ids,
            p=p,
            val_seed=val_seed,
            **kwargs,
        )

    def forward(self, inputs, labels=None):
        return self.model(inputs, labels)

    def _mask(self, batch, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        ids = batch[0] if isinstance(batch, (tuple, list)) else batch
        hp = self.hparams
        return mask_tokens(
            ids,
            mask_id=hp.mask_id,
            vocab_size=hp.vocab_size,
            special_ids=hp.special_ids,
            p=hp.p,
            generator=generator,
        )

    def training_step(self, batch, batch_idx):
        inputs, labels = self._mask(batch)
        logits, loss = self.model(inputs, labels)
        if not (labels != -100).any():  # nothing was masked: a zero loss, not NaN
            loss = logits.sum() * 0.0
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        ids = batch[0] if isinstance(batch, (tuple, list)) else batch
        generator = torch.Generator(device=ids.device).manual_seed(
            self.hparams.val_seed + batch_idx
        )
        inputs, labels = self._mask(batch, generator)
        logits, loss = self.model(inputs, labels)
        n = int((labels != -100).sum())
        if n:  # weighting by token counts makes the epoch means exact per-token means
            self.log("val_loss", loss, prog_bar=True, batch_size=n)
            self.log("val_acc", accuracy(logits, labels), batch_size=n)
        return loss
