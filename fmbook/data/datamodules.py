"""LightningDataModules: text -> token ids -> (input, target) batches."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from ..tokenizers import BPETokenizer, CharTokenizer


class RandomWindows(Dataset):
    """Every window of ``block_size`` tokens: item i is (ids[i:i+T], ids[i+1:i+T+1]).

    Shuffled, it gives the random windows of the standard character benchmark.
    """

    def __init__(self, ids: torch.Tensor, block_size: int):
        if ids.dim() != 1 or len(ids) <= block_size:
            raise ValueError(
                f"need a 1-D tensor of more than block_size={block_size} ids, got shape {tuple(ids.shape)}"
            )
        self.ids, self.block_size = ids, block_size

    def __len__(self) -> int:
        return len(self.ids) - self.block_size

    def __getitem__(self, i: int):
        x = self.ids[i : i + self.block_size]
        return x, self.ids[i + 1 : i + 1 + self.block_size]


class ConsecutiveWindows(RandomWindows):
    """Non-overlapping windows covering the sequence once: every target token is
    predicted exactly once, so the mean loss over them is the loss of the whole split."""

    def __len__(self) -> int:
        return (len(self.ids) - 1) // self.block_size

    def __getitem__(self, i: int):
        return super().__getitem__(i * self.block_size)


class TinyShakespeareDataModule(L.LightningDataModule):
    """Tiny Shakespeare as characters: the first 90% of the text trains, the last 10%
    validates (the split of the standard character-level benchmark).

    The vocabulary is the set of characters of the whole text (65 of them).
    """

    def __init__(
        self,
        block_size: int = 128,
        batch_size: int = 32,
        train_fraction: float = 0.9,
        num_workers: int = 0,
    ):
        super().__init__()
        if block_size < 1 or batch_size < 1:
            raise ValueError(
                f"block_size and batch_size must be >= 1, got {block_size}, {batch_size}"
            )
        self.block_size, self.batch_size = block_size, batch_size
        self.train_fraction, self.num_workers = train_fraction, num_workers
        self.tokenizer: CharTokenizer | None = None

    def prepare_data(self):
        from .shakespeare import load_text

        load_text()  # downloads (once) if the file is in neither the mirror nor the cache

    def setup(self, stage: str | None = None):
        if self.tokenizer is not None:
            return
        from .shakespeare import load_text, split

        text = load_text()
        train, val = split(text, self.train_fraction)
        self.tokenizer = self.make_tokenizer(text, train)
        self.train_ids = torch.tensor(self.tokenizer.encode(train), dtype=torch.long)
        self.val_ids = torch.tensor(self.tokenizer.encode(val), dtype=torch.long)

    def make_tokenizer(self, text: str, train: str):
        """The tokenizer: here the characters of the whole text (subclasses may differ)."""
        return CharTokenizer.train(text)

    def train_dataloader(self):
        return DataLoader(
            RandomWindows(self.train_ids, self.block_size),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
        )

    def val_dataloader(self):
        return DataLoader(
            ConsecutiveWindows(self.val_ids, self.block_size),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
        )


class TinyShakespeareBPEDataModule(TinyShakespeareDataModule):
    """Tiny Shakespeare as byte-level BPE tokens, with the split of
    :class:`TinyShakespeareDataModule` (the first ``train_fraction`` of the characters
    trains, the rest validates).

    The :class:`~fmbook.tokenizers.BPETokenizer` (``vocab_size`` tokens, pre-splitting
    ``pattern``: ``None``, ``"gpt2"`` or ``"gpt4"``) is trained on the training part only,
    so validation measures text the tokenizer has not seen either. Windows of
    ``block_size`` tokens: :class:`RandomWindows` to train, :class:`ConsecutiveWindows`
    to validate.
    """

    def __init__(
        self,
        vocab_size: int = 512,
        block_size: int = 128,
        batch_size: int = 32,
        train_fraction: float = 0.9,
        pattern: str | None = "gpt2",
        num_workers: int = 0,
    ):
        super().__init__(block_size, batch_size, train_fraction, num_workers)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(
                f"vocab_size must be an integer >= 256 (the bytes), got {vocab_size!r}"
            )
        self.vocab_size, self.pattern = vocab_size, pattern

    def make_tokenizer(self, text: str, train: str) -> BPETokenizer:
        """BPE trained on the training part only."""
        return BPETokenizer.train(train, self.vocab_size, pattern=self.pattern)


class SplitDataModule(L.LightningDataModule):
    """Loaders over three datasets held in ``self.datasets`` (train, val, test), with
    ``self.batch_size`` and ``self.num_workers``; training batches are shuffled.
    Subclasses fill ``self.datasets`` in ``setup`` and may override :meth:`collate_fn`."""

    def collate_fn(self):
        return None  # PyTorch's default collation

    def _loader(self, k: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[k],
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=self.collate_fn(),
            num_workers=self.num_workers,
        )

    def train_dataloader(self):
        return self._loader(0, shuffle=True)

    def val_dataloader(self):
        return self._loader(1, shuffle=False)

    def test_dataloader(self):
        return self._loader(2, shuffle=False)
