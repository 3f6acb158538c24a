"""Direct preference optimisation (DPO; Rafailov et al., 2023) as a LightningModule.

A preference pair is a prompt ``x`` with two replies, the preferred (chosen) ``y_w`` and
the other (rejected) ``y_l``. DPO trains the policy ``pi`` directly on such pairs, with a
frozen copy of the starting model as the reference ``pi_ref``:

    L = -E log sigmoid(beta * [(log pi(y_w|x) - log pi_ref(y_w|x))
                               - (log pi(y_l|x) - log pi_ref(y_l|x))])

where ``log pi(y|x)`` is the *sum* of the log-probabilities of the reply's tokens.

* :func:`sequence_logprob` -- ``log pi(y|x)`` of each row of a batch of prompt + reply;
* :func:`dpo_loss` -- the loss above and each pair's implicit rewards;
* :class:`DPOTask` -- the policy, its frozen reference and the loss, for ``Trainer.fit``
  on batches ``(chosen (B, T), rejected (B, T))`` that share a prompt of ``prompt_len``
  tokens;
* :func:`sample_log_ratios` -- replies sampled from the policy and their
  ``log pi(y|x) - log pi_ref(y|x)``, whose mean estimates the KL divergence
  ``KL(pi || pi_ref)`` of the two models on those prompts (a Monte-Carlo estimate);
* :class:`EvalEvery` -- a callback that evaluates the policy every few steps.

>>> task = DPOTask(GPT(config), beta=0.1, prompt_len=48, lr=1e-4, max_steps=200)
>>> make_trainer(max_steps=200, val_every=200).fit(task, train_dataloaders=pairs)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks
from ..generation import generate
from .base import AdamWCosineTask

__all__ = ["DPOTask", "EvalEvery", "dpo_loss", "sample_log_ratios", "sequence_logprob"]


# ---------------------------------------------------------------------------- checks


def _check_seqs(seqs, prompt_len) -> None:
    if not torch.is_tensor(seqs) or seqs.dtype != torch.long or seqs.dim() != 2:
        raise ValueError(
            f"seqs must be a (B, T) tensor of token ids (torch.long), got {_checks.describe(seqs)}"
        )
    if isinstance(prompt_len, bool) or not isinstance(prompt_len, int):
        raise ValueError(f"prompt_len must be an int, got {prompt_len!r}")
    if not 1 <= prompt_len < seqs.shape[1]:
        raise ValueError(
            f"prompt_len must be in [1, T-1] = [1, {seqs.shape[1] - 1}] (at least one prompt "
            f"token and one reply token), got {prompt_len}"
        )


def _check_beta(beta) -> None:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta < math.inf:
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")


def _check_logps(**logps) -> None:
    shapes = set()
    for name, x in logps.items():
        if not torch.is_tensor(x) or not x.dtype.is_floating_point or x.dim() != 1:
            raise ValueError(
                f"{name} must be a 1-D float tensor (one log-prob per pair), got "
                f"{_checks.describe(x)}"
            )
        shapes.add(tuple(x.shape))
    if len(shapes) > 1:
        got = ", ".join(f"{n} {tuple(x.shape)}" for n, x in logps.items())
        raise ValueError(f"the four log-prob tensors must have the same shape, got {got}")


def _check_pair_batch(batch, prompt_len) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError("a DPO batch must be (chosen (B, T), rejected (B, T))")
    chosen, rejected = batch
    _check_seqs(chosen, prompt_len)
    _check_seqs(rejected, prompt_len)
    if chosen.shape != rejected.shape:
        raise ValueError(
            f"chosen and rejected must have the same shape, got {tuple(chosen.shape)} "
            f"and {tuple(rejected.shape)}"
        )
    if not torch.equal(chosen[:, :prompt_len], rejected[:, :prompt_len]):
        raise ValueError(
            f"chosen and rejected must share their first prompt_len={prompt_len} tokens"
        )
    return chosen, rejected


# ---------------------------------------------------------------------------- the loss


def sequence_logprob(model: nn.Module, seqs: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """``log p(y|x)`` under ``model`` for each row of ``seqs`` (B, T) = prompt x (the first
    ``prompt_len`` tokens) + reply y: the **sum** over the reply's tokens of
    ``log p(y_t | x, y_<t)`` -> (B,). Gradients flow into ``model`` unless the caller
    turns them off. ``model(ids)`` must return ``(logits (B, t, V), ...)``."""
    _check_seqs(seqs, prompt_len)
    # <show sequence_logprob>
    logits = model(seqs[:, :-1])[0].float()  # (B, T-1, V): predicts tokens 1 .. T-1
    logp = logits.log_softmax(-1).gather(-1, seqs[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return logp[:, prompt_len - 1 :].sum(-1)  # (B,): summed over the reply's tokens
    # </show sequence_logprob>


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss of a batch of pairs from the sequence log-probs (B,) of the chosen and
    rejected replies under the policy and the reference (:func:`sequence_logprob`).

    Returns the loss (mean over pairs) and the implicit rewards (B,) of the chosen and
    rejected replies, ``beta * (log pi(y|x) - log pi_ref(y|x))``. ``beta > 0`` sets how
    far the policy may move from the reference: the smaller, the further.
    """
    _check_beta(beta)
    _check_logps(
        policy_chosen=policy_chosen,
        policy_rejected=policy_rejected,
        reference_chosen=reference_chosen,
        reference_rejected=reference_rejected,
    )
    # <show dpo_loss>
    chosen = beta * (policy_chosen - reference_chosen)  # (B,) implicit reward of y_w
    rejected = beta * (policy_rejected - reference_rejected)  # (B,) implicit reward of y_l
    loss = -F.logsigmoid(chosen - rejected).mean()
    # </show dpo_loss>
    return loss, chosen.detach(), rejected.detach()


class DPOTask(AdamWCosineTask):
    """Train ``model`` (the policy) with the DPO loss on batches ``(chosen, rejected)``
    (B, T) of token ids whose first ``prompt_len`` tokens are the shared prompt.

    The reference is a frozen copy of ``model`` as it is when the task is made (or the
    ``reference`` given): no gradient, no optimiser; its log-probs are computed in eval
    mode under ``torch.no_grad``. (It is put in eval mode when it is used, not before
    training, so that Lightning's check for modules left in eval mode stays quiet.) Logs ``train_loss``,
    ``train_reward_acc`` (the fraction of pairs whose chosen reply has the larger implicit
    reward) and ``train_margin`` (the mean reward difference), and the same for
    validation. Optimiser and schedule: :class:`~.base.AdamWCosineTask`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        beta: float = 0.1,
        prompt_len: int,
        reference: nn.Module | None = None,
        **hparams,
    ):
        _check_beta(beta)
        if isinstance(prompt_len, bool) or not isinstance(prompt_len, int) or prompt_len < 1:
            raise ValueError(f"prompt_len must be an int >= 1, got {prompt_len!r}")
        if reference is model:
            raise ValueError("reference must be a separate copy of the model, not the model")
        super().__init__(model, beta=beta, prompt_len=prompt_len, **hparams)
        reference = copy.deepcopy(model) if reference is None else reference
        self.reference = reference.requires_grad_(False)

    # <show dpo_task>
    def pair_logps(self, batch):
        """Sequence log-probs (B,) of the chosen and rejected replies, policy and reference."""
        chosen, rejected = _check_pair_batch(batch, self.hparams.prompt_len)
        both = torch.cat([chosen, rejected])  # (2B, T): one forward pass for both
        policy = sequence_logprob(self.model, both, self.hparams.prompt_len)
        with torch.no_grad():  # the reference is a fixed anchor: no gradient into it
            self.reference.eval()  # and no dropout either
            reference = sequence_logprob(self.reference, both, self.hparams.prompt_len)
        return (*policy.chunk(2), *reference.chunk(2))

    def training_step(self, batch, batch_idx):
        loss, chosen, rejected = dpo_loss(*self.pair_logps(batch), beta=self.hparams.beta)
        self._log("train", loss, chosen, rejected)
        return loss

    # </show dpo_task>

    def validation_step(self, batch, batch_idx):
        loss, chosen, rejected = dpo_loss(*self.pair_logps(batch), beta=self.hparams.beta)
        self._log("val", loss, chosen, rejected)
        return loss

    def _log(self, split, loss, chosen, rejected) -> None:
        n = len(chosen)
        self.log(f"{split}_loss", loss, prog_bar=True, batch_size=n)
        self.log(f"{split}_reward_acc", (chosen > rejected).float().mean(), batch_size=n)
        self.log(f"{split}_margin", (chosen - rejected).mean(), batch_size=n)


# ---------------------------------------------------------------------------- evaluation


@torch.no_grad()
def sample_log_ratios(
    policy: nn.Module,
    reference: nn.Module,
    prompts: torch.Tensor,
    max_new_tokens: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one reply of ``max_new_tokens`` tokens per prompt (B, P) from ``policy`` (at
    temperature 1, nothing truncated: the samples must come from the policy itself) and
    return the sequences (B, P + new) and ``log pi(y|x) - log pi_ref(y|x)`` (B,).

    The mean of the second is an unbiased Monte-Carlo estimate of the sequence-level
    ``KL(pi || pi_ref)`` averaged over the prompts; single values can be negative.
    """
    _checks.positive_int("max_new_tokens", max_new_tokens)
    seqs = generate(policy, prompts, max_new_tokens, temperature=1.0, generator=generator)
    P = prompts.shape[1]
    was = policy.training, reference.training
    policy.eval(), reference.eval()
    try:
        ratio = sequence_logprob(policy, seqs, P) - sequence_logprob(reference, seqs, P)
    finally:
        policy.train(was[0]), reference.train(was[1])
    return seqs, ratio


class EvalEvery(L.Callback):
    """Calls ``evaluate(model) -> dict`` on the task's ``model`` before training and every
    ``every`` optimiser steps (and after the last), and keeps the rows with the ``step``
    and the seconds since training started (evaluation time included)."""

    def __init__(self, evaluate: Callable[[nn.Module], dict], every: int):
        _checks.positive_int("every", every)
        if not callable(evaluate):
            raise ValueError(f"evaluate must be callable, got {type(evaluate).__name__}")
        self.evaluate, self.every = evaluate, every
        self.rows: list[dict] = []
        self._t0 = 0.0

    def _record(self, trainer, pl_module) -> None:
        was = pl_module.model.training
        pl_module.model.eval()
        try:
            row = dict(self.evaluate(pl_module.model))
        finally:
            pl_module.model.train(was)
        self.rows.append(
            {"step": trainer.global_step, **row, "seconds": time.perf_counter() - self._t0}
        )

    def on_train_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()
        self._record(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            self._record(trainer, pl_module)

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)
