"""Causal language modelling (next-token prediction) as a LightningModule."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial

import lightning as L
import torch

from ..models.gpt import GPT, GPTConfig
from .schedules import warmup_cosine


class CausalLM(L.LightningModule):
    """Train any model with ``forward(idx, targets) -> (logits, loss)`` (by default a
    :class:`~fmbook.models.gpt.GPT`) to predict the next token.

    Optimiser: AdamW, weight decay only on matrices (not on biases, norms); schedule:
    linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at ``max_steps``.
    Logs ``train_loss`` every step and ``val_loss`` (mean over all validation tokens).
    """

    def __init__(
        self,
        config: GPTConfig | dict,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.99),
        warmup_steps: int = 100,
        max_steps: int = 5000,
        min_lr_ratio: float = 0.1,
    ):
        super().__init__()
        if isinstance(config, dict):
            config = GPTConfig(**config)
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.save_hyperparameters(
            {
                "config": asdict(config),
                "lr": lr,
                "weight_decay": weight_decay,
                "betas": tuple(betas),
                "warmup_steps": warmup_steps,
                "max_steps": max_steps,
                "min_lr_ratio": min_lr_ratio,
            }
        )
        self.model = GPT(config)

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

    def configure_optimizers(self):
        hp = self.hparams
        decay = [p for p in self.parameters() if p.requires_grad and p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.requires_grad and p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": hp.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
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
