"""Scaling laws: a grid of small GPTs and the fit ``L(N, D) = E + A / N^alpha + B / D^beta``.

Two halves, used by the scaling-laws chapter (Part 7):

* **The grid.** :func:`train_run` trains one character-level GPT on Tiny Shakespeare for a
  number of tokens, with its own warm-up and cosine schedule stretched to that budget
  (Hoffmann et al., 2022, found that a schedule longer than the run overestimates the
  loss of short runs), and scores it on the validation text by loss, per-character
  accuracy, exact match of ``k``-character continuations and exact match of whole words
  (:func:`score`). :func:`build` trains every size and budget of :data:`GRID` and returns
  a JSON-able record (schema :data:`SCHEMA`) with the recipe that produced it, its hash
  and the CPU seconds of every run; ``python -m fmbook.scaling_laws build --out FILE``
  writes it.
* **The fit.** :func:`fit` follows the third approach of Hoffmann et al. (2022): minimise
  the Huber loss (``delta = 1e-3``) between the predicted and the measured *log* loss,
  ``LSE(a - alpha log N, b - beta log D, e) - log L`` with ``A = e^a, B = e^b, E = e^e``,
  by L-BFGS from the best points of a grid of initialisations. :func:`bootstrap` refits
  on resampled runs for intervals; :class:`ScalingLaw` predicts losses and gives the
  compute-optimal split for a budget ``C = 6 N D``.

N is the number of **non-embedding** parameters
(:func:`fmbook.models.counting.gpt_non_embedding_params`), as in Kaplan et al. (2020).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import speedrun
from .models import GPT
from .models.counting import gpt_flops_per_token, gpt_non_embedding_params, gpt_params

__all__ = [
    "GRID",
    "HELDOUT",
    "SCHEMA",
    "ScalingLaw",
    "Size",
    "bootstrap",
    "build",
    "fit",
    "huber",
    "main",
    "recipe_for",
    "score",
    "train_run",
]

SCHEMA = 1  # bump when the record's fields or the recipe's meaning change


# ---------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Size:
    """One model of the grid: ``n_layer`` blocks of width ``d_model`` with ``n_head`` heads."""

    n_layer: int
    n_head: int
    d_model: int

    @property
    def name(self) -> str:
        return f"L{self.n_layer}-C{self.d_model}"


BLOCK_SIZE = 64  # characters of context
BATCH_SIZE = 16  # windows per step: 1,024 tokens per step

# Six widths at a fixed depth of two blocks, from 15 thousand to 0.4 million
# non-embedding parameters (a fixed depth: at a few hundred steps, deeper models of the
# same size still trail shallower ones, which is a fact about short training, not size) ...
SIZES = (
    Size(2, 2, 24),
    Size(2, 2, 32),
    Size(2, 3, 48),
    Size(2, 4, 64),
    Size(2, 6, 96),
    Size(2, 8, 128),
)
STEPS = (400, 800, 1600)  # ... times three budgets: 0.41 M to 1.6 M tokens
GRID = tuple(itertools.product(SIZES, STEPS))
HELDOUT = (Size(2, 16, 256), 1600)  # the larger run to predict: 1.6 M parameters


def recipe_for(size: Size) -> speedrun.Recipe:
    """The training recipe of a grid model: the pretraining chapter's GPT-2 recipe (AdamW,
    weight decay 0.1, warm-up over 5% of the steps, cosine decay to a tenth) with a context
    of 64, batches of 16 and a peak learning rate ``0.004 * sqrt(128 / d_model)`` (smaller
    models tolerate larger steps)."""
    return speedrun.BASELINE.replace(
        n_layer=size.n_layer,
        n_head=size.n_head,
        d_model=size.d_model,
        block_size=BLOCK_SIZE,
        batch_sizes=(BATCH_SIZE,),
        lr=round(0.004 * math.sqrt(128 / size.d_model), 5),
    )


@torch.no_grad()
def score(
    model: GPT, ids: torch.Tensor, block_size: int, word_chars: torch.Tensor, ks=(1, 2, 4, 8)
) -> dict:
    """Score ``model`` on consecutive windows of ``ids`` (N,), every token predicted once.

    Returns the mean cross-entropy ``loss`` (nats/token), its standard error ``loss_se``
    (over windows), the per-token ``accuracy`` of the greedy prediction, the exact match
    ``match_k`` of each ``k``-token continuation (greedy decoding reproduces the next k
    tokens exactly iff each of them is the argmax given the true prefix, so this needs no
    decoding) and ``word_match``, the exact match of whole words: runs of the token ids in
    ``word_chars`` (a bool mask over the vocabulary) that start after a non-word token.
    """
    n = (len(ids) - 1) // block_size
    x = ids[: n * block_size].view(n, block_size)  # (n, T)
    y = ids[1 : n * block_size + 1].view(n, block_size)
    was_training = model.training
    model.eval()
    nll, hit = [], []
    for i in range(0, n, 64):
        logits, _ = model(x[i : i + 64])  # (b, T, V)
        nll.append(F.cross_entropy(logits.transpose(1, 2), y[i : i + 64], reduction="none"))
        hit.append(logits.argmax(-1) == y[i : i + 64])  # (b, T)
    model.train(was_training)
    nll, hit = torch.cat(nll), torch.cat(hit)  # (n, T)
    per_window = nll.mean(1)
    out = {
        "loss": float(nll.mean()),
        "loss_se": float(per_window.std() / math.sqrt(n)),
        "accuracy": float(hit.float().mean()),
    }
    for k in ks:  # all of the next k tokens right: a product of k indicators
        windows = hit.unfold(1, k, 1)  # (n, T - k + 1, k)
        out[f"match_{k}"] = float(windows.all(-1).float().mean())
    out["word_match"] = _word_match(x, y, hit, word_chars)
    return out


def _word_match(x, y, hit, word_chars) -> float:
    """Fraction of whole words (inside a window) whose every character is predicted."""
    in_word = word_chars[y]  # (n, T): target is a word character
    starts = in_word & ~word_chars[x]  # a word begins at this target
    total = right = 0
    for row_in, row_hit, row_start in zip(in_word, hit, starts, strict=True):
        t_ends = torch.nonzero(~row_in).flatten().tolist() + [len(row_in)]
        for t in torch.nonzero(row_start).flatten().tolist():
            end = next(e for e in t_ends if e > t)
            if end == len(row_in):  # the word runs past the window: not scored
                continue
            total += 1
            right += bool(row_hit[t:end].all())
    return right / max(total, 1)


@functools.lru_cache(maxsize=1)
def _word_mask(vocab_size: int) -> torch.Tensor:
    from .data import fetch
    from .tokenizers import CharTokenizer

    tok = CharTokenizer.train(fetch("tinyshakespeare").read_text(encoding="utf-8"))
    chars = [tok.decode([i]) for i in range(vocab_size)]
    return torch.tensor([c.isalpha() or c == "'" for c in chars])


def train_run(
    size: Size,
    steps: int,
    seed: int = 0,
    *,
    threads: int | None = 1,
    val_tokens: int | None = None,
) -> dict:
    """Train ``size`` for ``steps`` steps of :data:`BATCH_SIZE` windows of
    :data:`BLOCK_SIZE` characters, its cosine schedule stretched to exactly those steps,
    and :func:`score` it on the validation text (the first ``val_tokens``, or all).
    Returns a JSON-able dict: sizes, ``N`` (non-embedding parameters), ``N_total``, ``D``
    (training tokens), ``flops`` (``6 N D``) and ``flops_exact`` (counted with attention
    and the output head), the scores and ``cpu_seconds`` (CPU time of the process)."""
    from . import seed_everything

    recipe = recipe_for(size)
    train, val, vocab = speedrun.load_data()
    cfg = recipe.config(vocab)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.process_time()
    try:
        seed_everything(seed)
        model = GPT(cfg)
        (optimizer,) = speedrun.make_optimizers(model, recipe)
        base_lr = [group["lr"] for group in optimizer.param_groups]
        g = torch.Generator().manual_seed(seed)
        # <show loop>
        for step in range(steps):
            factor = speedrun.lr_multiplier(step, steps, recipe)  # schedule of *this* run
            for group, lr in zip(optimizer.param_groups, base_lr, strict=True):
                group["lr"] = lr * factor
            x, y = speedrun.random_windows(train, BATCH_SIZE, BLOCK_SIZE, g)
            loss = speedrun.train_step(model, [optimizer], x, y)
            if not math.isfinite(loss):
                raise FloatingPointError(f"{size.name} diverged at step {step}: loss {loss}")
        # </show loop>
        train_seconds = time.process_time() - start
        ids = val if val_tokens is None else val[: val_tokens + 1]
        scores = score(model, ids, BLOCK_SIZE, _word_mask(vocab))
    finally:
        torch.set_num_threads(old_threads)
    n, tokens = gpt_non_embedding_params(cfg), steps * BATCH_SIZE * BLOCK_SIZE
    return {
        **dataclasses.asdict(size),
        "name": size.name,
        "seed": seed,
        "steps": steps,
        "lr": recipe.lr,
        "N": n,
        "N_total": gpt_params(cfg),
        "D": tokens,
        "flops": 6.0 * n * tokens,
        "flops_exact": float(gpt_flops_per_token(cfg, BLOCK_SIZE) * tokens),
        "val_tokens": (len(ids) - 1) // BLOCK_SIZE * BLOCK_SIZE,
        **scores,
        "train_cpu_seconds": train_seconds,
        "cpu_seconds": time.process_time() - start,
    }


def build(
    grid=GRID,
    seeds=(0,),
    *,
    threads: int | None = 1,
    val_tokens=None,
    out: Path | None = None,
    log=print,
) -> dict:
    """Train every (size, steps) of ``grid`` with every seed; a JSON-able record with the
    schema version, the recipe of each size and its hash, the provenance and the runs.
    With ``out``, the record is written after every run, and runs already in ``out`` (same
    size, steps, seed and recipe) are kept instead of trained again: an interrupted build
    resumes where it stopped."""
    sizes = dict.fromkeys(size for size, _ in grid)
    done = {}
    if out is not None and Path(out).exists():
        old = json.loads(Path(out).read_text(encoding="utf-8"))
        if old.get("schema") == SCHEMA:
            for r in old["runs"]:
                size = Size(r["n_layer"], r["n_head"], r["d_model"])
                if old["recipe"]["hashes"].get(size.name) == recipe_for(size).hash():
                    done[(size, r["steps"], r["seed"])] = r
    record = {
        "schema": SCHEMA,
        "recipe": {
            "block_size": BLOCK_SIZE,
            "batch_size": BATCH_SIZE,
            "sizes": {s.name: dataclasses.asdict(recipe_for(s)) for s in sizes},
            "hashes": {s.name: recipe_for(s).hash() for s in sizes},
            "command": "python -m fmbook.scaling_laws build --out scaling-grid.json",
        },
        "provenance": speedrun.provenance(threads),
        "val_tokens": val_tokens,
        "cpu_seconds": 0.0,
        "runs": [],
    }
    for seed in seeds:
        for size, steps in grid:
            r = done.get((size, steps, seed))
            if r is None:
                r = train_run(size, steps, seed, threads=threads, val_tokens=val_tokens)
            record["runs"].append(r)
            record["cpu_seconds"] = sum(r["cpu_seconds"] for r in record["runs"])
            log(
                f"{r['name']:>9} N={r['N']:>8,} D={r['D']:>9,} seed {seed}: "
                f"loss {r['loss']:.4f}, {r['cpu_seconds']:.1f} CPU s"
            )
            if out is not None:
                Path(out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def check_record(record: dict) -> None:
    """Refuse a grid record of another schema or whose recipes differ from today's."""
    if record.get("schema") != SCHEMA:
        raise ValueError(f"grid record has schema {record.get('schema')!r}, expected {SCHEMA}")
    for run in record["runs"]:
        size = Size(run["n_layer"], run["n_head"], run["d_model"])
        if record["recipe"]["hashes"][size.name] != recipe_for(size).hash():
            raise ValueError(f"stale grid record: the recipe of {size.name} has changed")


# ---------------------------------------------------------------------------- the fit


@dataclass(frozen=True)
class ScalingLaw:
    """``L(N, D) = E + A / N^alpha + B / D^beta`` (N parameters, D tokens, L in nats)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    # <show law>
    def loss(self, N, D):
        """The predicted loss of N parameters trained on D tokens."""
        N, D = np.asarray(N, float), np.asarray(D, float)
        return self.E + self.A / N**self.alpha + self.B / D**self.beta

    def compute_optimal(self, C):
        """N_opt and D_opt for a budget of C = 6 N D FLOPs: minimise L(N, C / 6N) over N,
        N_opt = G (C/6)^a, D_opt = (C/6)^b / G with a = beta / (alpha + beta),
        b = alpha / (alpha + beta) and G = (alpha A / (beta B))^(1 / (alpha + beta))."""
        C = np.asarray(C, float)
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        return G * (C / 6) ** self.a, (C / 6) ** self.b / G

    # </show law>

    @property
    def a(self) -> float:
        """The exponent of N_opt in C (D_opt's is ``b = 1 - a``)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "a": self.a}


# <show objective>
def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Quadratic for |r| <= delta, linear beyond: robust to a few outlying runs."""
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def _objective(theta, logN, logD, logL, delta):
    """Sum of Huber(LSE(a - alpha log N, b - beta log D, e) - log L) and its gradient;
    theta = (a, b, e, alpha, beta) with A = exp(a), B = exp(b), E = exp(e)."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])  # (3, n)
    pred = np.logaddexp.reduce(terms, axis=0)  # log(A/N^alpha + B/D^beta + E)
    r = pred - logL  # residuals in log-loss
    w = np.exp(terms - pred)  # (3, n): d pred / d (each term)
    dr = np.clip(r, -delta, delta)  # Huber'(r)
    grad = np.array([dr @ w[0], dr @ w[1], dr @ w[2], -dr @ (w[0] * logN), -dr @ (w[1] * logD)])
    return huber(r, delta).sum(), grad


# </show objective>

# Hoffmann et al.'s grid of initialisations: alpha, beta in {0, 0.5, ..., 2},
# e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}.
INIT_GRID = {
    "alpha": np.arange(0.0, 2.01, 0.5),
    "beta": np.arange(0.0, 2.01, 0.5),
    "e": np.arange(-1.0, 1.01, 0.5),
    "a": np.arange(0.0, 25.1, 5.0),
    "b": np.arange(0.0, 25.1, 5.0),
}


def _inits() -> np.ndarray:
    g = INIT_GRID
    grid = itertools.product(g["a"], g["b"], g["e"], g["alpha"], g["beta"])
    return np.array(list(grid))  # (n_inits, 5): a, b, e, alpha, beta


def _data(N, D, L):
    arrays = [np.asarray(v, float).ravel() for v in (N, D, L)]
    if len({len(v) for v in arrays}) != 1:
        raise ValueError(f"N, D and L must have the same length, got {[len(v) for v in arrays]}")
    if len(arrays[0]) < 5:
        raise ValueError(
            f"fitting L(N, D) needs at least 5 runs (the law has 5 parameters: E, A, B, "
            f"alpha, beta), got {len(arrays[0])}"
        )
    for name, v in zip("NDL", arrays, strict=True):
        if not (np.isfinite(v).all() and (v > 0).all()):
            raise ValueError(f"{name} must be positive and finite")
    return tuple(np.log(v) for v in arrays)


def fit(N, D, L, *, delta: float = 1e-3, starts: int = 32, inits=None) -> ScalingLaw:
    """Fit :class:`ScalingLaw` to runs with ``N`` parameters, ``D`` tokens and loss ``L``.

    Hoffmann et al.'s (2022) third approach: minimise the summed Huber loss (``delta``) of
    the log-loss residuals by L-BFGS. It starts from the ``starts`` best points (by the
    objective) of :data:`INIT_GRID` (or of ``inits``, rows ``(a, b, e, alpha, beta)``) and
    keeps the best end point. Needs at least 5 runs.
    """
    from scipy.optimize import minimize

    logN, logD, logL = _data(N, D, L)
    inits = _inits() if inits is None else np.atleast_2d(np.asarray(inits, float))
    a, b, e, alpha, beta = (inits[:, i : i + 1] for i in range(5))  # (n_inits, 1)
    pred = np.logaddexp(np.logaddexp(a - alpha * logN, b - beta * logD), e)  # (n_inits, n)
    first = huber(pred - logL, delta).sum(1)
    best = None
    for i in np.argsort(first)[:starts]:
        res = minimize(
            _objective, inits[i], args=(logN, logD, logL, delta), jac=True, method="L-BFGS-B"
        )
        if best is None or res.fun < best.fun:
            best = res
    a, b, e, alpha, beta = (float(v) for v in best.x)
    return ScalingLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)


def bootstrap(
    N, D, L, *, n_boot: int = 200, seed: int = 0, level: float = 0.95, **fit_kwargs
) -> dict:
    """Percentile intervals of each parameter (and of ``a``) from ``n_boot`` fits on runs
    resampled with replacement (a resample with fewer than 5 distinct runs is drawn again).
    Returns ``{name: (low, high)}`` and, under ``"samples"``, the fitted laws."""
    N, D, L = (np.asarray(v, float).ravel() for v in (N, D, L))
    rng = np.random.default_rng(seed)
    laws = []
    while len(laws) < n_boot:
        idx = rng.integers(0, len(N), len(N))
        if len(set(idx.tolist())) < 5:
            continue
        laws.append(fit(N[idx], D[idx], L[idx], **fit_kwargs))
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = {}
    for name in ("E", "A", "B", "alpha", "beta", "a"):
        values = np.array([law.as_dict()[name] for law in laws])
        low, high = np.percentile(values, q)
        out[name] = (float(low), float(high))
    out["samples"] = laws
    return out


# ---------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> dict:
    """``python -m fmbook.scaling_laws build --out FILE [--seeds 0 1] [--threads 1]``:
    train the grid and write its record (JSON), resuming from ``FILE`` if it exists."""
    parser = argparse.ArgumentParser(prog="python -m fmbook.scaling_laws")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train the grid of GRID and write a JSON record")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--seeds", type=int, nargs="+", default=[0])
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--val-tokens", type=int, default=None)
    args = parser.parse_args(argv)
    return build(GRID, args.seeds, threads=args.threads, val_tokens=args.val_tokens, out=args.out)


if __name__ == "__main__":
    main()
