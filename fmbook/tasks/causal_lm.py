"""Causal language modelling (next-token prediction) as a LightningModule."""

from __future__ import annotations

from .base import AdamWCosineTask


class CausalLM(AdamWCosineTask):
    """Train a model to predict the next token: ``CausalLM(GPT(config), lr=3e-3)``. Any
    ``model(idx, targets) -> (logits, loss)`` works, e.g. :class:`~fmbook.models.gpt.GPT`.

    Optimiser and schedule: :class:`~.base.AdamWCosineTask` (AdamW, weight decay only on
    matrices; linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at ``max_steps``).
    Logs ``train_loss`` every step and ``val_loss`` (mean over all validation tokens).
    """

    def forward(self, idx, targets=None):
        return self.model(idx, targets)

    def training_step(self, batch, batch_idx):
        x, y = batch
        _, loss = self.model(x, y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        _, loss = self.model(x, y)
        # weighting by batch size makes the epoch mean the exact mean over tokens
        self.log("val_loss", loss, prog_bar=True, batch_size=x.size(0), sync_dist=True)
        return loss
