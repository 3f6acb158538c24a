"""Saving checkpoints with Lightning, and loading them *safely*.

A PyTorch checkpoint is a pickle, and unpickling can run arbitrary code: a file from the
internet could do anything when ``torch.load(path, weights_only=False)`` opens it. fmbook
therefore reads every checkpoint with ``torch.load(path, map_location="cpu",
weights_only=True)``, which accepts only tensors, numbers, strings and plain containers
(dicts, lists, tuples, ``OrderedDict``) and refuses anything else *before* running it.

What a Lightning checkpoint of an fmbook task holds is all of that kind: the weights
(``state_dict``), the loop counters (``global_step``, ``epoch``, ``loops``), the optimiser
and scheduler states, callback states (e.g. ``ModelCheckpoint``'s paths and scores) and
the hyper-parameters. Every task stores its model's class and config class by name and the
config as a plain dict (``dataclasses.asdict``), and its betas as a tuple, precisely so
that this holds, and
``LambdaLR`` stores each schedule function as its (empty) ``__dict__``. So no type needs to
be allow-listed with ``torch.serialization.add_safe_globals``, and fmbook registers none.
A task that saved, say, a dataclass instance in its hyper-parameters would be refused with
:class:`CheckpointError`; the fix is to save plain data, not to weaken the check.

Resuming training is Lightning's job: ``trainer.fit(task, data, ckpt_path=path,
weights_only=True)`` restores weights, optimiser, scheduler and step counters.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import re
from pathlib import Path

import lightning as L
import torch
from torch import nn

__all__ = ["CheckpointError", "load_checkpoint", "load_state", "save_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint file that fmbook refuses to load (unsafe content or not a checkpoint)."""


def save_checkpoint(trainer_or_module: L.Trainer | nn.Module, path: str | Path) -> Path:
    """Write a checkpoint to ``path`` (parent folders are created) and return the path.

    * a ``lightning.Trainer`` (or a ``LightningModule`` attached to one) saves through
      ``trainer.save_checkpoint``: weights, optimiser and scheduler states, step counters,
      callback states and hyper-parameters, enough to resume training;
    * a ``LightningModule`` that was never trained by a Trainer saves what Lightning's
      ``load_from_checkpoint`` needs: weights and hyper-parameters (nothing to resume);
    * any other ``nn.Module`` saves its ``state_dict`` alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(trainer_or_module, L.LightningModule):
        trainer = getattr(trainer_or_module, "_trainer", None)
        if trainer is None:
            torch.save(_weights_checkpoint(trainer_or_module), path)
            return path
        trainer_or_module = trainer
    if isinstance(trainer_or_module, L.Trainer):
        if trainer_or_module.lightning_module is None:
            raise ValueError("trainer_or_module is a Trainer with no model attached (fit it first)")
        trainer_or_module.save_checkpoint(path)
    elif isinstance(trainer_or_module, nn.Module):
        torch.save({"state_dict": trainer_or_module.state_dict()}, path)
    else:
        raise ValueError(
            "trainer_or_module must be a lightning.Trainer, a LightningModule or an nn.Module, "
            f"got {type(trainer_or_module).__name__}"
        )
    return path


def _weights_checkpoint(module: L.LightningModule) -> dict:
    """The part of a Lightning checkpoint that ``load_from_checkpoint`` reads."""
    return {
        "pytorch-lightning_version": L.__version__,
        "epoch": 0,
        "global_step": 0,
        "state_dict": module.state_dict(),
        "hparams_name": "kwargs",
        "hyper_parameters": dict(module.hparams),
    }


def load_state(path: str | Path) -> dict:
    """The checkpoint at ``path`` as a dict, read safely on the CPU.

    Raises :class:`CheckpointError` when the file holds pickled objects other than
    tensors and plain containers (which ``weights_only=True`` refuses without running
    them), or is not a torch checkpoint at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found is None:
            raise CheckpointError(f"{path} is not a readable torch checkpoint: {error}") from None
        raise CheckpointError(
            f"refusing to load {path}: it contains a pickled object of type {found.group(1)}, "
            "and fmbook reads checkpoints with torch.load(weights_only=True), which allows only "
            "tensors, numbers, strings and plain containers, because unpickling other objects "
            "can run arbitrary code. Load it with weights_only=False only if you trust where "
            "the file comes from."
        ) from None
    except (RuntimeError, KeyError, EOFError, OSError) as error:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({type(error).__name__}: {error})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint dict")
    return state


def load_checkpoint(
    path: str | Path, task_class: type[L.LightningModule], model: nn.Module | None = None
) -> L.LightningModule:
    """Rebuild a task from a Lightning checkpoint: ``task_class(model, **hyper_parameters)``
    with the saved weights loaded strictly (every key must match).

    Without ``model``, the model is rebuilt from the hyper-parameters every fmbook task
    saves: ``model_class(config_class(**config))``, e.g. ``GPT(GPTConfig(...))``. Only
    classes of the ``fmbook`` package are rebuilt; for any other model, or one whose
    constructor needs more than its config, pass a freshly built ``model``. A task whose
    hyper-parameters name no ``model_class`` is rebuilt as ``task_class(**hyper_parameters)``.

    The file is read with :func:`load_state` (``weights_only=True``). The task comes back
    on the CPU, in training mode, as a freshly constructed module would.
    """
    if not (isinstance(task_class, type) and issubclass(task_class, L.LightningModule)):
        raise ValueError(f"task_class must be a LightningModule subclass, got {task_class!r}")
    state = load_state(path)
    missing = [key for key in ("state_dict", "hyper_parameters") if key not in state]
    if missing:
        raise CheckpointError(
            f"{path} lacks {missing}: it is not a Lightning checkpoint of a task that calls "
            "save_hyperparameters()"
        )
    hparams = dict(state["hyper_parameters"])
    if model is None and "model_class" not in hparams:  # a task that builds its own model
        task = task_class(**hparams)
    else:
        model = model if model is not None else _rebuild_model(path, hparams)
        task = task_class(model, **hparams)
    task.on_load_checkpoint(state)
    task.load_state_dict(state["state_dict"], strict=True)
    return task


def _fmbook_class(path, qualified_name) -> type:
    """The fmbook class named ``module.qualname`` (nothing outside fmbook is imported)."""
    module, _, name = str(qualified_name).rpartition(".")
    if not (module == "fmbook" or module.startswith("fmbook.")):
        raise CheckpointError(
            f"{path} names the class {qualified_name!r}, which is not part of fmbook; "
            "build the model yourself and pass it as load_checkpoint(..., model=model)"
        )
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise CheckpointError(f"{path} names the class {qualified_name!r}, not found") from None


def _rebuild_model(path, hparams: dict) -> nn.Module:
    """``model_class(config_class(**config))`` from a task's saved hyper-parameters."""
    if not (hparams.get("model_class") and hparams.get("config_class") and hparams.get("config")):
        raise CheckpointError(
            f"{path} does not record a model class and config to rebuild the model from; "
            "pass it as load_checkpoint(..., model=model)"
        )
    model_class = _fmbook_class(path, hparams["model_class"])
    config_class = _fmbook_class(path, hparams["config_class"])
    if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
        raise CheckpointError(f"{path}: model_class {hparams['model_class']!r} is not a module")
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise CheckpointError(f"{path}: config_class {hparams['config_class']!r} is not a config")
    try:
        return model_class(config_class(**hparams["config"]))
    except TypeError as error:
        raise CheckpointError(
            f"cannot rebuild {hparams['model_class']} from its config alone ({error}); "
            "pass it as load_checkpoint(..., model=model)"
        ) from None
