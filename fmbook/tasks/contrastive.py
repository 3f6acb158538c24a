"""Contrastive training of a two-tower model (CLIP-style) as a LightningModule, and the
zero-shot evaluation that comes with it."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn.contrastive import similarity_logits
from .base import AdamWCosineTask


class ContrastiveTask(AdamWCosineTask):
    """Train a ``model(x, text_ids) -> (x_emb, text_emb, loss)`` such as
    :class:`~fmbook.models.clip.TwoTower` on batches ``(x, text_ids, labels)`` (the labels
    are not used by the loss). Logs ``train_loss`` and ``temperature``.

    Validation batches are ``(x, labels)``, classified zero-shot against ``prompt_ids``
    (K, T), the text of the K classes: logs ``val_acc`` and ``val_loss``, the
    cross-entropy of the similarities to the prompts (at the model's temperature)."""

    def __init__(self, model: nn.Module, *, prompt_ids: torch.Tensor, **hparams):
        super().__init__(model, **hparams)
        if not torch.is_tensor(prompt_ids) or prompt_ids.dim() != 2:
            raise ValueError("prompt_ids must be a (classes, T) tensor of token ids")
        self.register_buffer("prompt_ids", prompt_ids.clone(), persistent=False)

    def training_step(self, batch, batch_idx):
        if not isinstance(batch, (tuple, list)) or len(batch) != 3:
            raise ValueError("a ContrastiveTask training batch must be (x, text_ids, labels)")
        x, text_ids, _ = batch
        _, _, loss = self.model(x, text_ids)
        self.log("train_loss", loss)
        self.log("temperature", self.model.temperature.detach())
        return loss

    def validation_step(self, batch, batch_idx):
        x, labels = batch
        logits = similarity_logits(
            self.model.encode_audio(x), self.model.encode_text(self.prompt_ids),
            self.model.temperature,
        )  # fmt: skip
        n = len(labels)
        self.log("val_loss", F.cross_entropy(logits, labels), batch_size=n)
        self.log("val_acc", (logits.argmax(-1) == labels).float().mean(), batch_size=n)


@torch.no_grad()
def embed(encode, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, labels) of every batch ``(x, labels, ...)`` of ``loader`` through
    ``encode`` (e.g. ``model.encode_audio``), its module in eval mode (restored after)."""
    module = getattr(encode, "__self__", None)
    was_training = module.training if module is not None else None
    if module is not None:
        module.eval()
    out, labels = [], []
    try:
        for batch in loader:
            out.append(encode(batch[0]))
            labels.append(batch[-1])
    finally:
        if module is not None:
            module.train(was_training)
    if not out:
        raise ValueError("loader yielded no batches")
    return torch.cat(out), torch.cat(labels)


@torch.no_grad()
def encode_texts_eval(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(ids)`` in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        return model.encode_text(ids)
    finally:
        model.train(was_training)


__all__ = ["ContrastiveTask", "embed", "encode_texts_eval"]
