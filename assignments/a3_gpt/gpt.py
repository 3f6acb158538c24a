"""Assignment 3: pretraining and sampling a small GPT. Fill in every ``NotImplementedError``.

The model is the book's :class:`fmbook.models.GPT` (given): ``model(idx)`` maps token ids
idx (B, T) to logits (B, T, V) and returns ``(logits, loss)``; ``model.config.max_len`` is
its context length. You write what goes around it: the batches, the loss, the learning-rate
schedule, the training loop and the sampler.

Shapes: B batch, T time (tokens), V vocabulary, N tokens in the corpus.
"""

from __future__ import annotations

import math  # noqa: F401 (you will need it)

import torch
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401 (you will need it)


def get_batch(
    data: torch.Tensor, batch_size: int, context: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``batch_size`` random windows of ``context`` tokens from ``data`` (N,), dtype long.

    Returns (x, y), both (B, context) and dtype long: row b is ``x[b] = data[i : i + context]``
    and ``y[b] = data[i + 1 : i + context + 1]`` for a start ``i`` drawn uniformly from
    0, ..., N - context - 1 (every start whose target window fits), independently per row.
    Draw the starts with ``torch.randint(..., generator=generator)`` so that a seeded
    generator gives the same batch twice.
    """
    # BEGIN SOLUTION
    starts = torch.randint(len(data) - context, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(context)  # (T,)
    index = starts[:, None] + offsets[None, :]  # (B, T)
    return data[index], data[index + 1]
    # END SOLUTION


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The next-token cross-entropy of ``model`` on inputs x (B, T) with targets y (B, T).

    loss = - 1/(B T) * sum_{b,t} log softmax(logits[b, t])[y[b, t]], a scalar tensor, where
    logits (B, T, V) = ``model(x)[0]``. Compute it from the logits (hint: F.cross_entropy
    wants (rows, V) and (rows,)), not from the loss the model returns.
    """
    # BEGIN SOLUTION
    logits = model(x)[0]  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())  # mean over B * T tokens
    # END SOLUTION


def lr_at(step: int, max_steps: int, peak_lr: float, warmup: int, min_lr: float = 0.0) -> float:
    """The learning rate of optimiser step ``step`` (0, 1, ..., max_steps - 1).

    Linear warm-up, then cosine decay:

    * step < warmup:  peak_lr * (step + 1) / warmup   (step 0 already learns a little)
    * otherwise, with progress p = (step - warmup) / (max_steps - warmup) in [0, 1]:
      min_lr + (peak_lr - min_lr) * (1 + cos(pi * p)) / 2

    so the rate reaches peak_lr at step warmup - 1 and at step warmup, and would reach
    min_lr at step max_steps. Return a Python float.
    """
    # BEGIN SOLUTION
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    p = (step - warmup) / max(1, max_steps - warmup)  # progress in [0, 1]
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
    # END SOLUTION


def train(
    model: nn.Module,
    train_ids: torch.Tensor,
    steps: int,
    *,
    batch_size: int = 32,
    context: int = 64,
    peak_lr: float = 3e-3,
    warmup: int = 20,
    min_lr: float = 0.0,
    weight_decay: float = 0.1,
    grad_clip: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Train ``model`` in place for ``steps`` optimiser steps; return the training losses.

    One step: draw a batch with :func:`get_batch` (pass ``generator``), compute
    :func:`lm_loss`, back-propagate, clip the global gradient norm to ``grad_clip``
    (torch.nn.utils.clip_grad_norm_), set the learning rate of every parameter group to
    ``lr_at(step, steps, peak_lr, warmup, min_lr)``, and take one AdamW step
    (betas=(0.9, 0.95); weight decay on the weight matrices only, i.e. the parameters with
    ``p.dim() >= 2``, not on biases and norm gains). Put the model in training mode first.

    Returns a list of ``steps`` floats: the loss of each step's batch, before its update.
    """
    # BEGIN SOLUTION
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=peak_lr, betas=(0.9, 0.95))
    model.train()
    losses = []
    for step in range(steps):
        x, y = get_batch(train_ids, batch_size, context, generator)  # (B, T) each
        loss = lm_loss(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr, warmup, min_lr)
        optimizer.step()
        losses.append(loss.item())
    return losses
    # END SOLUTION


@torch.no_grad()
def sample(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Continue the prompts idx (B, T) by ``max_new_tokens`` tokens; return (B, T + new).

    At each step, feed the last ``model.config.max_len`` tokens at most (the model has no
    positions beyond its context), take the logits of the last position (B, V), and choose
    the next token of each row:

    * temperature == 0: greedy, the argmax of the logits;
    * otherwise: divide the logits by ``temperature``; if ``top_k`` is given, keep the
      top_k largest logits of each row and set the others to -inf; sample from the softmax
      with ``torch.multinomial(..., generator=generator)``.

    Append the chosen tokens and repeat. Run the model in eval mode (and restore its mode).
    """
    # BEGIN SOLUTION
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        logits = model(idx[:, -model.config.max_len :])[0][:, -1]  # (B, V)
        if temperature == 0:
            next_id = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]  # (B, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = F.softmax(logits, dim=-1)  # (B, V)
            next_id = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        idx = torch.cat((idx, next_id), dim=1)  # (B, T + 1)
    model.train(was_training)
    return idx
    # END SOLUTION
