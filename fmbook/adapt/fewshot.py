"""Few-shot prompting against fine-tuning, for a causal language model on a text task.

A task is a list of ``(input, output)`` pairs of strings. *Prompting* with ``k`` shots
writes ``k`` solved pairs before the query, ``"in: out\\n" * k + "query: "``, and lets the
frozen model continue; *fine-tuning* trains the model on the same ``k`` pairs (the loss on
the outputs only) and then asks it with no shot at all.

>>> prompt = few_shot_prompt([("Romeo", "ROMEO")], "Juliet")      # 'Romeo: ROMEO\\nJuliet: '
>>> correct, nll = score_answers(model, tokenizer, [prompt], ["JULIET"])
>>> tuned = fine_tune_lm(model, tokenizer, [("Romeo", "ROMEO")], steps=30, lr=1e-3)
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fmbook.tasks import CausalLM, make_trainer
from fmbook.utils import seed_everything

__all__ = ["answer_batch", "few_shot_prompt", "fine_tune_lm", "score_answers"]


# <show few_shot>
def few_shot_prompt(shots, query, sep=": ", end="\n"):
    """k solved (input, output) pairs, then the query waiting for its output."""
    solved = "".join(f"{x}{sep}{y}{end}" for x, y in shots)
    return f"{solved}{query}{sep}"


def answer_batch(tokenizer, prompts, answers):
    """(N, T) ids of prompt + answer, right-padded, and (N, T) targets that hold the
    next token only where it is a token of the answer (elsewhere -100, ignored)."""
    rows = [
        (tokenizer.encode(p), tokenizer.encode(a)) for p, a in zip(prompts, answers, strict=True)
    ]
    T = max(len(p) + len(a) for p, a in rows) - 1
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    targets = torch.full((len(rows), T), -100)
    for i, (p, a) in enumerate(rows):
        seq = torch.tensor(p + a)
        ids[i, : len(seq) - 1] = seq[:-1]
        targets[i, len(p) - 1 : len(seq) - 1] = seq[len(p) :]  # predict the answer
    return ids, targets


@torch.no_grad()
def score_answers(model, tokenizer, prompts, answers):
    """Per pair: whether greedy decoding writes the answer exactly (every answer token
    is the argmax given the prompt and the answer so far) and the answer's mean NLL."""
    ids, targets = answer_batch(tokenizer, prompts, answers)
    logits, _ = model(ids.to(next(model.parameters()).device))
    logits = logits.float().cpu()  # (N, T, V)
    on = targets != -100  # (N, T): the answer's positions
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (N, T)
    hit = (logits.argmax(-1) == targets) | ~on
    return hit.all(1), (nll * on).sum(1) / on.sum(1)  # (N,) bool, (N,) nats per token


# </show few_shot>


def fine_tune_lm(
    model: nn.Module, tokenizer, shots, *, steps: int, lr: float, seed: int = 0
) -> nn.Module:
    """A copy of ``model`` fine-tuned on the pairs ``shots`` (each written as
    ``few_shot_prompt([], x) + y + "\\n"``; the loss on ``y`` and the newline only), for
    ``steps`` full-batch AdamW steps (constant ``lr`` after a short warm-up)."""
    if not shots:
        raise ValueError("fine_tune_lm needs at least one (input, output) pair")
    seed_everything(seed)
    tuned = copy.deepcopy(model).train()
    prompts = [few_shot_prompt([], x) for x, _ in shots]
    ids, targets = answer_batch(tokenizer, prompts, [y + "\n" for _, y in shots])
    loader = DataLoader(TensorDataset(ids, targets), batch_size=len(shots), shuffle=True)
    task = CausalLM(
        tuned,
        lr=lr,
        warmup_steps=max(1, steps // 10),
        max_steps=steps,
        weight_decay=0.0,
        min_lr_ratio=1.0,
    )
    trainer = make_trainer(max_steps=steps, val_every=steps, limit_val_batches=0)
    trainer.fit(task, train_dataloaders=loader)
    return tuned.eval()
