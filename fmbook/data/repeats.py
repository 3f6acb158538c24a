"""Random token sequences in which one random segment occurs twice: the data on which
induction heads form (Olsson et al., 2022).

Each sequence holds ``seq_len + 1`` tokens drawn uniformly from ``vocab_size``; a segment
of ``L`` tokens (``L`` uniform in ``seg_len``) starting at ``first`` is copied to start at
``second >= first + L``. Inside the repeat, every token after the first is predictable
from the earlier occurrence and from nothing else: the only way to beat the chance loss
``ln(vocab_size)`` there is to look back into the context.

>>> data = RepeatedSegments(1000, seq_len=64, vocab_size=64, seg_len=(10, 20), seed=0)
>>> x, y = data[0]                    # (T,), (T,): y is x shifted by one
>>> data.first[0], data.second[0], data.length[0]
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from .. import _checks


# <show repeats>
class RepeatedSegments(Dataset):
    """n sequences of random tokens; in each, a random segment occurs twice."""

    def __init__(self, n, seq_len=64, vocab_size=64, seg_len=(10, 20), seed=0):
        _check(n, seq_len, vocab_size, seg_len)
        g = torch.Generator().manual_seed(seed)
        N = seq_len + 1  # tokens per sequence: inputs and the shifted targets
        tokens = torch.randint(0, vocab_size, (n, N), generator=g)  # (n, N)
        lo, hi = seg_len
        length = torch.randint(lo, hi + 1, (n,), generator=g)  # (n,) L
        first = (torch.rand(n, generator=g) * (N - 2 * length + 1)).long()
        room = N - first - 2 * length + 1  # where the copy may start, after the original
        second = first + length + (torch.rand(n, generator=g) * room).long()
        for i in range(n):  # copy the segment
            a, b, m = first[i], second[i], length[i]
            tokens[i, b : b + m] = tokens[i, a : a + m]
        self.tokens = tokens.to(torch.int16 if vocab_size <= 2**15 else torch.long)
        self.first, self.second, self.length = first, second, length

    def __len__(self):
        return len(self.tokens)

    def __getitem__(self, i):
        seq = self.tokens[i].long()
        return seq[:-1], seq[1:]  # x (T,), y (T,)

    def tensors(self):
        """All sequences at once: x (n, T) and y (n, T)."""
        seq = self.tokens.long()
        return seq[:, :-1], seq[:, 1:]

    def target_masks(self, idx=None):
        """Boolean (n, T) masks over the *targets* y: the tokens of the first and of the
        second occurrence that follow a token of the same occurrence (all but the first
        token of each; that one is random in both)."""
        idx = slice(None) if idx is None else idx
        T = self.tokens.shape[1] - 1
        pos = torch.arange(1, T + 1)  # position in the sequence of each target
        masks = []
        for start in (self.first[idx], self.second[idx]):
            end = start + self.length[idx]  # (n,)
            masks.append((pos > start[:, None]) & (pos < end[:, None]))
        return masks[0], masks[1]  # (n, T), (n, T)


# </show repeats>


def _check(n, seq_len, vocab_size, seg_len) -> None:
    _checks.positive_ints(n=n, seq_len=seq_len, vocab_size=vocab_size)
    if (
        not isinstance(seg_len, (tuple, list))
        or len(seg_len) != 2
        or not all(isinstance(v, int) and v >= 2 for v in seg_len)
        or seg_len[0] > seg_len[1]
    ):
        raise ValueError(
            f"seg_len must be a (low, high) pair of ints with 2 <= low <= high, got {seg_len!r}"
        )
    if 2 * seg_len[1] > seq_len + 1:
        raise ValueError(
            f"a segment of up to {seg_len[1]} tokens cannot occur twice in a sequence of "
            f"{seq_len + 1} tokens (seq_len + 1): need 2 * seg_len[1] <= seq_len + 1"
        )


class RepeatsDataModule(L.LightningDataModule):
    """Training and validation sets of :class:`RepeatedSegments`, seeded (the two sets use
    different seeds, so no sequence is shared)."""

    def __init__(
        self,
        n_train=20_000,
        n_val=512,
        seq_len=64,
        vocab_size=64,
        seg_len=(10, 20),
        batch_size=32,
        seed=0,
    ):
        super().__init__()
        _check(n_train, seq_len, vocab_size, seg_len)
        _checks.positive_ints(n_val=n_val, batch_size=batch_size)
        self.n_train, self.n_val, self.seq_len = n_train, n_val, seq_len
        self.vocab_size, self.seg_len = vocab_size, tuple(seg_len)
        self.batch_size, self.seed = batch_size, seed

    def setup(self, stage=None):
        if not hasattr(self, "train"):
            args = (self.seq_len, self.vocab_size, self.seg_len)
            self.train = RepeatedSegments(self.n_train, *args, seed=2 * self.seed)
            self.val = RepeatedSegments(self.n_val, *args, seed=2 * self.seed + 1)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, generator=g)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)


__all__ = ["RepeatedSegments", "RepeatsDataModule"]
