"""One frozen encoder, many tasks: features computed once and shared by every task's head.

The cheapest way to reuse a pretrained encoder for new tasks is to leave it untouched, turn
every input into one vector (the mean of the final hidden states over the real, non-padding
tokens, :func:`fmbook.adapt.pooled_features`) and train only a small linear head per task
(a linear probe, :func:`fmbook.adapt.fit_linear_probe`). Since the encoder never changes,
the vectors of all passages can be computed in one pass and then shared: each task only
picks its rows.

>>> passages = passages_of(plays, speakers)                   # every passage either task uses
>>> bank = FeatureBank.encode(pre.model.bert, passages, pre.tokenizer)  # one pass
>>> x, y = bank.split(plays, "train")                          # rows of bank.features
>>> probe = fit_linear_probe(x, y)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from fmbook.data.plays import Passage, encode_passages

from .._checks import describe
from .probes import pooled_features


def _encoder(model: nn.Module) -> nn.Module:
    """The encoder itself: ``model.bert`` for the BERT models, else the model."""
    return model.bert if hasattr(model, "bert") else model


def character_frequencies(passages: Sequence[Passage], tokenizer) -> torch.Tensor:
    """(N, V) features with no network at all: the share of each of the tokenizer's V
    symbols among the characters of each passage (each row sums to one)."""
    if not len(passages):
        raise ValueError("passages must not be empty")
    out = torch.zeros(len(passages), tokenizer.vocab_size)
    for i, p in enumerate(passages):
        if not p.text:
            raise ValueError(f"passage {i} is empty")
        ids = torch.tensor(tokenizer.encode(p.text))
        out[i] = torch.bincount(ids, minlength=tokenizer.vocab_size) / len(ids)
    return out


def passages_of(*datamodules) -> list[Passage]:
    """Every passage of every split of the given :class:`~fmbook.data.plays.PlaysDataModule`
    objects, each once, in the order of the text."""
    if not datamodules:
        raise ValueError("passages_of needs at least one datamodule")
    found = {p for dm in datamodules for rows in dm.passages.values() for p, _ in rows}
    return sorted(found, key=lambda p: p.start)


class FeatureBank:
    """One feature vector per passage of a fixed list: ``features[i]`` (a row of one (N, C)
    tensor) belongs to ``passages[i]``. :meth:`split` serves the rows (and labels) of any
    task over these passages, so that several tasks share one computation of the features.

    :meth:`encode` computes them with a frozen encoder; any other (N, C) features of the
    passages (e.g. :func:`character_frequencies`) make a bank too.
    """

    def __init__(self, passages: Sequence[Passage], features: torch.Tensor):
        if not len(passages):
            raise ValueError("passages must not be empty")
        if (
            not torch.is_tensor(features)
            or features.dim() != 2
            or not features.is_floating_point()
            or len(features) != len(passages)
        ):
            raise ValueError(
                f"features must be a float tensor of shape ({len(passages)}, C), one row per "
                f"passage, got {describe(features)}"
            )
        self.passages = list(passages)
        self.row = {p: i for i, p in enumerate(self.passages)}
        if len(self.row) != len(self.passages):
            raise ValueError("passages must not repeat")
        self.features = features

    @classmethod
    def encode(
        cls,
        model: nn.Module,
        passages: Sequence[Passage],
        tokenizer,
        *,
        max_len: int = 128,
        batch_size: int = 256,
    ) -> FeatureBank:
        """The mean-pooled final hidden states of ``model`` (a
        :class:`~fmbook.models.bert.BERT`, or a model holding one as ``.bert``), computed in one
        pass in eval mode over batches of ``batch_size`` passages, each batch cut to its
        longest passage (padding is masked and positions are absolute, so cutting trailing
        padding changes nothing)."""
        if not len(passages):
            raise ValueError("passages must not be empty")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        encoder = _encoder(model)
        pad_id = encoder.config.pad_id
        ids = encode_passages(passages, tokenizer, max_len, cls=False)  # (N, max_len)
        chunks = []
        for batch in ids.split(batch_size):
            length = int((batch != pad_id).sum(1).max())
            chunks.append(pooled_features(encoder, batch[:, :length], pad_id=pad_id))
        return cls(passages, torch.cat(chunks))  # (N, C)

    def rows(self, passages: Sequence[Passage]) -> torch.Tensor:
        """The row indices of ``passages`` in :attr:`features`."""
        missing = [p for p in passages if p not in self.row]
        if missing:
            raise ValueError(
                f"{len(missing)} passages are not in the bank, e.g. {missing[0].text[:40]!r} "
                f"({missing[0].play}); build the bank over every passage the tasks use"
            )
        return torch.tensor([self.row[p] for p in passages], dtype=torch.long)

    def split(self, datamodule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (n, C), labels (n,))`` of one split ("train", "val" or "test") of a
        :class:`~fmbook.data.plays.PlaysDataModule`."""
        if split not in datamodule.passages:
            raise ValueError(f"split must be one of {tuple(datamodule.passages)}, got {split!r}")
        rows = datamodule.passages[split]
        labels = torch.tensor([k for _, k in rows], dtype=torch.long)
        return self.features[self.rows([p for p, _ in rows])], labels


__all__ = ["FeatureBank", "character_frequencies", "passages_of"]
