"""Benchmark: fmbook's GPT against Hugging Face's GPT-2 at the same size, on this machine.

1. **Training throughput** (tokens per second of forward + backward + AdamW step) of
   :class:`fmbook.models.GPT` and ``transformers.GPT2LMHeadModel`` with the same
   architecture (exact GELU, no dropout, tied head, SDPA attention in both), the same
   optimiser (AdamW) and the same random batches. The two are measured side by side in one
   process, in interleaved repetitions (fmbook, HF, fmbook, HF, ...), so that a change in
   machine load hits both; the medians and their ratio are reported.
2. **KV cache in generation**: fmbook's ``GPT.generate`` with ``use_cache=True`` against
   ``use_cache=False`` for 256 new tokens (greedy, so the two must produce the same
   tokens), and, side by side, Hugging Face's ``generate`` with and without its cache, at
   the same size and with the same weights.

Run from the repository root (needs ``transformers``, listed in requirements.txt)::

    nice -n 19 python -m benchmarks.gpt            # or: python benchmarks/gpt.py

It prints a summary and writes ``benchmarks/results/gpt.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_results  # noqa: E402
from fmbook.models import GPT, GPTConfig  # noqa: E402
from fmbook.models.hf_gpt2 import to_hf_gpt2  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "gpt.json"


def train_step_fn(model, optimizer, is_hf: bool):
    """One forward + backward + AdamW step on a batch ``(x, y)``; returns the loss."""

    def step(x, y):
        if is_hf:
            logits = model(input_ids=x).logits
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        else:
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def bench_training(cfg: GPTConfig, batch: int, steps: int, reps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    gpt = GPT(cfg)
    models = {"fmbook": gpt, "hf": to_hf_gpt2(gpt, "sdpa")}  # same weights
    steps_of = {}
    for name, model in models.items():
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, fused=True)
        steps_of[name] = train_step_fn(model, optimizer, is_hf=name == "hf")
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, cfg.vocab_size, (steps, batch, cfg.max_len + 1), generator=g)
    for step in steps_of.values():
        for i in range(warmup):
            step(data[i, :, :-1], data[i, :, 1:])
    tokens = steps * batch * cfg.max_len
    rates = {name: [] for name in models}
    for rep in range(reps):
        order = list(models) if rep % 2 == 0 else list(models)[::-1]  # alternate who goes first
        for name in order:
            start = time.perf_counter()
            for i in range(steps):
                steps_of[name](data[i, :, :-1], data[i, :, 1:])
            rates[name].append(tokens / (time.perf_counter() - start))
        print(
            f"  rep {rep + 1}/{reps}: " + ", ".join(f"{n} {rates[n][-1]:,.0f} tok/s" for n in rates)
        )
    medians = {name: statistics.median(r) for name, r in rates.items()}
    return {
        "params": {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()},
        "tokens_per_rep": tokens,
        "tokens_per_s": rates,
        "median_tokens_per_s": medians,
        "fmbook_over_hf": medians["fmbook"] / medians["hf"],
    }


@torch.no_grad()
def bench_generation(cfg: GPTConfig, prompt_len: int, new_tokens: int, reps: int) -> dict:
    torch.manual_seed(0)
    ours = GPT(cfg).eval()
    hf = to_hf_gpt2(ours, "sdpa").eval()  # same weights
    prompt = torch.randint(
        0, cfg.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(1)
    )

    def hf_generate(use_cache: bool):
        return hf.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            use_cache=use_cache,
            pad_token_id=0,
        )

    runs = {
        "hf_use_cache_true": lambda: hf_generate(True),
        "hf_use_cache_false": lambda: hf_generate(False),
        "fmbook_use_cache_true": lambda: ours.generate(prompt, new_tokens, top_k=1),
        "fmbook_use_cache_false": lambda: ours.generate(
            prompt, new_tokens, top_k=1, use_cache=False
        ),
    }
    outputs = {name: run() for name, run in runs.items()}  # warm-up, and the outputs
    assert all(out.shape == (1, prompt_len + new_tokens) for out in outputs.values())
    same = torch.equal(outputs["hf_use_cache_true"], outputs["hf_use_cache_false"])
    ours_same = torch.equal(outputs["fmbook_use_cache_true"], outputs["fmbook_use_cache_false"])
    seconds = {name: [] for name in runs}
    for rep in range(reps):
        names = list(runs) if rep % 2 == 0 else list(runs)[::-1]
        for name in names:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
        print(
            f"  rep {rep + 1}/{reps}: " + ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in seconds)
        )
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    return {
        "seconds": seconds,
        "median_seconds": medians,
        "median_new_tokens_per_s": {name: new_tokens / s for name, s in medians.items()},
        "hf_cache_speedup": medians["hf_use_cache_false"] / medians["hf_use_cache_true"],
        "hf_cached_equals_uncached_tokens": same,
        "fmbook_cache_speedup": medians["fmbook_use_cache_false"]
        / medians["fmbook_use_cache_true"],
        "fmbook_cached_equals_uncached_tokens": ours_same,
        "fmbook_cached_over_hf_cached": medians["hf_use_cache_true"]
        / medians["fmbook_use_cache_true"],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="training steps per repetition")
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--gen-reps", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for name in ("steps", "reps", "gen_reps", "new_tokens", "prompt_len", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup > args.steps or args.warmup < 0:
        parser.error(f"--warmup must be in [0, --steps={args.steps}], got {args.warmup}")
    torch.set_num_threads(args.threads)
    import transformers

    size = dict(vocab_size=65, n_layer=4, n_head=4, d_model=128, dropout=0.0, bias=True)
    train_cfg = GPTConfig(max_len=128, **size)
    batch = 32
    print(f"training: {size}, context 128, batch {batch}, {args.threads} threads")
    training = bench_training(train_cfg, batch, args.steps, args.reps, args.warmup)
    # generation needs positions for the prompt and every new token; two sizes: the
    # chapter's model, and nanoGPT's Shakespeare model (6 layers, 384 wide), where compute
    # rather than per-token Python overhead dominates
    context = args.prompt_len + args.new_tokens
    sizes = {
        "chapter_4x128": size,
        "nanogpt_6x384": dict(size, n_layer=6, n_head=6, d_model=384),
    }
    generation = {}
    for name, dims in sizes.items():
        print(
            f"generation ({name}): {args.new_tokens} new tokens after {args.prompt_len}, "
            "batch 1, greedy"
        )
        generation[name] = bench_generation(
            GPTConfig(max_len=context, **dims), args.prompt_len, args.new_tokens, args.gen_reps
        )
    result = {
        "training": training,
        "generation": generation,
        "setup": {
            "model": size,
            "train_context": 128,
            "train_batch": batch,
            "optimizer": "AdamW(lr=1e-3, weight_decay=0.1, fused=True), all parameters",
            "attention": "SDPA in both (HF attn_implementation='sdpa')",
            "steps_per_rep": args.steps,
            "reps": args.reps,
            "warmup_steps": args.warmup,
            "gen_sizes": sizes,
            "gen_context": context,
            "gen_prompt_len": args.prompt_len,
            "gen_new_tokens": args.new_tokens,
            "gen_reps": args.gen_reps,
            "gen_batch": 1,
            "device": "cpu",
            "threads": args.threads,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            **machine(),
        },
    }
    report(result)
    write_results(result, args.out)
    return result


def report(result: dict) -> None:
    tr, gen = result["training"], result["generation"]
    print()
    print("training throughput (median tokens/s, forward + backward + AdamW):")
    for name, rate in tr["median_tokens_per_s"].items():
        print(f"  {name:7} {rate:10,.0f}   ({tr['params'][name]:,} parameters)")
    print(f"  fmbook / hf = {tr['fmbook_over_hf']:.2f}")
    for size, g in gen.items():
        print(f"generation of {result['setup']['gen_new_tokens']} tokens, {size} (median s):")
        for name, secs in g["median_seconds"].items():
            rate = g["median_new_tokens_per_s"][name]
            print(f"  {name:22} {secs:6.2f} s  {rate:8,.0f} tok/s")
        for who in ("hf", "fmbook"):
            print(
                f"  {who} KV-cache speed-up: {g[who + '_cache_speedup']:.2f}x; cached == "
                f"uncached tokens: {g[who + '_cached_equals_uncached_tokens']}"
            )


if __name__ == "__main__":
    main()
