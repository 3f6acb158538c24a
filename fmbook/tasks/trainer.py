"""A Trainer configured for the book, and a callback that keeps the loss history."""

from __future__ import annotations

import time

import lightning as L
import pandas as pd


class History(L.Callback):
    """Records the training loss every ``every`` steps and each validation loss, with
    the wall-clock seconds since training started."""

    def __init__(self, every: int = 10):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.rows: list[dict] = []
        self._t0: float | None = None

    def elapsed(self) -> float:
        return 0.0 if self._t0 is None else time.perf_counter() - self._t0

    def on_train_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step % self.every == 0 and "train_loss" in trainer.callback_metrics:
            loss = float(trainer.callback_metrics["train_loss"])
            self.rows.append(
                {"step": step, "split": "train", "loss": loss, "seconds": self.elapsed()}
            )

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or "val_loss" not in trainer.callback_metrics:
            return
        loss = float(trainer.callback_metrics["val_loss"])
        self.rows.append(
            {"step": trainer.global_step, "split": "val", "loss": loss, "seconds": self.elapsed()}
        )

    def frame(self) -> pd.DataFrame:
        """The history as a table with columns step, split, loss, seconds."""
        return pd.DataFrame(self.rows, columns=["step", "split", "loss", "seconds"])

    def val(self) -> pd.DataFrame:
        return self.frame().query("split == 'val'").reset_index(drop=True)


def make_trainer(*, max_steps: int, val_every: int, callbacks=(), **kwargs) -> L.Trainer:
    """A ``lightning.Trainer`` for book chapters: GPU when present (``accelerator="auto"``),
    validation every ``val_every`` steps, no progress bars, no files written."""
    if max_steps < 1 or val_every < 1:
        raise ValueError(f"max_steps and val_every must be >= 1, got {max_steps}, {val_every}")
    options = dict(
        accelerator="auto",
        devices=1,
        max_steps=max_steps,
        val_check_interval=val_every,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=list(callbacks),
    )
    options.update(kwargs)
    return L.Trainer(**options)


def evaluate(
    task: L.LightningModule, datamodule: L.LightningDataModule, metric: str = "val_loss"
) -> float:
    """Run the validation loop once over the whole validation set and return ``metric``."""
    trainer = L.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    results = trainer.validate(task, datamodule=datamodule, verbose=False)
    if not results or metric not in results[0]:
        raise ValueError(f"validation logged no {metric!r}; it logged {results}")
    return float(results[0][metric])
