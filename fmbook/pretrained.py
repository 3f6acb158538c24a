"""The book's own small pretrained model, trained on first use and then cached.

Several chapters adapt *one* pretrained model to new tasks. Instead of downloading weights,
fmbook trains it from a fixed, seeded recipe (a character-level BERT pretrained with the
masked-language-model objective on the pretraining part of Tiny Shakespeare, see
:class:`~fmbook.data.plays.PlaysCorpus`) and caches the result in
``<cache>/models/shakespeare-bert-<hash>.pt`` (``<cache>``: ``$FMBOOK_CACHE`` or
``~/.cache/fmbook``), where the hash covers every number of the recipe, so each profile's
recipe has its own file. The file is a plain dict (``state_dict``, ``vocab``, ``recipe``,
``history``), read back with :func:`fmbook.checkpoints.load_state` (``weights_only=True``).
The first chapter that needs it pays for the training (a few minutes on a CPU in the
full profile, seconds in the smoke profile); later ones load it in a second.

>>> pre = load_pretrained_bert()
>>> pre.model            # BERTForMaskedLM, in eval mode
>>> pre.tokenizer        # characters + PAD/MASK/CLS (ids 0, 1, 2)
>>> pre.corpus           # the PlaysCorpus it was pretrained on
>>> pre.history          # its training and validation losses (a DataFrame)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader

from . import profile
from .checkpoints import load_state
from .data.datamodules import ConsecutiveWindows, RandomWindows
from .data.plays import CLS, MASK, PAD, PlaysCorpus, encoder_tokenizer
from .data.registry import _cache_dir
from .data.shakespeare import load_text
from .models.bert import BERTConfig, BERTForMaskedLM, BERTForSequenceClassification
from .tasks import History, MaskedLM, make_trainer
from .tokenizers import CharTokenizer
from .utils import seed_everything


@dataclass(frozen=True)
class BERTRecipe:
    """Everything that determines the pretrained model (and its cache file name).

    Two choices differ from BERT's: 25% of the characters are selected for masking (BERT:
    15%; the 80/10/10 rule is unchanged), which gives more targets per step and helps small
    budgets (Wettig et al., 2023), and a learning rate of 3e-3, as for the book's GPT of the
    same size. With 15% and 1e-3 the loss stayed on its unigram plateau for 1,250 of 2,000
    steps; with these settings it leaves it after about 300.
    """

    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    block_size: int = 128
    batch_size: int = 32
    max_steps: int = 1500
    val_every: int = 250
    lr: float = 3e-3
    warmup_steps: int = 200
    p_mask: float = 0.25
    dropout: float = 0.1
    seed: int = 1337


RECIPES = {
    "smoke": BERTRecipe(n_layer=2, d_model=64, max_steps=60, val_every=60, warmup_steps=10),
    "full": BERTRecipe(),
}


@dataclass
class PretrainedBERT:
    model: BERTForMaskedLM
    tokenizer: CharTokenizer
    corpus: PlaysCorpus
    recipe: BERTRecipe
    history: pd.DataFrame
    path: Path

    @property
    def config(self) -> BERTConfig:
        return self.model.config

    @property
    def special_ids(self) -> dict[str, int]:
        return {
            name: self.tokenizer.stoi[c] for name, c in (("pad", PAD), ("mask", MASK), ("cls", CLS))
        }

    def classifier(
        self, n_classes: int, *, pooling: str = "mean", pretrained: bool = True, seed: int = 0
    ) -> BERTForSequenceClassification:
        """A new classifier of the same architecture: with the pretrained encoder weights
        (``pretrained=True``) or freshly initialised ones (the from-scratch baseline). The
        head is new either way (initialised with ``seed``); the model is in train mode."""
        torch.manual_seed(seed)
        model = BERTForSequenceClassification(self.config, n_classes, pooling=pooling)
        if pretrained:
            model.bert.load_state_dict(self.model.bert.state_dict())
        return model


def recipe_for(profile_name: str | None = None) -> BERTRecipe:
    """The recipe of the given profile (default: the active ``FMBOOK_PROFILE``)."""
    name = profile_name or profile.name()
    if name not in RECIPES:
        raise ValueError(f"profile must be one of {tuple(RECIPES)}, got {name!r}")
    return RECIPES[name]


def bert_config(recipe: BERTRecipe, vocab_size: int) -> BERTConfig:
    return BERTConfig(
        vocab_size=vocab_size,
        max_len=recipe.block_size,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        d_model=recipe.d_model,
        dropout=recipe.dropout,
        n_segments=0,
        pad_id=0,
    )


def masked_lm_task(
    model: BERTForMaskedLM, tokenizer: CharTokenizer, recipe: BERTRecipe
) -> MaskedLM:
    """The pretraining task: 80/10/10 masking of ``p_mask`` of the characters."""
    return MaskedLM(
        model,
        mask_id=tokenizer.stoi[MASK],
        vocab_size=tokenizer.vocab_size,
        special_ids=(tokenizer.stoi[PAD], tokenizer.stoi[CLS]),
        p=recipe.p_mask,
        lr=recipe.lr,
        warmup_steps=recipe.warmup_steps,
        max_steps=recipe.max_steps,
    )


def window_loaders(corpus: PlaysCorpus, tokenizer: CharTokenizer, recipe: BERTRecipe):
    """Random windows of the pretraining text (train), consecutive ones of the held-out text."""

    def ids(text):
        return torch.tensor(tokenizer.encode(text), dtype=torch.long)

    train = RandomWindows(ids(corpus.pretraining_text), recipe.block_size)
    val = ConsecutiveWindows(ids(corpus.held_out_text), recipe.block_size)
    generator = torch.Generator().manual_seed(recipe.seed)
    return (
        DataLoader(train, batch_size=recipe.batch_size, shuffle=True, generator=generator),
        DataLoader(val, batch_size=128),
    )


def pretrain_bert(
    recipe: BERTRecipe, corpus: PlaysCorpus, tokenizer: CharTokenizer
) -> tuple[BERTForMaskedLM, pd.DataFrame]:
    """Train a :class:`BERTForMaskedLM` from scratch with ``recipe``; return it (eval mode)
    and its loss history."""
    seed_everything(recipe.seed)
    model = BERTForMaskedLM(bert_config(recipe, tokenizer.vocab_size))
    task = masked_lm_task(model, tokenizer, recipe)
    history = History(every=50)
    trainer = make_trainer(
        max_steps=recipe.max_steps, val_every=recipe.val_every, callbacks=[history]
    )
    train, val = window_loaders(corpus, tokenizer, recipe)
    trainer.fit(task, train, val)
    return model.eval(), history.frame()


def cache_path(recipe: BERTRecipe, name: str = "shakespeare-bert", cache=None) -> Path:
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(recipe), sort_keys=True).encode())
    return _cache_dir(cache) / "models" / f"{name}-{digest.hexdigest()[:12]}.pt"


def load_pretrained_bert(
    profile_name: str | None = None, *, cache=None, retrain: bool = False, text: str | None = None
) -> PretrainedBERT:
    """The pretrained character BERT of the active profile: from the cache, or trained now
    (and cached) if it is not there or ``retrain`` is true."""
    recipe = recipe_for(profile_name)
    corpus = PlaysCorpus(load_text() if text is None else text)
    tokenizer = encoder_tokenizer(corpus.text)
    path = cache_path(recipe, cache=cache)
    model = BERTForMaskedLM(bert_config(recipe, tokenizer.vocab_size))
    if path.exists() and not retrain:
        saved = load_state(path)
        if saved["vocab"] != tokenizer.itos:
            raise ValueError(f"{path} was trained with another vocabulary; pass retrain=True")
        model.load_state_dict(saved["state_dict"])
        history = pd.DataFrame(saved["history"])
    else:
        model, history = pretrain_bert(recipe, corpus, tokenizer)
        _save_atomically(
            {
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "vocab": tokenizer.itos,
                "recipe": dataclasses.asdict(recipe),
                "history": history.to_dict(orient="list"),
            },
            path,
        )
    return PretrainedBERT(model.cpu().eval(), tokenizer, corpus, recipe, history, path)


def _save_atomically(obj, path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: no partial file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


__all__ = [
    "RECIPES",
    "BERTRecipe",
    "PretrainedBERT",
    "bert_config",
    "cache_path",
    "load_pretrained_bert",
    "masked_lm_task",
    "pretrain_bert",
    "recipe_for",
    "window_loaders",
]
