"""Spoken digits paired with captions, in English and French: the data of a tiny CLIP.

Every FSDD recording (:mod:`fmbook.data.fsdd`) of the digit ``d`` is paired, at each
draw, with a caption of ``d`` chosen at random from :data:`TEMPLATES` in one of the
``languages``: ``"seven"``, ``"someone says seven"``, ``"quelqu'un dit sept"``, ...
The *prompts* of zero-shot classification (:data:`PROMPTS`, ``"a recording of the digit
seven"``) are worded differently from every training caption, so that the text encoder
must generalise to them.

Text is read as characters (:func:`encode_texts`; id 0 pads), from a fixed alphabet that
holds every letter of English and French.

:class:`DigitCaptionsDataModule` gives training batches ``(x, text_ids, digits)`` in
which every digit appears at most once (``batch_size`` <= 10): in a contrastive batch
every other row is a negative, and two recordings of the same digit would be a *false*
negative (see the chapter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Sampler

from .audio import spec_augment
from .datamodules import SplitDataModule
from .fsdd import EPS, fix_frames, log_mels, parse_name, read_manifest, split_names

WORDS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
}
#: Caption templates of training; ``{}`` is the digit's word.
TEMPLATES = {
    "en": ("{}", "the digit {}", "someone says {}", "the number {}, spoken", "a voice: {}"),
    "fr": ("{}", "le chiffre {}", "quelqu'un dit {}", "le nombre {}, prononcé", "une voix : {}"),
}
#: Zero-shot prompts, worded unlike any training caption.
PROMPTS = {
    "en": "a recording of the digit {}",
    "fr": "l'enregistrement du chiffre {}",
}
#: The characters of :func:`encode_texts`; id 0 is padding, id i + 1 is ALPHABET[i].
ALPHABET = " ',-.:;!?abcdefghijklmnopqrstuvwxyzàâçèéêëîïôùûü0123456789"


def _check_language(language: str) -> None:
    if language not in WORDS:
        raise ValueError(f"language must be one of {sorted(WORDS)}, got {language!r}")


def prompts(language: str = "en", template: str | None = None) -> list[str]:
    """The ten zero-shot prompts of ``language``, digit 0 first."""
    _check_language(language)
    template = PROMPTS[language] if template is None else template
    if "{}" not in template:
        raise ValueError(f"a template needs a '{{}}' for the digit's word, got {template!r}")
    return [template.format(word) for word in WORDS[language]]


def all_captions(digit: int, languages: Sequence[str] = ("en", "fr")) -> list[str]:
    """Every training caption of ``digit``."""
    for language in languages:
        _check_language(language)
    return [t.format(WORDS[lang][digit]) for lang in languages for t in TEMPLATES[lang]]


def encode_texts(texts: Sequence[str]) -> torch.Tensor:
    """Lower-cased texts -> character ids (B, T), padded with 0 at the end to the longest."""
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    rows = []
    for text in texts:
        unknown = sorted({c for c in text.lower() if c not in ALPHABET})
        if unknown:
            raise ValueError(f"characters outside the alphabet in {text!r}: {unknown}")
        rows.append([ALPHABET.index(c) + 1 for c in text.lower()])
    ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids


def decode_texts(ids: torch.Tensor) -> list[str]:
    """Character ids (B, T) -> the texts, padding dropped (the inverse of :func:`encode_texts`)."""
    return ["".join(ALPHABET[i - 1] for i in row if i > 0) for row in ids.tolist()]


class DistinctDigitBatches(Sampler):
    """Batches of indices in which no digit appears twice: each batch takes the next
    unused recording of ``batch_size`` digits (all ten when ``batch_size`` is 10) from
    per-digit shuffled queues; an epoch ends when the rarest digit's queue runs out."""

    def __init__(self, digits: torch.Tensor, batch_size: int = 10, seed: int = 0):
        if not 1 <= batch_size <= 10:
            raise ValueError(f"batch_size must be 1 to 10 (one row per digit), got {batch_size}")
        self.digits, self.batch_size, self.seed, self.epoch = digits, batch_size, seed, 0
        self.groups = [torch.nonzero(digits == d).flatten() for d in range(10)]

    def __len__(self) -> int:
        return min(len(g) for g in self.groups) * 10 // self.batch_size

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        queues = [group[torch.randperm(len(group), generator=g)] for group in self.groups]
        n = min(map(len, queues))
        for r in range(n):
            order = torch.randperm(10, generator=g)  # which digits, in which rows
            for start in range(0, 10 - self.batch_size + 1, self.batch_size):
                yield [int(queues[d][r]) for d in order[start : start + self.batch_size]]


class DigitCaptionsDataModule(SplitDataModule):
    """FSDD spectrograms paired with random captions of their digit.

    Training batches: ``(x (B, n_mels, n_frames), text_ids (B, T), digits (B,))``, one
    row per digit (:class:`DistinctDigitBatches`), each caption drawn at random from the
    templates of ``languages``. Validation and test batches ``(x, digits)``: the zero-shot
    prompts are the text there. ``split`` and ``held_out_speaker`` are those of
    :class:`~fmbook.data.fsdd.SpokenDigitsDataModule`; ``augment=True`` masks training
    spectrograms with SpecAugment (:func:`~fmbook.data.audio.spec_augment`, its defaults)."""

    def __init__(
        self,
        split: str = "recording",
        held_out_speaker: str = "theo",
        languages: Sequence[str] = ("en", "fr"),
        batch_size: int = 10,
        n_mels: int = 40,
        n_frames: int = 80,
        seed: int = 0,
        eval_batch_size: int = 250,
        augment: bool = False,
    ):
        super().__init__()
        split_names([], split, held_out_speaker)  # validates both
        languages = tuple(languages)
        if not languages:
            raise ValueError("languages must name at least one language")
        for language in languages:
            _check_language(language)
        if not 1 <= batch_size <= 10:
            raise ValueError(f"batch_size must be 1 to 10 (one row per digit), got {batch_size}")
        self.split, self.held_out_speaker, self.languages = split, held_out_speaker, languages
        self.batch_size, self.n_mels, self.n_frames = batch_size, n_mels, n_frames
        self.seed, self.eval_batch_size, self.num_workers = seed, eval_batch_size, 0
        self.augment = bool(augment)
        self.captions = [all_captions(d, languages) for d in range(10)]
        self.datasets = None

    def setup(self, stage: str | None = None):
        if self.datasets is not None:
            return
        names = [row[0] for row in read_manifest()]
        self.names = split_names(names, self.split, self.held_out_speaker)
        self.datasets = [self._encode(part) for part in self.names]
        self._rng = torch.Generator().manual_seed(self.seed)

    def _encode(self, names):
        silence = math.log(EPS)
        specs = [fix_frames(s, self.n_frames, silence) for s in log_mels(names, self.n_mels)]
        digits = torch.tensor([parse_name(n)[0] for n in names], dtype=torch.long)
        return torch.utils.data.TensorDataset(torch.stack(specs), digits)

    def caption(self, digits: torch.Tensor) -> list[str]:
        """A random training caption for each digit."""
        picks = torch.randint(10**6, (len(digits),), generator=self._rng).tolist()
        return [
            self.captions[d][p % len(self.captions[d])]
            for d, p in zip(digits.tolist(), picks, strict=True)
        ]

    def _collate(self, batch):
        x, digits = torch.utils.data.default_collate(batch)
        if self.augment:
            x = spec_augment(x, generator=self._rng)
        return x, encode_texts(self.caption(digits)), digits

    def train_dataloader(self):
        sampler = DistinctDigitBatches(self.datasets[0].tensors[1], self.batch_size, self.seed)
        return DataLoader(self.datasets[0], batch_sampler=sampler, collate_fn=self._collate)

    def _eval_loader(self, k: int) -> DataLoader:
        return DataLoader(self.datasets[k], batch_size=self.eval_batch_size)

    def val_dataloader(self):
        return self._eval_loader(1)

    def test_dataloader(self):
        return self._eval_loader(2)


__all__ = [
    "ALPHABET",
    "DigitCaptionsDataModule",
    "DistinctDigitBatches",
    "PROMPTS",
    "TEMPLATES",
    "WORDS",
    "all_captions",
    "decode_texts",
    "encode_texts",
    "prompts",
]
