"""The optimiser and schedule shared by every task of the book, and how a task records
its model so that a checkpoint can rebuild it."""

from __future__ import annotations

import dataclasses
from functools import partial

import lightning as L
import torch
import torch.nn as nn

from .schedules import warmup_cosine

# recorded from the model by every task; ignored when passed back in (load_from_checkpoint)
MODEL_KEYS = ("model_class", "config_class", "config")


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def model_hparams(model: nn.Module) -> dict:
    """What rebuilds ``model``: its class and, if it has a dataclass ``config``, the config's
    class and fields as plain data (so that checkpoints load with ``weights_only=True``)."""
    config = getattr(model, "config", None)
    has_config = dataclasses.is_dataclass(config) and not isinstance(config, type)
    return {
        "model_class": _qualified_name(type(model)),
        "config_class": _qualified_name(type(config)) if has_config else None,
        "config": dataclasses.asdict(config) if has_config else None,
    }


class AdamWCosineTask(L.LightningModule):
    """A LightningModule around ``self.model`` with the book's optimiser: AdamW with weight
    decay on matrices only (not on biases, norms), linear warm-up then cosine decay of the
    learning rate to ``min_lr_ratio * lr`` at ``max_steps`` (stepped every batch).

    Every task takes the model first and its hyper-parameters as keywords, e.g.
    ``CausalLM(GPT(config), lr=3e-3)``. The saved hyper-parameters name the model's class
    and hold its config (:func:`model_hparams`), so that
    :func:`fmbook.checkpoints.load_checkpoint` can rebuild the task from a checkpoint.
    """

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
        for key in MODEL_KEYS:  # given back by load_from_checkpoint; recomputed from the model
            hparams.pop(key, None)
        self.save_hyperparameters(
            {
                **model_hparams(model),
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
