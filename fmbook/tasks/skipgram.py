"""Word2vec training with Lightning: the :class:`SkipGram` task and its data.

:class:`SkipGramDataModule` turns a 1-D sequence of token ids into (centre, context) pairs
(optional frequent-word subsampling and dynamic window, see :mod:`fmbook.models.word2vec`)
and serves batches ``(center (B,), context (B,), negatives (B, K))``; the K negatives of
every pair are drawn afresh for each batch from ``count ** 0.75`` (:class:`NegativeSampler`).
The pairs are computed once in ``setup`` (so subsampling and the dynamic window are drawn
once, from ``seed``) and batched by tensor indexing, which is much faster than collating
single pairs; the loaders therefore run in the main process (no workers).

:class:`SkipGram` trains :class:`~fmbook.models.word2vec.SkipGramNS` on those batches.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ..models.word2vec import NegativeSampler, SkipGramNS, skipgram_pairs, subsample

OPTIMIZERS = ("sparse_adam", "adam")


class SkipGram(L.LightningModule):
    """Skip-gram with negative sampling as a LightningModule.

    Optimiser (``optimizer``):

    * ``"sparse_adam"`` (default): the embeddings return *sparse* gradients and
      ``torch.optim.SparseAdam`` updates only the rows of the words in the batch. A batch
      touches a few thousand of maybe 10^5 rows, so this is much cheaper than a dense update,
      and rows not in the batch keep their Adam moments untouched (closest to the reference
      C code, which updates only the rows it uses, by SGD).
    * ``"adam"``: dense gradients and ``torch.optim.Adam``; simpler, fine for small
      vocabularies, but every step updates (and decays the moments of) every row.

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


class _Pairs(Dataset):
    """(centre, context) pairs; indexed by a *list* of positions it returns a whole batch."""

    def __init__(self, centers: torch.Tensor, contexts: torch.Tensor):
        self.centers, self.contexts = centers, contexts

    def __len__(self) -> int:
        return len(self.centers)

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx)
        return self.centers[idx], self.contexts[idx]


class _WithNegatives:
    """Collate function: appends K negatives per pair, drawn from ``sampler``."""

    def __init__(self, sampler: NegativeSampler, k: int):
        self.sampler, self.k = sampler, k

    def __call__(self, batch):
        center, context = batch
        return center, context, self.sampler.sample(len(center), self.k)


class SkipGramDataModule(L.LightningDataModule):
    """Batches of skip-gram pairs with fresh negatives, from token ids.

    ``train_ids`` (and optionally ``val_ids``) are 1-D sequences of ids in
    ``[0, vocab_size)``. ``subsample_t`` (e.g. 1e-4) turns on frequent-word subsampling of
    the training ids; ``dynamic_window`` draws each centre's window from ``1..window``.
    The noise distribution uses the training counts raised to ``power``.
    """

    def __init__(
        self,
        train_ids,
        vocab_size: int,
        *,
        val_ids=None,
        window: int = 5,
        negatives: int = 5,
        batch_size: int = 1024,
        dynamic_window: bool = True,
        subsample_t: float | None = None,
        power: float = 0.75,
        seed: int = 0,
    ):
        super().__init__()
        for name, value in (("negatives", negatives), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.train_ids = self._check_ids("train_ids", train_ids, vocab_size)
        self.val_ids = None if val_ids is None else self._check_ids("val_ids", val_ids, vocab_size)
        self.vocab_size, self.window, self.negatives = vocab_size, window, negatives
        self.batch_size, self.dynamic_window = batch_size, dynamic_window
        self.subsample_t, self.power, self.seed = subsample_t, power, seed
        self.train_pairs = self.val_pairs = None

    @staticmethod
    def _check_ids(name, ids, vocab_size) -> torch.Tensor:
        ids = torch.as_tensor(ids)
        if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1-D sequence of integer ids")
        if len(ids) < 2 or ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"{name} must hold >= 2 ids in [0, vocab_size={vocab_size})")
        return ids.long()

    def setup(self, stage: str | None = None):
        if self.train_pairs is not None:
            return
        g = torch.Generator().manual_seed(self.seed)
        counts = torch.bincount(self.train_ids, minlength=self.vocab_size)
        ids = self.train_ids
        if self.subsample_t is not None:
            ids = subsample(ids, self.subsample_t, counts=counts, generator=g)
        self.train_pairs = _Pairs(
            *skipgram_pairs(ids, self.window, dynamic=self.dynamic_window, generator=g)
        )
        if self.val_ids is not None:  # validation pairs: full window, no subsampling
            self.val_pairs = _Pairs(*skipgram_pairs(self.val_ids, self.window))
        self.sampler = NegativeSampler(counts, power=self.power, generator=g)
        self._shuffle = torch.Generator().manual_seed(self.seed + 1)

    def _loader(self, pairs: _Pairs, shuffle: bool) -> DataLoader:
        order = (
            RandomSampler(pairs, generator=self._shuffle) if shuffle else SequentialSampler(pairs)
        )
        return DataLoader(
            pairs,
            sampler=BatchSampler(order, self.batch_size, drop_last=False),
            batch_size=None,  # the sampler yields whole batches of indices
            collate_fn=_WithNegatives(self.sampler, self.negatives),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_pairs, shuffle=True)

    def val_dataloader(self):
        """Validation batches, or an empty list (Lightning then skips validation) when no
        ``val_ids`` were given."""
        return [] if self.val_pairs is None else self._loader(self.val_pairs, shuffle=False)
