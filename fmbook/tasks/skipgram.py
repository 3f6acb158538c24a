"""Word2vec training with Lightning: the :class:`SkipGram` task.

:class:`SkipGram` trains :class:`~fmbook.models.word2vec.SkipGramNS` on batches
``(center (B,), context (B,), negatives (B, k))``, as served by
:class:`fmbook.data.skipgram.SkipGramDataModule` (fresh pairs every epoch, fresh
negatives every batch).
"""

from __future__ import annotations

import lightning as L
import torch

from ..models.word2vec import SkipGramNS

OPTIMIZERS = ("sparse_adam", "adam")


class SkipGram(L.LightningModule):
    """Skip-gram with negative sampling as a LightningModule.

    Optimiser (``optimizer``):

    * ``"sparse_adam"`` (default): the embeddings return *sparse* gradients and
      ``torch.optim.SparseAdam`` updates only the rows of the words in the batch, and rows
      not in the batch keep their Adam moments untouched (closest to the reference C code,
      which updates only the rows it uses, by SGD). It pays for sorting and merging the
      batch's rows (``coalesce``); that is worth it when a batch touches a small part of a
      large vocabulary, where a dense step would update every row.
    * ``"adam"``: dense gradients and ``torch.optim.Adam``; every step updates (and decays
      the moments of) every row. For small vocabularies it is faster: on the 3,322 words of
      ``benchmarks/word2vec.py`` a step of 4,096 pairs took about 40% less CPU time than
      with ``SparseAdam``.

    Logs ``train_loss`` and ``val_loss`` (the mean negative SGNS objective per pair).
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 100,
        *,
        lr: float = 1e-3,
        optimizer: str = "sparse_adam",
    ):
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.save_hyperparameters()
        self.model = SkipGramNS(vocab_size, dim, sparse=optimizer == "sparse_adam")

    def forward(self, center, context, negatives):
        return self.model(center, context, negatives)

    def training_step(self, batch, batch_idx):
        loss = self.model(*batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self.model(*batch)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(batch[0]))
        return loss

    def configure_optimizers(self):
        if self.hparams.optimizer == "sparse_adam":
            return torch.optim.SparseAdam(list(self.parameters()), lr=self.hparams.lr)
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def word_vectors(self) -> torch.Tensor:
        return self.model.word_vectors()
