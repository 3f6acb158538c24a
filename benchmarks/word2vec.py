"""Benchmark: fmbook's word2vec (skip-gram, negative sampling) against gensim on Tiny Shakespeare.

Both trainers see the same corpus and the same settings:

* **corpus**: Tiny Shakespeare, lower-cased and split into words with the regex
  ``[a-z]+(?:'[a-z]+)*`` (runs of ASCII letters, with inner apostrophes as in ``o'er``;
  digits and punctuation are dropped). The words form one stream, cut into "sentences" of
  at most 10,000 words for gensim (its limit); windows do not cross those cuts in gensim,
  which loses a negligible number of pairs.
* **vocabulary**: the words seen at least ``--min-count`` times; the others are removed
  from the stream before windowing (what gensim does). The script checks that gensim
  builds the same vocabulary.
* **model**: skip-gram, negative sampling (``sg=1, hs=0``), the same dimension, window
  (dynamic: each centre draws its reach from ``1..window``), number of negatives (noise
  ``count ** 0.75``), epochs and subsampling threshold ``t``.

The differences that remain are the trainers' own: gensim runs SGD with a learning rate
decaying linearly from 0.025, subsamples with the C code's ``(sqrt(f/t) + 1) t/f``, and
processes pairs one by one in compiled code. fmbook trains :class:`fmbook.tasks.SkipGram`
through ``lightning`` (by default dense ``Adam`` with a constant learning rate of 1e-2 on
mini-batches of 16,384 pairs; ``--optimizer sparse_adam --batch-size 1024 --lr 5e-3`` gives
the settings of the book's chapter and of the earlier benchmark), and its
:class:`fmbook.data.skipgram.SkipGramDataModule` subsamples with ``min(1, sqrt(t/f))``. Both
subsample and draw the dynamic windows afresh in every epoch.

**Timing.** Each trainer is timed from the raw word stream to trained vectors, back to back
in the same process, in wall seconds and in CPU seconds of the process (all threads);
the ratios fmbook / gensim of both are reported. On a shared, loaded machine the CPU
ratio is the steadier one (wall time depends on what else runs). fmbook's time is broken
down by Lightning's ``SimpleProfiler`` (:func:`breakdown`): fetching batches, forward,
backward, optimiser step, and the rest (Lightning's loop, hooks, logging).

Quality is compared on the input vectors of both (gensim's ``wv``, fmbook's ``V``), with
cosine similarity: the top-5 neighbours of a few frequent words, and a small list of word
pairs that should be similar (``SIMILAR``) or should not (``DISSIMILAR``). For each model,
the AUC is the fraction of (similar, dissimilar) pairs where the similar pair has the
higher cosine (ties count one half); the Spearman correlation compares the two models'
cosines over all pairs.

Run from the repository root (the data come from ``$FMBOOK_DATA_MIRROR`` or the cache)::

    nice -n 19 python -m benchmarks.word2vec       # needs gensim: benchmarks/requirements.txt

It prints the comparison and writes ``benchmarks/results/word2vec.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.common import machine, write_results  # noqa: E402
from fmbook.data import shakespeare  # noqa: E402
from fmbook.data.skipgram import SkipGramDataModule  # noqa: E402
from fmbook.models.word2vec import most_similar  # noqa: E402
from fmbook.tasks import SkipGram, make_trainer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "word2vec.json"
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
SENTENCE = 10_000  # gensim ignores words past the 10,000th of a sentence
QUERIES = ("king", "queen", "lord", "love", "death", "good", "night", "man", "thou", "sweet")
SIMILAR = (
    ("king", "queen"), ("thou", "thee"), ("thy", "thine"), ("night", "day"),
    ("lord", "lady"), ("father", "mother"), ("son", "daughter"), ("brother", "sister"),
    ("husband", "wife"), ("man", "woman"), ("heaven", "earth"), ("sun", "moon"),
    ("say", "speak"), ("speak", "tell"), ("hath", "doth"), ("two", "three"),
    ("duke", "prince"), ("gentle", "noble"), ("eyes", "face"), ("tears", "weep"),
)  # fmt: skip
DISSIMILAR = (
    ("king", "fish"), ("queen", "horse"), ("thou", "gold"), ("thee", "water"),
    ("night", "sword"), ("day", "dog"), ("lord", "stone"), ("lady", "war"),
    ("father", "silver"), ("love", "foot"), ("death", "book"), ("good", "window"),
    ("sweet", "soldier"), ("man", "tree"), ("heart", "leg"), ("say", "silver"),
    ("speak", "fish"), ("hath", "sun"), ("eyes", "war"), ("brother", "gold"),
)  # fmt: skip


def corpus(text: str, min_count: int) -> tuple[list[str], list[str]]:
    """``(words, vocab)``: the in-vocabulary words of ``text`` in order, and the vocabulary
    (words seen ``min_count`` times or more) by decreasing count, ties alphabetical."""
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
    words = WORD.findall(text.lower())
    counts = Counter(words)
    vocab = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if len(vocab) < 2:
        raise ValueError(f"min_count={min_count} leaves fewer than 2 words in the vocabulary")
    keep = set(vocab)
    return [w for w in words if w in keep], vocab


def train_gensim(words: list[str], args) -> tuple[torch.Tensor, list[str], dict]:
    """gensim's vectors (rows in gensim's order), its vocabulary, and its times (wall and
    CPU seconds, all threads, of building the vocabulary and training)."""
    from gensim.models import Word2Vec

    sentences = [words[i : i + SENTENCE] for i in range(0, len(words), SENTENCE)]
    start, cpu = time.perf_counter(), time.process_time()
    model = Word2Vec(
        sentences,
        vector_size=args.dim,
        window=args.window,
        min_count=1,  # the corpus holds only in-vocabulary words already
        sg=1,
        hs=0,
        negative=args.negatives,
        ns_exponent=0.75,
        sample=args.sample,
        epochs=args.epochs,
        workers=args.workers,
        seed=args.seed,
    )
    times = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}
    return torch.from_numpy(model.wv.vectors.copy()), list(model.wv.index_to_key), times


def train_fmbook(words: list[str], vocab: list[str], args) -> tuple[torch.Tensor, dict, dict]:
    """fmbook's input vectors (rows in ``vocab`` order), its times (wall and CPU seconds of
    building the pairs and training), and a few facts about the run, with the breakdown of
    the time by Lightning's ``SimpleProfiler``."""
    from lightning.pytorch.profilers import SimpleProfiler

    index = {w: i for i, w in enumerate(vocab)}
    ids = torch.tensor([index[w] for w in words])
    torch.manual_seed(args.seed)
    profiler = SimpleProfiler()
    profiler.summary = lambda: ""  # keep the numbers, print no table
    start, cpu = time.perf_counter(), time.process_time()
    data = SkipGramDataModule(
        ids,
        len(vocab),
        window=args.window,
        negatives=args.negatives,
        batch_size=args.batch_size,
        dynamic_window=True,
        subsample_t=args.sample,
        seed=args.seed,
    )
    task = SkipGram(len(vocab), args.dim, lr=args.lr, optimizer=args.optimizer)
    never = 2**62  # stop after max_epochs (pairs are redrawn, so the steps per epoch vary)
    trainer = make_trainer(
        max_steps=never, val_every=never, max_epochs=args.epochs, accelerator="cpu",
        profiler=profiler,
    )  # fmt: skip
    trainer.fit(task, datamodule=data)
    times = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}
    facts = {
        "pairs_last_epoch": len(data.train_pairs),
        "steps": trainer.global_step,
        "final_train_loss": float(trainer.callback_metrics["train_loss"]),
        "profile_s": breakdown(profiler, times["wall_s"]),
    }
    return task.word_vectors(), times, facts


def breakdown(profiler, total: float) -> dict:
    """Seconds per part of a training step, from Lightning's ``SimpleProfiler``: fetching
    batches (pairs, slicing, negatives), forward (``training_step``), backward, the optimiser
    step (``SparseAdam``), and the rest (Lightning's loop, hooks, logging, setup)."""
    d = {k: sum(v) for k, v in profiler.recorded_durations.items()}
    pick = lambda part: sum(v for k, v in d.items() if part in k)  # noqa: E731
    parts = {
        "batches (pairs, slicing, negatives)": pick("train_dataloader_next"),
        "forward (training_step)": pick("Strategy]SingleDeviceStrategy.training_step"),
        "backward": pick("Strategy]SingleDeviceStrategy.backward"),
    }
    optimizer = pick("optimizer_step") - parts["forward (training_step)"] - parts["backward"]
    parts["optimiser step"] = optimizer  # optimizer_step wraps the closure
    parts["Lightning loop, hooks, logging, setup"] = total - sum(parts.values())
    return parts


def cosine(vectors: torch.Tensor, a: int, b: int) -> float:
    return float(torch.nn.functional.cosine_similarity(vectors[a], vectors[b], dim=0))


def auc(similar: list[float], dissimilar: list[float]) -> float:
    """The fraction of (similar, dissimilar) pairs ranked correctly, ties counting 1/2."""
    wins = sum((s > d) + 0.5 * (s == d) for s in similar for d in dissimilar)
    return wins / (len(similar) * len(dissimilar))


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr  # installed with gensim

    return float(spearmanr(x, y).statistic)


def neighbours(vectors: torch.Tensor, vocab: list[str], word: str, k: int = 5) -> list[list]:
    """The ``k`` nearest words of ``word`` by cosine, as ``[word, cosine]`` pairs."""
    idx, sims = most_similar(vectors, vocab.index(word), k)
    return [[vocab[i], round(float(s), 3)] for i, s in zip(idx.tolist(), sims, strict=True)]


def evaluate(models: dict[str, torch.Tensor], vocab: list[str]) -> dict:
    """Neighbours of ``QUERIES``, cosines of the pairs, AUC per model, Spearman between."""
    missing = sorted({w for p in SIMILAR + DISSIMILAR for w in p} - set(vocab))
    missing += [w for w in QUERIES if w not in vocab]
    if missing:
        raise ValueError(f"these evaluation words are not in the vocabulary: {missing}")
    index = {w: i for i, w in enumerate(vocab)}
    pairs = [(a, b, True) for a, b in SIMILAR] + [(a, b, False) for a, b in DISSIMILAR]
    rows = [{"a": a, "b": b, "similar": s} for a, b, s in pairs]
    summary = {}
    for name, vectors in models.items():
        for row in rows:
            row[name] = cosine(vectors, index[row["a"]], index[row["b"]])
        sims = [r[name] for r in rows if r["similar"]]
        dissims = [r[name] for r in rows if not r["similar"]]
        summary[name] = {
            "auc": auc(sims, dissims),
            "mean_cos_similar": sum(sims) / len(sims),
            "mean_cos_dissimilar": sum(dissims) / len(dissims),
        }
    names = list(models)
    rho = spearman([r[names[0]] for r in rows], [r[names[1]] for r in rows])
    near = {w: {n: neighbours(v, vocab, w) for n, v in models.items()} for w in QUERIES}
    return {"pairs": rows, "scores": summary, "spearman_between_models": rho, "neighbours": near}


def report(result: dict) -> None:
    t = result["timing"]
    print(f"\nwall s: fmbook {t['fmbook_s']:.1f}, gensim {t['gensim_s']:.1f}", end="")
    print(f", fmbook / gensim = {t['fmbook_over_gensim']:.1f}")
    print(f"CPU s:  fmbook {t['fmbook_cpu_s']:.1f}, gensim {t['gensim_cpu_s']:.1f}", end="")
    print(f", fmbook / gensim = {t['fmbook_over_gensim_cpu']:.1f}")
    for part, seconds in t["fmbook"]["profile_s"].items():
        print(f"  fmbook {part}: {seconds:.1f} s wall")
    q = result["quality"]
    for name, s in q["scores"].items():
        print(
            f"{name:7} AUC {s['auc']:.3f}  mean cos similar {s['mean_cos_similar']:.3f}, "
            f"dissimilar {s['mean_cos_dissimilar']:.3f}"
        )
    print(f"Spearman of the two models' cosines over all pairs: {q['spearman_between_models']:.3f}")
    for word, near in q["neighbours"].items():
        for name, rows in near.items():
            print(f"{word:7} {name:7} " + ", ".join(f"{w} {s:.2f}" for w, s in rows))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold t")
    parser.add_argument("--batch-size", type=int, default=16384, help="fmbook only")
    parser.add_argument("--lr", type=float, default=1e-2, help="fmbook's Adam only")
    parser.add_argument("--optimizer", choices=("adam", "sparse_adam"), default="adam")
    parser.add_argument("--workers", type=int, default=1, help="gensim worker threads")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for fmbook")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for name in ("dim", "window", "negatives", "epochs", "batch_size", "workers", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 < args.sample < 1:
        parser.error(f"--sample must lie in (0, 1), got {args.sample}")

    import gensim
    import lightning

    torch.set_num_threads(args.threads)
    words, vocab = corpus(shakespeare.load_text(), args.min_count)
    print(f"{len(words):,} words, vocabulary {len(vocab):,}; training gensim ...", flush=True)
    g_vectors, g_vocab, g_times = train_gensim(words, args)
    if set(g_vocab) != set(vocab):
        raise RuntimeError("gensim built a different vocabulary from the benchmark's")
    g_vectors = g_vectors[torch.tensor([g_vocab.index(w) for w in vocab])]  # our order
    print(f"gensim: {g_times}; training fmbook ...", flush=True)
    f_vectors, f_times, facts = train_fmbook(words, vocab, args)
    print(f"fmbook: {f_times}", flush=True)
    result = {
        "timing": {
            "fmbook_s": f_times["wall_s"],
            "gensim_s": g_times["wall_s"],
            "fmbook_over_gensim": f_times["wall_s"] / g_times["wall_s"],
            "fmbook_cpu_s": f_times["cpu_s"],
            "gensim_cpu_s": g_times["cpu_s"],
            "fmbook_over_gensim_cpu": f_times["cpu_s"] / g_times["cpu_s"],
            "load_average_1min_at_end": os.getloadavg()[0],
            "fmbook": facts,
        },
        "quality": evaluate({"fmbook": f_vectors, "gensim": g_vectors}, vocab),
        "setup": {
            "corpus": "Tiny Shakespeare, lower-cased, words = regex " + WORD.pattern,
            "words": len(words),
            "vocab": len(vocab),
            **{k: v for k, v in vars(args).items() if k != "out"},
            "fmbook_trainer": "fmbook.tasks.SkipGram + fmbook.data.skipgram.SkipGramDataModule "
            f"via lightning, {args.optimizer}, constant lr, pairs redrawn every epoch",
            "gensim_trainer": "gensim Word2Vec(sg=1, hs=0), SGD with alpha 0.025 -> 0.0001",
            **machine(),
            "torch": torch.__version__,
            "lightning": lightning.__version__,
            "gensim": gensim.__version__,
        },
    }
    report(result)
    write_results(result, args.out)
    return result


if __name__ == "__main__":
    main()
