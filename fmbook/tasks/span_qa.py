"""Extractive question answering as a LightningModule: a span model trained on batches
``(ids, starts, ends, context_starts)`` (:class:`~fmbook.data.qa.QADataModule`)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..models.bert import best_span
from .base import AdamWCosineTask


def answer_mask(ids: torch.Tensor, context_starts: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, T) True at the context's tokens: from ``context_starts`` on, and not padding."""
    positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
    return (positions[None, :] >= context_starts[:, None]) & (ids != pad_id)


class SpanQA(AdamWCosineTask):
    """Train ``model(ids, starts, ends, allowed) -> (start logits, end logits, loss)`` such
    as :class:`~fmbook.models.bert.BERTForQuestionAnswering`. Logs ``train_loss``, and
    ``val_loss`` and ``val_em`` (exact span match) over the validation examples."""

    def _step(self, batch):
        if not isinstance(batch, (tuple, list)) or len(batch) != 4:
            raise ValueError("a SpanQA batch must be (ids, starts, ends, context_starts)")
        ids, starts, ends, context_starts = batch
        allowed = answer_mask(ids, context_starts, self.model.config.pad_id)
        return self.model(ids, starts, ends, allowed), starts, ends

    def training_step(self, batch, batch_idx):
        (_, _, loss), _, _ = self._step(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        (start_logits, end_logits, loss), starts, ends = self._step(batch)
        s, e = best_span(start_logits, end_logits)
        exact = ((s == starts) & (e == ends)).float().mean()
        self.log("val_loss", loss, batch_size=len(starts))
        self.log("val_em", exact, batch_size=len(starts))
        return loss


@torch.no_grad()
def predict_spans(model: nn.Module, loader, max_answer_len: int = 30):
    """Predicted (start, end) token positions (inclusive) for every example of ``loader``
    (batches as for :class:`SpanQA`), with the model in eval mode (restored afterwards)."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    out_s, out_e = [], []
    try:
        for ids, _, _, context_starts in loader:
            ids, context_starts = ids.to(device), context_starts.to(device)
            allowed = answer_mask(ids, context_starts, model.config.pad_id)
            start_logits, end_logits, _ = model(ids, allowed=allowed)
            s, e = best_span(start_logits, end_logits, max_answer_len)
            out_s.append(s.cpu())
            out_e.append(e.cpu())
    finally:
        model.train(was_training)
    return torch.cat(out_s), torch.cat(out_e)
