"""Memorisation and differential privacy at small scale.

* **Canaries** (Carlini et al., 2019, *The Secret Sharer*): random secrets of
  ``n_digits`` digits, inserted into the training records (:func:`random_secrets`,
  :func:`insert_canaries`), and their **exposure**, ``log2 |R| - log2 rank``, where the
  rank orders all ``|R| = 10 ** n_digits`` candidate secrets by the model's
  log-perplexity (:func:`rank`, :func:`exposure`; scores of every candidate, exactly, by
  :func:`secret_log_perplexities`; Carlini's approximation from a sample by
  :func:`exposure_estimate`).
* **Membership inference** by a loss threshold (Yeom et al., 2018): the loss of each
  record (:func:`record_losses`) and the attack's AUC (:func:`membership_auc`, the AUROC of
  torchmetrics with the negative loss as the score).
* **DP-SGD** (Abadi et al., 2016): clip each example's gradient, add Gaussian noise to the
  sum, divide by the expected batch size (:func:`clip_per_example`, :func:`privatise`,
  the step Opacus's ``DPOptimizer`` takes), and :func:`make_private`, Opacus's
  ``PrivacyEngine`` with the options this book uses.

Ties in the rank: a candidate scored exactly like the canary counts half (the mid-rank),
so a model that scores every candidate alike gives every canary a rank of
``(|R| + 1) / 2`` and an exposure of about one bit, the expected exposure of a secret the
model knows nothing about.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .nn import KVCache

__all__ = [
    "DIGITS",
    "clip_per_example",
    "exposure",
    "exposure_estimate",
    "insert_canaries",
    "make_private",
    "membership_auc",
    "privatise",
    "random_secrets",
    "rank",
    "record_losses",
    "secret_index",
    "secret_log_perplexities",
]

DIGITS = "0123456789"


# ----------------------------------------------------------------------------- checks
def _check_n_digits(n_digits) -> None:
    if isinstance(n_digits, bool) or not isinstance(n_digits, int) or n_digits < 1:
        raise ValueError(f"n_digits must be an integer >= 1, got {n_digits!r}")


def _check_scores(scores) -> torch.Tensor:
    scores = torch.as_tensor(scores)
    if scores.dim() != 1 or len(scores) < 1 or not scores.is_floating_point():
        raise ValueError(
            f"scores must be a 1-D float tensor over the candidates, got shape "
            f"{tuple(scores.shape)} and dtype {scores.dtype}"
        )
    if not torch.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return scores


def _check_index(index, size: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise ValueError(
            f"the canary is not in the candidate space: index {index!r} is not one of the "
            f"{size} candidates 0..{size - 1}"
        )


def _check_chars(tokenizer, text: str) -> list[int]:
    ids = tokenizer.encode(text)
    if len(ids) != len(text):
        raise ValueError("the tokenizer must map every character to one token")
    return ids


# ------------------------------------------------------------------------- canaries
def secret_index(secret: str, n_digits: int) -> int:
    """The index of ``secret`` among the ``10 ** n_digits`` candidates (its value as a
    number: candidate ``i`` is ``f"{i:0{n_digits}d}"``); refuses anything else."""
    _check_n_digits(n_digits)
    if not isinstance(secret, str) or len(secret) != n_digits or set(secret) - set(DIGITS):
        raise ValueError(
            f"the canary is not in the candidate space: {secret!r} is not a string of "
            f"{n_digits} digits"
        )
    return int(secret)


def random_secrets(n: int, n_digits: int, seed: int = 0) -> list[str]:
    """``n`` distinct secrets drawn uniformly from the ``10 ** n_digits`` candidates."""
    _check_n_digits(n_digits)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10**n_digits:
        raise ValueError(f"n must be an integer in 1..{10**n_digits}, got {n!r}")
    values = random.Random(seed).sample(range(10**n_digits), n)
    return [f"{v:0{n_digits}d}" for v in values]


def insert_canaries(
    records: Sequence[str], canaries: Sequence[str], repeats: Sequence[int], seed: int = 0
) -> tuple[list[str], list[int]]:
    """Copies of the records with ``repeats[i]`` copies of ``canaries[i]``, each copy at
    the start of its own randomly chosen record (``canary + "\\n"``, then the record's
    text, cut to keep its length). Returns the records and, for each, the index of the
    canary it holds (-1 for none). Every copy is in a different record, so a canary
    repeated ``r`` times changes ``r`` training examples.
    """
    records, canaries, repeats = list(records), list(canaries), list(repeats)
    if not records or len({len(r) for r in records}) != 1:
        raise ValueError("records must be a non-empty list of strings of one length")
    if len(canaries) != len(repeats) or not canaries:
        raise ValueError(
            f"need one repeat count per canary, got {len(canaries)} canaries and "
            f"{len(repeats)} counts"
        )
    if len(set(canaries)) != len(canaries):
        raise ValueError("canaries must be distinct")
    for r in repeats:
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"every canary is inserted at least once: repetition {r!r} < 1")
    width = len(records[0])
    for c in canaries:
        if len(c) + 1 > width:
            raise ValueError(f"canary {c!r} does not fit in a record of {width} characters")
    if sum(repeats) > len(records):
        raise ValueError(f"{sum(repeats)} copies need as many records, got {len(records)}")
    hosts = random.Random(seed).sample(range(len(records)), sum(repeats))
    holder = [-1] * len(records)
    for at, i in zip(hosts, [i for i, r in enumerate(repeats) for _ in range(r)], strict=True):
        records[at] = (canaries[i] + "\n" + records[at])[:width]
        holder[at] = i
    return records, holder


# <show exposure>
def rank(scores: torch.Tensor, index: int) -> float:
    """Rank of candidate ``index`` when the candidates are sorted by ``scores``
    (log-perplexity, lower = more likely): 1 + the number scored lower, + half the
    number of *other* candidates scored the same (mid-rank for ties)."""
    scores = _check_scores(scores)
    _check_index(index, len(scores))
    s = scores[index]
    lower = (scores < s).sum().item()
    tied = (scores == s).sum().item() - 1  # the canary itself does not count
    return 1 + lower + tied / 2


def exposure(scores: torch.Tensor, index: int) -> float:
    """Exposure in bits (Carlini et al., 2019): log2 |R| - log2 rank. At most log2 |R|
    (the canary is the most likely candidate), about 1 for a random one."""
    return math.log2(len(_check_scores(scores))) - math.log2(rank(scores, index))


# </show exposure>


def exposure_estimate(sample_scores: torch.Tensor, canary_score: float) -> float:
    """Carlini et al.'s approximation of the exposure from a random sample of candidates:
    fit a skew-normal distribution to their scores and return ``-log2 F(canary_score)``,
    with F the fitted CDF (the probability that a random candidate scores lower)."""
    from scipy import stats

    sample = _check_scores(sample_scores).double().numpy()
    if len(sample) < 10:
        raise ValueError(f"need at least 10 sampled scores to fit, got {len(sample)}")
    a, loc, scale = stats.skewnorm.fit(sample)
    log_cdf = stats.skewnorm.logcdf(float(canary_score), a, loc, scale)
    return float(-log_cdf / math.log(2))


@torch.no_grad()
def secret_log_perplexities(
    model, tokenizer, prefix: str, n_digits: int, batch_size: int = 1000
) -> torch.Tensor:
    """``-log2 P(secret | prefix)`` under a character-level fmbook decoder (a
    :class:`~fmbook.models.GPT`) for every candidate secret, exactly: shape
    ``(10 ** n_digits,)``, candidate ``i`` is ``f"{i:0{n_digits}d}"``.

    The prefix runs once, into key/value caches; then one pass over the first
    ``n_digits - 1`` digits of every candidate gives each digit's conditional probability
    along the way, and its last position scores all ten last digits at once.
    """
    _check_n_digits(n_digits)
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("prefix must be a non-empty string")
    if not hasattr(model, "blocks") or not hasattr(getattr(model, "config", None), "max_len"):
        raise ValueError(f"model must be an fmbook decoder (GPT), got {type(model).__name__}")
    prefix_ids = torch.tensor(_check_chars(tokenizer, prefix))
    digit_ids = torch.tensor(_check_chars(tokenizer, DIGITS))  # (10,)
    P, n, device = len(prefix_ids), n_digits, _device(model)
    if P + n - 1 > model.config.max_len:
        raise ValueError(f"prefix + secret ({P + n - 1} tokens) exceed the model's max_len")
    was_training = model.training
    model.eval()
    caches = [KVCache() for _ in model.blocks]
    first = model(prefix_ids[None].to(device), caches=caches)[0][0, -1].float().cpu()  # (V,)
    first = F.log_softmax(first, dim=-1)[digit_ids]  # (10,): log P(first digit)
    if n == 1:
        model.train(was_training)
        return -first / math.log(2)
    powers = 10 ** torch.arange(n - 2, -1, -1)  # (n-1,): most significant digit first
    out = []
    for h in torch.arange(10 ** (n - 1)).split(batch_size):
        digits = (h[:, None] // powers) % 10  # (b, n-1): all but the last digit
        shared = [_expanded(c, len(h)) for c in caches]  # the prefix, b times
        logits = model(digit_ids[digits].to(device), caches=shared)[0].float().cpu()
        logp = F.log_softmax(logits, dim=-1)  # (b, n-1, V): predicts digits 2..n
        inner = digit_ids[digits[:, 1:]][..., None]  # (b, n-2, 1)
        head = first[digits[:, 0]] + logp[:, : n - 2].gather(-1, inner).sum((1, 2))  # (b,)
        last = logp[:, n - 2, digit_ids]  # (b, 10)
        out.append((head[:, None] + last).flatten())  # index = head * 10 + last digit
    model.train(was_training)
    return -torch.cat(out) / math.log(2)


def _expanded(cache: KVCache, batch: int) -> KVCache:
    """A cache holding ``batch`` copies of a one-sequence cache's keys and values."""
    copy = KVCache()
    copy.k = cache.k.expand(batch, -1, -1, -1)
    copy.v = cache.v.expand(batch, -1, -1, -1)
    return copy


def _device(model) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------- membership inference
@torch.no_grad()
def record_losses(model, ids: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The mean next-token loss (nats) of each record: ids (N, T+1) -> (N,)."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.size(1) < 2:
        raise ValueError("ids must be a (N, T+1) tensor of token ids with T >= 1")
    was_training = model.training
    model.eval()
    out = []
    for chunk in ids.split(batch_size):
        chunk = chunk.to(_device(model))
        logits = model(chunk[:, :-1])[0].float()  # (b, T, V)
        loss = F.cross_entropy(logits.transpose(1, 2), chunk[:, 1:], reduction="none")
        out.append(loss.mean(1).cpu())  # (b,)
    model.train(was_training)
    return torch.cat(out)


def membership_auc(member_losses, nonmember_losses) -> float:
    """AUC of the loss-threshold attack (Yeom et al., 2018): "member if the loss is below
    a threshold", over all thresholds; the probability that a random member has a lower
    loss than a random non-member (ties count half). 0.5 is chance."""
    from torchmetrics.functional.classification import binary_auroc

    members = torch.as_tensor(member_losses, dtype=torch.float64).flatten()
    others = torch.as_tensor(nonmember_losses, dtype=torch.float64).flatten()
    if len(members) == 0 or len(others) == 0:
        raise ValueError("need at least one member and one non-member loss")
    scores = -torch.cat([members, others])  # higher = more likely a member
    labels = torch.cat([torch.ones(len(members)), torch.zeros(len(others))]).long()
    return float(binary_auroc(scores, labels))


# ---------------------------------------------------------------------------- DP-SGD
# <show dp_sgd>
def clip_per_example(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Per-example gradients, one (B, *shape) tensor per parameter -> the same, each
    example's whole gradient (all parameters together) scaled to norm <= max_norm."""
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], 1).norm(dim=1)  # (B,)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # (B,)
    return [g * scale.view(-1, *[1] * (g.dim() - 1)) for g in grads]


def privatise(grads, max_norm, noise_multiplier, expected_batch_size, generator=None):
    """The DP-SGD gradient: clip each example to max_norm (C), sum over the batch, add
    Gaussian noise of std noise_multiplier * C (sigma C) to the SUM, and divide by the
    expected batch size (fixed, so the noise does not depend on the sampled batch)."""
    out = []
    for g in clip_per_example(grads, max_norm):
        noise = torch.randn(g.shape[1:], generator=generator, dtype=g.dtype)
        out.append((g.sum(0) + noise_multiplier * max_norm * noise) / expected_batch_size)
    return out


# </show dp_sgd>


def make_private(
    model,
    optimizer,
    loader,
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    accountant: str = "prv",
    secure_mode: bool = False,
):
    """Opacus's ``PrivacyEngine(...).make_private``: per-example gradients by hooks,
    Poisson sampling of the batches, clipping and noise in the optimiser, and an
    accountant. Returns ``(engine, model, optimizer, loader)``; ``engine.get_epsilon(delta)``
    is the epsilon spent so far."""
    from opacus import PrivacyEngine

    if getattr(getattr(model, "config", None), "positions", None) == "learned":
        raise ValueError(
            "a GPT with learned positions looks them up without a batch dimension, so "
            "Opacus cannot compute their per-example gradients: use positions='rope'"
        )
    with warnings.catch_warnings():
        # With secure_mode=False Opacus warns that its noise comes from torch's ordinary
        # pseudo-random generator. That is fine for teaching; a production run uses
        # secure_mode=True (a cryptographically secure generator), because noise an
        # attacker can predict protects nothing (the chapter says more).
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant=accountant, secure_mode=secure_mode)
    model, optimizer, loader = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        poisson_sampling=True,
    )
    return engine, model, optimizer, loader
