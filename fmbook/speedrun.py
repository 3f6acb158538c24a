"""Training fast on a CPU: recipes, fair timing on a shared machine, runs at a time budget.

A *recipe* (:class:`Recipe`) fixes everything a run depends on: the model (a
:class:`~fmbook.models.GPTConfig` with the modern options), the optimiser (AdamW, or Muon
for the blocks' matrices), the learning-rate schedule (warm-up and cosine, or
warm-up-stable-decay) and the batch sizes. The budget of a run is given in **seconds of
an idle machine**: other programs may share the cores, so a wall clock would measure the
neighbours too. Instead :func:`calibrate` times a few short repeats of one optimiser step
and keeps the *minimum* (the repeat least disturbed, as ``timeit`` does), and
:func:`step_budget` turns the seconds into a number of steps for that recipe. A run then
trains exactly that many steps, however long they take on a busy machine, and reports the
validation loss on Tiny Shakespeare (every validation character predicted once).

The clock is the process's **CPU time** (``time.process_time``) with one torch thread:
the CPU seconds a step consumes hardly change when neighbours share the machine, whereas
its wall time does (on a 2-core machine with eight busy neighbours, the wall time of a
two-thread step varied by a factor of two between repeats). A budget of 60 s therefore
means 60 s of one idle core.

``python -m fmbook.speedrun --seconds 600 --seeds 0 1 2 --out FILE`` runs the baseline
and :data:`RECIPE` and writes a JSON record with the provenance of the numbers (see
:func:`main`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import _checks
from .models import GPT, GPTConfig

__all__ = [
    "BASELINE",
    "RECIPE",
    "Recipe",
    "VARIANTS",
    "calibrate",
    "cpu_seconds",
    "evaluate",
    "load_data",
    "lr_multiplier",
    "main",
    "build",
    "make_optimizers",
    "random_windows",
    "run",
    "step_budget",
    "train_step",
]


@dataclass(frozen=True)
class Recipe:
    """Everything a speedrun depends on, besides the seed and the budget in seconds.

    Model: the :class:`~fmbook.models.GPTConfig` fields of the same names.
    ``optimizer``: "adamw" (every parameter, learning rate ``lr``, weight decay on
    matrices) or "muon" (``torch.optim.Muon`` with ``muon_lr`` for the 2-D weights inside
    the blocks; AdamW with ``lr`` for embeddings, output head, gains and biases).
    ``schedule``: "cosine" (linear warm-up over the fraction ``warmup`` of the steps, then
    cosine decay to ``min_lr_ratio``) or "wsd" (warm-up, a stable plateau, then a linear
    decay to ``min_lr_ratio`` over the last fraction ``decay`` of the steps).
    ``batch_sizes``: windows per step; with several, each gets an equal share of the time
    budget, in order (a batch-size ramp).
    ``compile``: train a ``torch.compile``d model (its compile time comes out of the budget).
    """

    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    block_size: int = 128
    positions: str = "learned"
    norm: str = "layer"
    mlp: str = "gelu"
    qk_norm: bool = False
    bias: bool = True
    tie_embeddings: bool = True
    optimizer: str = "adamw"
    lr: float = 0.004
    muon_lr: float = 0.02
    weight_decay: float = 0.1
    schedule: str = "cosine"
    warmup: float = 0.05
    decay: float = 0.3
    min_lr_ratio: float = 0.1
    batch_sizes: tuple[int, ...] = (32,)
    compile: bool = False

    def __post_init__(self):
        _checks.one_of("optimizer", self.optimizer, ("adamw", "muon"))
        _checks.one_of("schedule", self.schedule, ("cosine", "wsd"))
        if not self.batch_sizes or not all(isinstance(b, int) and b > 0 for b in self.batch_sizes):
            raise ValueError(f"batch_sizes must be positive ints, got {self.batch_sizes!r}")
        for name in ("warmup", "decay", "min_lr_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.warmup + self.decay > 1.0 and self.schedule == "wsd":
            raise ValueError("warmup + decay must be <= 1 for the wsd schedule")
        if not (self.lr > 0 and self.muon_lr > 0 and self.weight_decay >= 0):
            raise ValueError("lr and muon_lr must be > 0 and weight_decay >= 0")
        self.config(65)  # the model fields are checked by GPTConfig

    def config(self, vocab_size: int) -> GPTConfig:
        """The model of this recipe for a vocabulary of ``vocab_size`` tokens."""
        return GPTConfig(
            vocab_size=vocab_size,
            max_len=self.block_size,
            n_layer=self.n_layer,
            n_head=self.n_head,
            d_model=self.d_model,
            bias=self.bias,
            positions=self.positions,
            norm=self.norm,
            mlp=self.mlp,
            qk_norm=self.qk_norm,
            tie_embeddings=self.tie_embeddings,
        )

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **changes)

    def hash(self) -> str:
        """A short hash of every field: results recorded for a recipe carry it, so that a
        changed recipe cannot be shown with stale numbers."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# The pretraining chapter's recipe (Part 3), its schedule stretched to the step budget.
BASELINE = Recipe()

# The winning recipe at 60 s (see the speedrun chapter): Muon, a higher learning rate and
# smaller batches gave the large gains; the architecture changes are those of the modern
# speedruns. Tuned with single-seed runs of 60 s (batch 8 against 16, Muon's learning
# rate 0.03 against 0.05, AdamW's 0.01 against 0.02).
RECIPE = BASELINE.replace(
    positions="rope",
    norm="rms",
    mlp="relu2",
    qk_norm=True,
    bias=False,
    optimizer="muon",
    lr=0.02,
    muon_lr=0.03,
    weight_decay=0.0,
    schedule="wsd",
    warmup=0.02,
    decay=0.4,
    min_lr_ratio=0.0,
    batch_sizes=(16,),
)

# One technique at a time, added to the baseline (the 60-s ablation of the chapter).
VARIANTS: dict[str, Recipe] = {
    "baseline": BASELINE,
    "+ RoPE": BASELINE.replace(positions="rope"),
    "+ RMSNorm": BASELINE.replace(norm="rms"),
    "+ ReLU²": BASELINE.replace(mlp="relu2"),
    "+ SwiGLU": BASELINE.replace(mlp="swiglu"),
    "+ QK-norm": BASELINE.replace(qk_norm=True),
    "+ no biases": BASELINE.replace(bias=False),
    "+ untied head": BASELINE.replace(tie_embeddings=False),
    "+ higher lr": BASELINE.replace(lr=0.01),
    "+ WSD schedule": BASELINE.replace(schedule="wsd", warmup=0.02, decay=0.4, min_lr_ratio=0.0),
    "+ batch 16": BASELINE.replace(batch_sizes=(16,)),
    "+ batch ramp": BASELINE.replace(batch_sizes=(8, 16, 32)),
    "+ Muon": BASELINE.replace(optimizer="muon", weight_decay=0.0),
    "recipe": RECIPE,
}


# ---------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=1)
def load_data() -> tuple[torch.Tensor, torch.Tensor, int]:
    """Tiny Shakespeare as character ids, split 90/10 as in the pretraining chapter:
    (train ids (N_train,), val ids (N_val,), vocabulary size)."""
    from .data import fetch, split_shakespeare
    from .tokenizers import CharTokenizer

    text = fetch("tinyshakespeare").read_text(encoding="utf-8")
    tokenizer = CharTokenizer.train(text)
    train, val = split_shakespeare(text, 0.9)
    ids = (torch.tensor(tokenizer.encode(t)) for t in (train, val))
    return *ids, tokenizer.vocab_size


def random_windows(
    ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``ids`` (N,): inputs and next-token targets (B, T)."""
    start = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)  # (B,)
    index = start[:, None] + torch.arange(block_size)  # (B, T)
    return ids[index], ids[index + 1]


@torch.no_grad()
def evaluate(
    model: GPT, ids: torch.Tensor, block_size: int, max_tokens: int | None = None
) -> float:
    """Mean cross-entropy (nats/token) over consecutive windows of ``ids``, so that every
    token after the first (of the first ``max_tokens``, if given) is predicted once."""
    if max_tokens is not None:
        ids = ids[: max_tokens + 1]
    n = (len(ids) - 1) // block_size
    if n < 1:
        raise ValueError(f"need more than block_size={block_size} tokens, got {len(ids)}")
    x = ids[: n * block_size].view(n, block_size)  # (n, T)
    y = ids[1 : n * block_size + 1].view(n, block_size)
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, n, 64):
        logits, _ = model(x[i : i + 64])  # (b, T, V)
        total += F.cross_entropy(logits.flatten(0, 1), y[i : i + 64].flatten(), reduction="sum")
    model.train(was_training)
    return float(total) / (n * block_size)


# ---------------------------------------------------------------------------- optimisation


def lr_multiplier(step: int, steps: int, recipe: Recipe) -> float:
    """The factor of the base learning rate at ``step`` of ``steps`` (0-based)."""
    warmup = round(recipe.warmup * steps)
    if step < warmup:
        return (step + 1) / warmup
    floor = recipe.min_lr_ratio
    if recipe.schedule == "cosine":
        progress = (step - warmup) / max(1, steps - warmup)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    decay_start = steps - round(recipe.decay * steps)  # wsd: stable, then linear to floor
    if step < decay_start:
        return 1.0
    progress = (step - decay_start + 1) / max(1, steps - decay_start)
    return 1.0 - (1.0 - floor) * min(1.0, progress)


def make_optimizers(model: GPT, recipe: Recipe) -> list[torch.optim.Optimizer]:
    """AdamW for everything, or Muon for the 2-D weights in the blocks plus AdamW for the
    rest (embeddings, output head, gains, biases): Muon orthogonalises matrix updates,
    which suits hidden layers but not lookups and the head (Jordan et al., 2024)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if recipe.optimizer == "muon":
        hidden = [p for n, p in named if n.startswith("blocks.") and p.dim() == 2]
    else:
        hidden = []
    ids = {id(p) for p in hidden}
    rest = [p for _, p in named if id(p) not in ids]
    groups = [
        {"params": [p for p in rest if p.dim() >= 2], "weight_decay": recipe.weight_decay},
        {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
    ]
    adamw = torch.optim.AdamW(groups, lr=recipe.lr, betas=(0.9, 0.99))
    if not hidden:
        return [adamw]
    muon = torch.optim.Muon(
        hidden, lr=recipe.muon_lr, weight_decay=recipe.weight_decay, adjust_lr_fn="original"
    )
    return [muon, adamw]


def build(recipe: Recipe, vocab_size: int):
    """The model of ``recipe``, the module to call in training (compiled if asked) and
    the optimisers."""
    model = GPT(recipe.config(vocab_size))
    optimizers = make_optimizers(model, recipe)
    step_fn = torch.compile(model) if recipe.compile else model
    return model, step_fn, optimizers


def train_step(step_fn, optimizers, x, y) -> float:
    """One optimiser step on inputs x and targets y (B, T); returns the loss."""
    _, loss = step_fn(x, y)
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in optimizers:
        opt.step()
    return loss.item()


# ---------------------------------------------------------------------------- timing


def cpu_seconds() -> float:
    """CPU time of this process and of its child processes (``torch.compile`` builds its
    C++ kernels in compiler runs and worker processes), in seconds; live children only
    where ``psutil`` is installed."""
    finished = os.times()  # children that ended and were waited for (a compiler run)
    total = time.process_time() + finished.children_user + finished.children_system
    try:
        import psutil
    except ImportError:
        return total
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # the child ended meanwhile
            pass
    return total


@contextlib.contextmanager
def _fresh_compile_cache(active: bool):
    """An empty ``torch.compile`` cache inside the block (when ``active``), so that the
    measured compile time is that of a first compilation, not of a cache hit."""
    if not active:
        yield
        return
    from torch._inductor.utils import fresh_cache

    with fresh_cache():
        yield


class _threads:
    """Set torch's intra-op threads inside a ``with`` block."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


def calibrate(
    recipe: Recipe,
    *,
    repeats: int = 5,
    steps: int = 3,
    threads: int | None = 1,
    fresh_cache: bool = True,
) -> dict:
    """CPU seconds per optimiser step of ``recipe`` for each of its batch sizes, as the
    minimum over ``repeats`` timed groups of ``steps`` steps (after two warm-up steps),
    with ``threads`` torch threads (the process's CPU time, summed over its threads; the
    first step's also counts child processes, see :func:`cpu_seconds`). Returns ``{"step_seconds": {batch: s}, "compile_seconds":
    s}``; the compile time (0 without ``compile``) is the first step's excess over the
    others, from an empty compile cache unless ``fresh_cache=False``."""
    _checks.positive_ints(repeats=repeats, steps=steps)
    train, _, vocab = load_data()
    g = torch.Generator().manual_seed(0)
    with _threads(threads), _fresh_compile_cache(recipe.compile and fresh_cache):
        torch.manual_seed(0)
        _, step_fn, optimizers = build(recipe, vocab)
        out, compile_seconds = {}, 0.0
        for b in dict.fromkeys(recipe.batch_sizes):  # distinct, in order
            x, y = random_windows(train, b, recipe.block_size, g)
            start = cpu_seconds()
            train_step(step_fn, optimizers, x, y)
            first = cpu_seconds() - start
            train_step(step_fn, optimizers, x, y)
            best = math.inf
            for _ in range(repeats):
                start = time.process_time()
                for _ in range(steps):
                    train_step(step_fn, optimizers, x, y)
                best = min(best, (time.process_time() - start) / steps)
            out[b] = best
            if recipe.compile:
                compile_seconds += max(0.0, first - best)
    return {"step_seconds": out, "compile_seconds": compile_seconds}


def step_budget(recipe: Recipe, seconds: float, timing: dict) -> list[int]:
    """Steps per batch-size phase that fit ``seconds`` of an idle machine: each batch size
    gets an equal share of the time left after compiling, divided by its step time."""
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds!r}")
    left = seconds - timing.get("compile_seconds", 0.0)
    share = max(0.0, left) / len(recipe.batch_sizes)
    # (the tiny epsilon keeps 4.0 / 0.1 = 39.999... from losing a step to rounding)
    return [math.floor(share / timing["step_seconds"][b] + 1e-9) for b in recipe.batch_sizes]


# ---------------------------------------------------------------------------- runs


def run(
    recipe: Recipe,
    seconds: float,
    seed: int,
    *,
    timing: dict | None = None,
    threads: int | None = 1,
    val_tokens: int | None = None,
    log_every: int = 10,
) -> dict:
    """Train ``recipe`` for ``seconds`` of an idle machine (calibrated now unless
    ``timing`` from :func:`calibrate` is given) with ``seed``; return a dict with the
    validation loss (``val_loss``, on the first ``val_tokens`` validation tokens or all of
    them), ``steps``, ``tokens``, ``timing``, ``wall_seconds`` (the real time taken) and
    ``curve`` (idle-machine seconds and training loss every ``log_every`` steps)."""
    from . import seed_everything

    timing = calibrate(recipe, threads=threads) if timing is None else timing
    phases = step_budget(recipe, seconds, timing)
    steps = sum(phases)
    if steps < 1:
        raise ValueError(f"{seconds} s is less than one step of this recipe ({timing})")
    train, val, vocab = load_data()
    start = time.perf_counter()
    with _threads(threads):
        seed_everything(seed)
        model, step_fn, optimizers = build(recipe, vocab)
        bases = [[group["lr"] for group in opt.param_groups] for opt in optimizers]
        g = torch.Generator().manual_seed(seed)
        step, clock, tokens, curve = 0, timing.get("compile_seconds", 0.0), 0, []
        for b, n in zip(recipe.batch_sizes, phases, strict=True):
            for _ in range(n):
                factor = lr_multiplier(step, steps, recipe)
                for opt, base in zip(optimizers, bases, strict=True):
                    for group, lr in zip(opt.param_groups, base, strict=True):
                        group["lr"] = lr * factor
                loss = train_step(
                    step_fn, optimizers, *random_windows(train, b, recipe.block_size, g)
                )
                if not math.isfinite(loss):
                    raise FloatingPointError(f"training diverged at step {step}: loss {loss}")
                step, clock, tokens = (
                    step + 1,
                    clock + timing["step_seconds"][b],
                    tokens + b * recipe.block_size,
                )
                if step % log_every == 0 or step == steps:
                    curve.append((clock, step, loss))
        val_loss = evaluate(model, val, recipe.block_size, val_tokens)
    return {
        "val_loss": val_loss,
        "steps": steps,
        "tokens": tokens,
        "seconds": seconds,
        "seed": seed,
        "timing": timing,
        "wall_seconds": time.perf_counter() - start,
        "curve": curve,
    }


# ---------------------------------------------------------------------------- record


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(threads: int | None) -> dict:
    """Where and with what a record was made."""
    return {
        "fmbook_commit": _git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "threads": threads,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def record(
    variants: dict[str, Recipe],
    seconds: float,
    seeds: list[int],
    *,
    threads: int | None = 1,
    val_tokens: int | None = None,
    repeats: int = 5,
    log=print,
) -> dict:
    """Calibrate and run each variant for ``seconds`` with every seed; a JSON-able record
    with the provenance, each recipe and its hash, step times, steps and val losses."""
    out = {
        "provenance": provenance(threads),
        "seconds": seconds,
        "val_tokens": val_tokens,
        "variants": {},
    }
    for name, recipe in variants.items():
        timing = calibrate(recipe, threads=threads, repeats=repeats)
        runs = [
            run(recipe, seconds, s, timing=timing, threads=threads, val_tokens=val_tokens)
            for s in seeds
        ]
        out["variants"][name] = {
            "recipe": dataclasses.asdict(recipe),
            "hash": recipe.hash(),
            "step_seconds": {str(b): t for b, t in timing["step_seconds"].items()},
            "compile_seconds": timing["compile_seconds"],
            "steps": runs[0]["steps"],
            "seeds": list(seeds),
            "val_loss": [r["val_loss"] for r in runs],
            "wall_seconds": [r["wall_seconds"] for r in runs],
            "curve": [r["curve"] for r in runs],
        }
        log(f"{name}: {runs[0]['steps']} steps, val loss {[r['val_loss'] for r in runs]}")
    return out


def main(argv: list[str] | None = None) -> dict:
    """Command line: run the baseline and :data:`RECIPE` (or ``--variants``) for
    ``--seconds`` of an idle machine with each of ``--seeds`` and write ``--out`` (JSON)."""
    parser = argparse.ArgumentParser(prog="python -m fmbook.speedrun", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["baseline", "recipe"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--val-tokens", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    result = record(
        {v: VARIANTS[v] for v in args.variants},
        args.seconds,
        args.seeds,
        threads=args.threads,
        val_tokens=args.val_tokens,
        repeats=args.repeats,
    )
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
