"""Checks that catch most training bugs before a long run, and bugs to inject on purpose.

The checks (each cheap, each with an expected answer):

* :func:`initial_loss` -- an untrained language model predicts a near-uniform distribution,
  so its loss is close to ``log |V|``;
* :func:`overfit_batch` -- a model that cannot drive the loss of *one* batch towards zero
  has a bug (or no capacity);
* :func:`lr_range_test` and :func:`suggest_lr` -- the learning-rate range test of
  Smith (2017): train briefly while the learning rate grows exponentially;
* :func:`grad_norms` and :class:`GradNormHistory` -- gradient norms per layer;
* :func:`shape_table` -- the output shape of every module (forward hooks, through
  :func:`fmbook.interpret.record`).

The injectors reproduce common bugs, so that their symptoms can be studied on purpose:

* :func:`no_causal_mask` -- self-attention without its causal mask (the future leaks);
* :class:`WindowSplit` -- a data module whose ``leaky=True`` split draws validation windows
  at random from the training text (they overlap training windows);
* :class:`ForgetEval` -- a callback that puts the model back in training mode for
  validation (dropout stays on), as a hand-written loop without ``model.eval()`` does.

And :func:`same_weights` / :func:`max_weight_diff` compare two trained models bit by bit.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import lightning as L
import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Subset

from .data.datamodules import ConsecutiveWindows, RandomWindows, TinyShakespeareDataModule
from .interpret import record
from .nn import MultiHeadAttention

# ---------------------------------------------------------------------------- checks


def _lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of ``model(x, y) -> (logits, loss)``, checked to be a finite scalar."""
    out = model(x, y)
    loss = out[1] if isinstance(out, tuple) else None
    if not torch.is_tensor(loss) or loss.dim() != 0:
        raise ValueError("model(x, y) must return (logits, loss) with a scalar loss")
    return loss


@torch.no_grad()
def initial_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(loss of ``model`` on the batch x, y (B, T), log |V|): the two should be close for
    an untrained language model, whose logits are near zero and its softmax near uniform."""
    logits, _ = model(x)  # (B, T, |V|)
    was_training = model.training
    model.eval()
    try:
        loss = _lm_loss(model, x, y).item()
    finally:
        model.train(was_training)
    return loss, math.log(logits.shape[-1])


def overfit_batch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 200, lr: float = 3e-3
) -> list[float]:
    """Train ``model`` (in place) on the one batch x, y with Adam; return the loss per step.

    A correct model and training loop drive this loss towards zero: it only has to
    memorise B x T targets. If the loss stalls, look for a bug before training longer.
    """
    if steps < 1 or not lr > 0:
        raise ValueError(f"steps must be >= 1 and lr > 0, got {steps}, {lr}")
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = _lm_loss(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# <show lr-range>
def lr_range_test(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    lr_min: float = 1e-5,
    lr_max: float = 1.0,
    steps: int = 100,
    smoothing: float = 0.9,
    stop_factor: float = 4.0,
) -> pd.DataFrame:
    """The learning-rate range test (Smith, 2017) on a *copy* of ``model``.

    Step k of ``steps`` uses lr_k = lr_min * (lr_max / lr_min) ** (k / (steps - 1)), an
    exponential sweep, with AdamW on one batch each. Returns step, lr, loss and the
    exponentially smoothed loss; stops early once the smoothed loss exceeds
    ``stop_factor`` times its minimum (the run has diverged).
    """
    if not 0 < lr_min < lr_max or steps < 2 or not 0 <= smoothing < 1:
        raise ValueError(
            f"need 0 < lr_min < lr_max, steps >= 2, 0 <= smoothing < 1, got "
            f"{lr_min}, {lr_max}, {steps}, {smoothing}"
        )
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr_min, weight_decay=0.0)
    rows, avg, best = [], 0.0, math.inf
    for k, (x, y) in zip(range(steps), _cycle(batches), strict=False):
        lr = lr_min * (lr_max / lr_min) ** (k / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = _lm_loss(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        avg = smoothing * avg + (1 - smoothing) * loss.item()
        smoothed = avg / (1 - smoothing ** (k + 1))  # bias-corrected, as in Adam
        rows.append({"step": k, "lr": lr, "loss": loss.item(), "smoothed": smoothed})
        best = min(best, smoothed)
        if not math.isfinite(smoothed) or smoothed > stop_factor * best:
            break
    return pd.DataFrame(rows, columns=["step", "lr", "loss", "smoothed"])


def suggest_lr(frame: pd.DataFrame, divide_by: float = 10.0) -> float:
    """The learning rate at the minimum of the smoothed loss, divided by ``divide_by``:
    safely below the point where the loss stops falling and starts to blow up."""
    if frame.empty or not {"lr", "smoothed"} <= set(frame.columns):
        raise ValueError("frame must be a non-empty result of lr_range_test")
    return float(frame.loc[frame["smoothed"].idxmin(), "lr"]) / divide_by


# </show lr-range>


def _cycle(batches: Iterable) -> Iterator:
    """Repeat ``batches`` (a list or a DataLoader) forever."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("batches is empty")


def layer_of(name: str) -> str:
    """The layer a parameter belongs to: ``blocks.3.attn.qkv.weight`` -> ``blocks.3``,
    ``tok_emb.weight`` -> ``tok_emb`` (an index after the first name keeps the layer)."""
    parts = name.split(".")
    if len(parts) > 2 and parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0] if len(parts) > 1 else name


def grad_norms(model: nn.Module) -> dict[str, float]:
    """The Euclidean norm of the gradient of each layer (:func:`layer_of`), after a
    ``backward``; parameters without a gradient are left out. Shared (tied) parameters
    count once, under the first name that holds them."""
    squares: dict[str, float] = {}
    for name, p in model.named_parameters():  # named_parameters lists a tied tensor once
        if p.grad is not None:
            key = layer_of(name)
            squares[key] = squares.get(key, 0.0) + p.grad.detach().float().pow(2).sum().item()
    if not squares:
        raise ValueError("no parameter has a gradient: call loss.backward() first")
    return {k: math.sqrt(v) for k, v in squares.items()}


class GradNormHistory(L.Callback):
    """Records :func:`grad_norms` of ``pl_module.model`` every ``every`` steps, just
    before the optimiser step (after gradient clipping, if any)."""

    def __init__(self, every: int = 10):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.rows: list[dict] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        step = trainer.global_step
        if step % self.every == 0:
            model = getattr(pl_module, "model", pl_module)
            for layer, norm in grad_norms(model).items():
                self.rows.append({"step": step, "layer": layer, "grad_norm": norm})

    def frame(self) -> pd.DataFrame:
        """Columns step, layer, grad_norm (one row per layer and recorded step)."""
        return pd.DataFrame(self.rows, columns=["step", "layer", "grad_norm"])


def shape_table(model: nn.Module, *args, depth: int | None = None) -> pd.DataFrame:
    """The output shape of every submodule of ``model`` while it runs on ``args``, in the
    order the modules finish (:func:`fmbook.interpret.record`). ``depth`` keeps modules
    with at most that many dots in their name (``blocks.0`` has one), plus the model."""
    with torch.no_grad(), record(model) as trace:
        model(*args)
    table = trace.table()[["module", "class", "shape"]]
    if depth is not None:
        dots = table["module"].str.count(r"\.")
        table = table[(dots <= depth) | (table["module"] == "(model)")]
    return table.reset_index(drop=True)


# ---------------------------------------------------------------------------- injected bugs


# <show no-mask>
@contextmanager
def no_causal_mask(model: nn.Module) -> Iterator[nn.Module]:
    """BUG on purpose: while the block runs, every self-attention layer of ``model``
    ignores ``causal=True``, so each position also sees the tokens after it."""
    layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention) and not m.cross]
    if not layers:
        raise ValueError("model has no self-attention layer (MultiHeadAttention) to unmask")

    def unmasked(layer):
        def forward(x, context=None, mask=None, causal=False, cache=None):
            return type(layer).forward(layer, x, context, mask, False, cache)  # causal dropped

        return forward

    for layer in layers:
        layer.forward = unmasked(layer)  # an instance attribute shadows the class's method
    try:
        yield model
    finally:
        for layer in layers:
            del layer.forward


# </show no-mask>


def window_coverage(ids_len: int, starts: Iterable[int], block_size: int) -> torch.Tensor:
    """Boolean (ids_len,) mask of the positions that windows starting at ``starts`` (each
    ``block_size + 1`` tokens: input and shifted target) cover."""
    covered = torch.zeros(ids_len + 1, dtype=torch.int64)
    starts = torch.as_tensor(list(starts), dtype=torch.long)
    covered.index_add_(0, starts, torch.ones_like(starts))
    covered.index_add_(0, (starts + block_size + 1).clamp(max=ids_len), -torch.ones_like(starts))
    return covered.cumsum(0)[:ids_len] > 0


class WindowSplit(TinyShakespeareDataModule):
    """Tiny Shakespeare with a small training text (the first ``train_chars`` characters)
    and two ways to get validation windows:

    * ``leaky=False`` (correct): validation is the held-out last 10% of the text;
    * ``leaky=True`` (BUG on purpose): all windows of the training text are shuffled and
      ``val_fraction`` of them validate. Windows overlap by ``block_size - 1`` tokens, so
      nearly every validation token was also a training token.

    :meth:`heldout_dataloader` always gives the held-out text, to measure the truth.
    """

    def __init__(
        self,
        block_size: int = 64,
        batch_size: int = 32,
        train_chars: int = 100_000,
        leaky: bool = False,
        val_fraction: float = 0.1,
        seed: int = 0,
    ):
        super().__init__(block_size=block_size, batch_size=batch_size)
        if train_chars <= block_size or not 0 < val_fraction < 1:
            raise ValueError(
                f"need train_chars > block_size and 0 < val_fraction < 1, got "
                f"{train_chars}, {val_fraction}"
            )
        self.train_chars, self.leaky = train_chars, leaky
        self.val_fraction, self.seed = val_fraction, seed

    def setup(self, stage: str | None = None):
        if self.tokenizer is not None:
            return
        super().setup(stage)
        ids = self.train_ids[: self.train_chars]
        windows = RandomWindows(ids, self.block_size)
        if self.leaky:
            order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(self.seed))
            n_val = int(len(windows) * self.val_fraction)
            self.train_set = Subset(windows, order[n_val:].tolist())
            self.val_set = Subset(windows, order[:n_val].tolist())
        else:
            self.train_set = windows
            self.val_set = ConsecutiveWindows(self.val_ids, self.block_size)
        self.heldout_set = ConsecutiveWindows(self.val_ids, self.block_size)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def heldout_dataloader(self):
        return DataLoader(self.heldout_set, batch_size=self.batch_size)

    def val_overlap(self) -> float:
        """The fraction of validation-window tokens that some training window also covers
        (0 for the correct split, near 1 for the leaky one)."""
        if not self.leaky:
            return 0.0  # different text: the held-out split shares no position
        n = len(self.train_set.dataset.ids)
        train = window_coverage(n, self.train_set.indices, self.block_size)
        val = window_coverage(n, self.val_set.indices, self.block_size)
        return (train & val).sum().item() / val.sum().item()


class ForgetEval(L.Callback):
    """BUG on purpose: switch the model back to training mode when validation starts
    (Lightning has just called ``model.eval()``), so dropout stays on while validating."""

    def on_validation_start(self, trainer, pl_module):
        pl_module.train()


def validation_loss(task: L.LightningModule, dataloader, callbacks=()) -> float:
    """The mean ``val_loss`` of ``task`` over ``dataloader``, through Lightning's validation
    loop (which calls ``model.eval()``; pass ``callbacks=[ForgetEval()]`` to undo that)."""
    trainer = L.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        callbacks=list(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    results = trainer.validate(task, dataloaders=dataloader, verbose=False)
    if not results or "val_loss" not in results[0]:
        raise ValueError(f"validation logged no 'val_loss'; it logged {results}")
    return float(results[0]["val_loss"])


# ---------------------------------------------------------------------------- bits


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models have bitwise identical parameters and buffers (torch.equal)."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        raise ValueError("the models have different parameter names")
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def max_weight_diff(a: nn.Module, b: nn.Module) -> float:
    """The largest absolute difference between corresponding weights of two models."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        raise ValueError("the models have different parameter names")
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)


__all__ = [
    "ForgetEval",
    "GradNormHistory",
    "WindowSplit",
    "grad_norms",
    "initial_loss",
    "layer_of",
    "lr_range_test",
    "max_weight_diff",
    "no_causal_mask",
    "overfit_batch",
    "same_weights",
    "shape_table",
    "suggest_lr",
    "validation_loss",
    "window_coverage",
]
