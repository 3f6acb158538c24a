"""Sequence-to-sequence training (translation) with teacher forcing, as a LightningModule.

Also home of :class:`AdamWCosineTask`, the optimiser and schedule shared by the tasks of
this package that wrap a ready-made model (:class:`Seq2Seq`, :class:`~.masked_lm.MaskedLM`,
:class:`~.classification.SequenceClassification`); it matches
:class:`~.causal_lm.CausalLM`.
"""

from __future__ import annotations

from functools import partial

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F

from .schedules import warmup_cosine


class AdamWCosineTask(L.LightningModule):
    """A LightningModule around ``self.model`` with the book's optimiser: AdamW with weight
    decay on matrices only (not on biases, norms), linear warm-up then cosine decay of the
    learning rate to ``min_lr_ratio * lr`` at ``max_steps`` (stepped every batch)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.99),
        warmup_steps: int = 100,
        max_steps: int = 5000,
        min_lr_ratio: float = 0.1,
        **hparams,
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        warmup_cosine(0, warmup_steps=warmup_steps, max_steps=max_steps, min_ratio=min_lr_ratio)
        self.save_hyperparameters(
            {
                "model_class": type(model).__name__,
                "lr": lr,
                "weight_decay": weight_decay,
                "betas": tuple(betas),
                "warmup_steps": warmup_steps,
                "max_steps": max_steps,
                "min_lr_ratio": min_lr_ratio,
                **hparams,
            }
        )
        self.model = model

    def configure_optimizers(self):
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": hp.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=hp.betas, fused=True)
        schedule = partial(
            warmup_cosine,
            warmup_steps=hp.warmup_steps,
            max_steps=hp.max_steps,
            min_ratio=hp.min_lr_ratio,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class Seq2Seq(AdamWCosineTask):
    """Train an encoder-decoder ``model(src, tgt_in, src_pad_mask=None) -> logits (B, T, V)``
    (:class:`~fmbook.models.transformer.Transformer`, an LSTM encoder-decoder, ...) with
    teacher forcing: the decoder reads the true target shifted right and predicts each next
    token.

    Batches are ``(src, tgt)`` with ``tgt = [BOS, y_1, ..., y_n, EOS, PAD, ...]`` (then
    ``tgt_in = tgt[:, :-1]``, ``tgt_out = tgt[:, 1:]``), or ``(src, tgt_in, tgt_out)``.
    Sequences are right-padded with ``pad_id`` (the same id in source and target);
    ``src_pad_mask = src != pad_id`` is passed to the model and pad targets are ignored.

    Logs ``train_loss``, and ``val_loss`` and ``val_acc`` (token accuracy) as exact means
    over all non-pad target tokens. Optimiser and schedule: :class:`AdamWCosineTask`.
    """

    def __init__(self, model: nn.Module, *, pad_id: int = 0, **kwargs):
        if not isinstance(pad_id, int) or pad_id < 0:
            raise ValueError(f"pad_id must be an int >= 0, got {pad_id!r}")
        super().__init__(model, pad_id=pad_id, **kwargs)
        self.pad_id = pad_id

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

    def _loss(self, batch) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Mean loss over non-pad target tokens, number of correct ones, and their count."""
        src, tgt_in, tgt_out = self._split(batch)
        logits = self.model(src, tgt_in, src != self.pad_id)  # (B, T, V)
        if logits.shape[:2] != tgt_out.shape:
            raise ValueError(
                f"model returned logits of shape {tuple(logits.shape)}; expected "
                f"(B, T, V) with (B, T) = {tuple(tgt_out.shape)}"
            )
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=self.pad_id)
        real = tgt_out != self.pad_id
        correct = ((logits.argmax(-1) == tgt_out) & real).sum()
        return loss, correct, int(real.sum())

    def training_step(self, batch, batch_idx):
        loss, _, _ = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, correct, n = self._loss(batch)
        if n:  # weighting by token counts makes the epoch means exact per-token means
            self.log("val_loss", loss, prog_bar=True, batch_size=n)
            self.log("val_acc", correct.float() / n, batch_size=n)
        return loss
