"""Connected digits: strings of 3-6 spoken digits, built by joining FSDD recordings.

FSDD holds isolated digits. A *string* such as "4 0 7" is made by concatenating the
log-mel spectrograms of three recordings (one of "4", one of "0", one of "7", all by the
same speaker) along time, with a short gap of silence between them. Joining spectrograms
instead of audio differs from the spectrogram of the joined audio only in the one or two
frames at each joint. A recogniser of such strings must find the digits *and* their
boundaries, with no alignment given: the setting of CTC (Graves et al., 2006).

Batches are ``(x, x_lengths, targets, target_lengths)``: ``x`` ``(B, n_mels, T_max)`` padded
with silence, ``x_lengths`` ``(B,)`` the frames of each string, ``targets`` ``(B, S_max)``
the digits padded with -1, and ``target_lengths`` ``(B,)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from .fsdd import EPS, SPEAKERS, log_mels, parse_name, read_manifest


class DigitStrings(Dataset):
    """``n_strings`` random strings of ``min_len``-``max_len`` digits from the recordings
    ``names``; each string is one speaker's. Fixed by ``seed`` (the same strings each epoch)."""

    def __init__(
        self,
        names: Sequence[str],
        n_strings: int,
        min_len: int = 3,
        max_len: int = 6,
        gap_frames: int = 3,
        n_mels: int = 40,
        seed: int = 0,
    ):
        if not 1 <= min_len <= max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
        if n_strings < 1 or gap_frames < 0:
            raise ValueError(f"need n_strings >= 1, gap_frames >= 0, got {n_strings}, {gap_frames}")
        if not names:
            raise ValueError("no recordings to build strings from")
        self.names, self.specs = list(names), log_mels(names, n_mels)
        by_speaker: dict[str, list[list[int]]] = {}
        for i, name in enumerate(names):
            digit, speaker, _ = parse_name(name)
            by_speaker.setdefault(speaker, [[] for _ in range(10)])[digit].append(i)
        self.gap = torch.full((n_mels, gap_frames), math.log(EPS))
        rng = torch.Generator().manual_seed(seed)
        speakers = sorted(by_speaker)
        self.strings: list[tuple[list[int], list[int]]] = []  # (digits, recordings)
        for _ in range(n_strings):
            pool = by_speaker[speakers[int(torch.randint(len(speakers), (), generator=rng))]]
            length = int(torch.randint(min_len, max_len + 1, (), generator=rng))
            digits = [d for d in torch.randint(10, (length,), generator=rng).tolist() if pool[d]]
            if not digits:  # a speaker with too few digits in a tiny data set
                digits = [next(d for d in range(10) if pool[d])]
            picks = [pool[d][int(torch.randint(len(pool[d]), (), generator=rng))] for d in digits]
            self.strings.append((digits, picks))

    def __len__(self) -> int:
        return len(self.strings)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        digits, picks = self.strings[i]
        parts = [self.gap]
        for k in picks:
            parts += [self.specs[k], self.gap]
        return torch.cat(parts, dim=-1), torch.tensor(digits)  # (n_mels, T), (S,)


def collate_strings(batch):
    """Pad a list of ``(spectrogram, digits)`` into ``(x, x_lengths, targets, target_lengths)``."""
    specs, digits = zip(*batch, strict=True)
    x_lengths = torch.tensor([s.shape[-1] for s in specs])
    target_lengths = torch.tensor([len(d) for d in digits])
    x = torch.full((len(specs), specs[0].shape[0], int(x_lengths.max())), math.log(EPS))
    targets = torch.full((len(digits), int(target_lengths.max())), -1, dtype=torch.long)
    for i, (s, d) in enumerate(zip(specs, digits, strict=True)):
        x[i, :, : s.shape[-1]] = s
        targets[i, : len(d)] = d
    return x, x_lengths, targets, target_lengths


class ConnectedDigitsDataModule(L.LightningDataModule):
    """Digit strings from FSDD: the ``held_out`` speakers' recordings build the test strings
    (voices never heard in training); the other speakers' recordings 0-4 build the
    validation strings and their recordings 5-49 the training strings."""

    def __init__(
        self,
        held_out: Sequence[str] = ("theo",),
        n_train: int = 4000,
        n_val: int = 300,
        n_test: int = 500,
        min_len: int = 3,
        max_len: int = 6,
        batch_size: int = 32,
        n_mels: int = 40,
    ):
        super().__init__()
        unknown = sorted(set(held_out) - set(SPEAKERS))
        if unknown or not held_out or len(set(held_out)) == len(SPEAKERS):
            raise ValueError(f"held_out must be some (not all) of {SPEAKERS}, got {held_out}")
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.held_out, self.sizes = tuple(held_out), (n_train, n_val, n_test)
        self.min_len, self.max_len = min_len, max_len
        self.batch_size, self.n_mels = batch_size, n_mels
        self.datasets: list[DigitStrings] | None = None

    def setup(self, stage: str | None = None):
        if self.datasets is not None:
            return
        names = [row[0] for row in read_manifest()]
        parts: tuple[list[str], list[str], list[str]] = ([], [], [])
        for name in names:
            _, speaker, index = parse_name(name)
            part = 2 if speaker in self.held_out else 1 if index < 5 else 0
            parts[part].append(name)
        self.datasets = [
            DigitStrings(part, n, self.min_len, self.max_len, n_mels=self.n_mels, seed=seed)
            for seed, (part, n) in enumerate(zip(parts, self.sizes, strict=True))
        ]

    def _loader(self, k: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[k], self.batch_size, shuffle=shuffle, collate_fn=collate_strings
        )

    def train_dataloader(self):
        return self._loader(0, True)

    def val_dataloader(self):
        return self._loader(1, False)

    def test_dataloader(self):
        return self._loader(2, False)
