"""Causal language modelling (next-token prediction) as a LightningModule."""

from __future__ import annotations

from dataclasses import asdict

from ..models.gpt import GPT, GPTConfig
from .base import AdamWCosineTask


class CausalLM(AdamWCosineTask):
    """Train a :class:`~fmbook.models.gpt.GPT` (built from ``config``) to predict the next
    token. Any model with ``forward(idx, targets) -> (logits, loss)`` can be passed as
    ``model=`` instead.

    Optimiser and schedule: :class:`~.base.AdamWCosineTask` (AdamW, weight decay only on
    matrices; linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at ``max_steps``).
    Logs ``train_loss`` every step and ``val_loss`` (mean over all validation tokens).
    """

    def __init__(self, config: GPTConfig | dict, **kwargs):
        if isinstance(config, dict):
            config = GPTConfig(**config)
        kwargs.pop("model_class", None)  # saved by the base class; the config rebuilds it
        super().__init__(GPT(config), config=asdict(config), **kwargs)

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
        self.log("val_loss", loss, prog_bar=True, batch_size=x.size(0))
        return loss
