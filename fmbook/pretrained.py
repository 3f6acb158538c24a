"""The book's own small pretrained model: downloaded (checked) or trained from its recipe.

Several chapters adapt *one* pretrained model to new tasks: a character-level BERT
pretrained with the masked-language-model objective on the pretraining part of Tiny
Shakespeare (see :class:`~fmbook.data.plays.PlaysCorpus`), by a fixed, seeded recipe
(:data:`RECIPES`, one per profile). :func:`load_pretrained_bert` finds it in this order:

1. the **cache**, ``<cache>/models/shakespeare-bert-<hash>.pt`` (``<cache>``:
   ``$FMBOOK_CACHE`` or ``~/.cache/fmbook``), where the hash covers every number of the
   recipe, so each profile's recipe has its own file;
2. the book's **release asset** ``weights-v1/shakespeare-bert-<hash>.pt``, registered with
   its SHA-256 in :data:`WEIGHTS` and fetched like data (:func:`fmbook.data.fetch`): from
   the data mirror (a folder or an ``http(s)://`` address, ``FMBOOK_DATA_MIRROR``), else
   from the release, into the cache;
3. **training** it now from the recipe (a few minutes on a CPU in the full profile,
   seconds in the smoke profile) -- only when asked: ``train=True``, or
   ``FMBOOK_TRAIN_PRETRAINED=1``; the smoke profile, a test profile, trains by default.
   Without a source and without that option it raises :class:`PretrainedWeightsError`,
   which says where to download the file and how to train it.

The file is a plain dict (``state_dict``, ``vocab``, ``recipe``, ``history``), read back
with :func:`fmbook.checkpoints.load_state` (``weights_only=True``). The release asset is
built by one command, ``make weights-release`` (:func:`build_weights`), and that build is
deterministic on a CPU: one thread, deterministic algorithms, fixed seeds, and
``torch.save`` into memory (a file name would leak into the zip's folder names), so two
builds give the same bytes. The asset's history therefore holds no wall-clock times;
:attr:`PretrainedBERT.train_seconds` is the training time when it is known.

>>> pre = load_pretrained_bert()
>>> pre.model            # BERTForMaskedLM, in eval mode
>>> pre.tokenizer        # characters + PAD/MASK/CLS (ids 0, 1, 2)
>>> pre.corpus           # the PlaysCorpus it was pretrained on
>>> pre.history          # its training and validation losses (a DataFrame)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
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
from .data.registry import Dataset, DownloadError, _cache_dir, fetch, release_url
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
    budgets (Wettig et al., 2023), and a learning rate of 3e-3 (the book's GPT of the same
    size uses 4e-3). With 15% and 1e-3 the loss stayed on its unigram plateau for 1,250 of
    2,000 steps; with these settings it leaves it after about 500 (validation loss 3.00 at
    step 500, 2.49 at step 750).
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


#: The release that holds the book's pretrained weights.
WEIGHTS_TAG = "weights-v1"
#: Set to 1 to train the model from its recipe when no file can be found (0: never).
TRAIN_ENV = "FMBOOK_TRAIN_PRETRAINED"
#: Minutes the full recipe trains on 2 CPU cores (for the error message).
FULL_TRAIN_MINUTES = 10


class PretrainedWeightsError(DownloadError):
    """The pretrained weights are neither cached nor downloadable, and training was not asked for."""


def file_name(recipe: BERTRecipe, name: str = "shakespeare-bert") -> str:
    """``shakespeare-bert-<first 12 hex digits of the recipe's sha256>.pt``."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(recipe), sort_keys=True).encode())
    return f"{name}-{digest.hexdigest()[:12]}.pt"


def _weights_record(profile_name: str, sha256: str, size: int) -> Dataset:
    name = file_name(RECIPES[profile_name])
    return Dataset(
        name=f"shakespeare-bert-{profile_name}",
        asset=f"{WEIGHTS_TAG}/{name}",
        urls=(),
        sha256=sha256,
        path=f"models/{name}",
        size=size,
        license="MIT (the book's code and its outputs)",
        citation="fmbook: the book's character-level BERT, built by `make weights-release`",
        bibtex_key="fmbook",
        description=(
            f"The book's character BERT pretrained on Tiny Shakespeare by the {profile_name!r} "
            "recipe of fmbook.pretrained (state dict, vocabulary, recipe, loss history)."
        ),
    )


#: The registered release assets, one per profile (``make weights-release`` builds them).
WEIGHTS: dict[str, Dataset] = {
    "smoke": _weights_record(
        "smoke", "db14a7f794495270c31c414018c12d0806fcd8e865d2f4b425b1699181b96d37", 478_976
    ),
    "full": _weights_record(
        "full", "d49523122b8dec14e8f51e52931e2c38ee3c649acbc00567993fd4c3cd1868b1", 3_359_864
    ),
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
    def train_seconds(self) -> float:
        """Wall-clock seconds of the pretraining, where this machine trained the model;
        NaN for the release file (its history holds no times, so that it is byte-stable)."""
        seconds = self.history["seconds"] if "seconds" in self.history else []
        return float(seconds.max()) if len(seconds) else math.nan

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
    recipe: BERTRecipe, corpus: PlaysCorpus, tokenizer: CharTokenizer, **trainer_kwargs
) -> tuple[BERTForMaskedLM, pd.DataFrame]:
    """Train a :class:`BERTForMaskedLM` from scratch with ``recipe``; return it (eval mode)
    and its loss history. ``trainer_kwargs`` go to :func:`~fmbook.tasks.make_trainer`."""
    seed_everything(recipe.seed)
    model = BERTForMaskedLM(bert_config(recipe, tokenizer.vocab_size))
    task = masked_lm_task(model, tokenizer, recipe)
    history = History(every=50)
    trainer = make_trainer(
        max_steps=recipe.max_steps,
        val_every=recipe.val_every,
        callbacks=[history],
        **trainer_kwargs,
    )
    train, val = window_loaders(corpus, tokenizer, recipe)
    trainer.fit(task, train, val)
    return model.eval(), history.frame()


def cache_path(recipe: BERTRecipe, name: str = "shakespeare-bert", cache=None) -> Path:
    return _cache_dir(cache) / "models" / file_name(recipe, name)


def load_pretrained_bert(
    profile_name: str | None = None,
    *,
    cache=None,
    retrain: bool = False,
    text: str | None = None,
    train: bool | None = None,
    mirror=None,
    timeout: float = 60,
    retries: int = 3,
) -> PretrainedBERT:
    """The pretrained character BERT of the active profile (see the module doc): from the
    cache, else the registered release file (mirror or download, checked), else -- if
    ``train`` (default: ``$FMBOOK_TRAIN_PRETRAINED``, else only in the smoke profile) --
    trained now and cached. ``retrain=True`` always trains anew (and replaces the cache)."""
    name = profile_name or profile.name()
    recipe = recipe_for(name)
    corpus = PlaysCorpus(load_text() if text is None else text)
    tokenizer = encoder_tokenizer(corpus.text)
    path = cache_path(recipe, cache=cache)
    model = BERTForMaskedLM(bert_config(recipe, tokenizer.vocab_size))
    source = None if retrain else _find_weights(name, recipe, path, mirror, cache, timeout, retries)
    if isinstance(source, Path):
        saved = load_state(source)
        if saved["vocab"] != tokenizer.itos:
            raise ValueError(f"{source} was trained with another vocabulary; pass retrain=True")
        model.load_state_dict(saved["state_dict"])
        history = pd.DataFrame(saved["history"])
        if "seconds" not in history:
            history["seconds"] = math.nan
        path = source
    elif retrain or _may_train(train, name):
        model, history = pretrain_bert(recipe, corpus, tokenizer)
        _save_atomically(_payload(model, tokenizer, recipe, history), path)
    else:
        raise PretrainedWeightsError(_not_found_help(name, path, source))
    return PretrainedBERT(model.cpu().eval(), tokenizer, corpus, recipe, history, path)


def _find_weights(name, recipe, path, mirror, cache, timeout, retries) -> Path | str:
    """The file to load, or (a str) why there is none."""
    if path.exists():
        return path  # the reader's own file (trained here or downloaded before): trusted
    record = WEIGHTS.get(name)
    if record is None or record.path != f"models/{path.name}" or record.size == 0:
        return f"no release file is registered for the {name!r} recipe ({path.name})"
    try:
        return fetch(record, mirror=mirror, cache=cache, timeout=timeout, retries=retries)
    except DownloadError as error:  # a ChecksumError is not one: wrong bytes are an error
        return str(error)


def _may_train(train: bool | None, name: str) -> bool:
    if train is not None:
        return train
    flag = os.environ.get(TRAIN_ENV, "").strip().lower()
    if flag:
        return flag not in ("0", "false", "no")
    return name == "smoke"


def _not_found_help(name: str, path: Path, reason: str) -> str:
    record = WEIGHTS.get(name)
    where = f" from {release_url(record.asset)}" if record is not None else ""
    return (
        f"the book's pretrained BERT ({name!r} profile) is not in the cache ({path}) and "
        f"could not be fetched: {reason}\n"
        f"Either download it{where} and put it at {path}, or set FMBOOK_DATA_MIRROR to a "
        "folder or http(s):// address that serves it, or train it from its recipe "
        f"(about {FULL_TRAIN_MINUTES} minutes on 2 CPU cores in the full profile): "
        f"load_pretrained_bert(train=True), or set {TRAIN_ENV}=1 before running the chapter."
    )


def _payload(model, tokenizer, recipe, history: pd.DataFrame) -> dict:
    return {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "vocab": tokenizer.itos,
        "recipe": dataclasses.asdict(recipe),
        "history": history.to_dict(orient="list"),
    }


def build_weights(
    profile_name: str, out_dir: str | os.PathLike, *, text: str | None = None
) -> Path:
    """Train ``profile_name``'s recipe deterministically on the CPU and write the release
    file ``out_dir/shakespeare-bert-<hash>.pt``; return its path.

    One thread, ``torch.use_deterministic_algorithms``, fixed seeds, and a history without
    wall-clock times: two builds on one machine give the same bytes (tested). Other CPUs
    may round differently, so the registered SHA-256 is that of the published build.
    """
    recipe = recipe_for(profile_name)
    corpus = PlaysCorpus(load_text() if text is None else text)
    tokenizer = encoder_tokenizer(corpus.text)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        model, history = pretrain_bert(
            recipe, corpus, tokenizer, accelerator="cpu", deterministic=True
        )
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    path = Path(out_dir) / file_name(recipe)
    _save_atomically(_payload(model, tokenizer, recipe, history.drop(columns="seconds")), path)
    return path


def _save_atomically(obj, path: Path) -> None:
    """Serialise in memory (stable bytes), write a temporary file in the same folder, then
    rename it: no partial file is ever left."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)  # into a file, torch.save would name its zip folder after the file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


__all__ = [
    "RECIPES",
    "TRAIN_ENV",
    "WEIGHTS",
    "WEIGHTS_TAG",
    "PretrainedWeightsError",
    "build_weights",
    "file_name",
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
