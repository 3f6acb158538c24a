"""Benchmark: training byte-level BPE to a vocabulary of 1,000 on Tiny Shakespeare.

Three trainers learn the same kind of tokenizer (same chunks, same vocabulary size):

* ``fmbook``: :meth:`fmbook.tokenizers.BPETokenizer.train`, pure Python, incremental pair counts;
* ``hf``: the Rust trainer of Hugging Face ``tokenizers`` (:class:`HFBPETokenizer`), which
  uses every CPU core;
* ``naive``: :func:`fmbook.tokenizers.naive_train`, the textbook loop that recounts every
  pair after every merge.

The naive trainer would take minutes on the whole text, so all three are also timed on the
same prefix (``--prefix-chars``), where the merges of ``fmbook`` and ``naive`` are checked
to be identical. The naive time on the whole text is an *estimate*, scaled linearly from
the prefix (each of its merges is one pass over the corpus, so its cost grows linearly
with the corpus for a fixed number of merges); it is marked as such.

Run from the repository root (the data come from ``$FMBOOK_DATA_MIRROR`` or the cache)::

    nice -n 19 python -m benchmarks.bpe            # or: python benchmarks/bpe.py

It prints a table and writes ``benchmarks/results/bpe.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_results  # noqa: E402
from fmbook.data import shakespeare  # noqa: E402
from fmbook.tokenizers import BPETokenizer, HFBPETokenizer, naive_train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bpe.json"
TRAINERS = {"fmbook": BPETokenizer.train, "hf": HFBPETokenizer.train, "naive": naive_train}


def timed(fn, *args):
    """``(result, wall seconds, CPU seconds of this process)`` of ``fn(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def gpt2_byte_chars() -> dict[str, int]:
    """GPT-2's printable character for each byte (the ByteLevel alphabet), inverted."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


def hf_merged_tokens(tok: HFBPETokenizer) -> list[bytes]:
    """The bytes of the token each HF merge creates, in the order learned."""
    to_byte = gpt2_byte_chars()
    merges = json.loads(tok.hf.to_str())["model"]["merges"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]
    return [bytes(to_byte[c] for c in a + b) for a, b in pairs]


def run_one(name: str, text: str, vocab_size: int, pattern: str | None, encode: bool) -> dict:
    """Train one trainer on ``text``; optionally time encoding ``text`` with a fresh copy."""
    tok, wall, cpu = timed(TRAINERS[name], text, vocab_size, pattern)
    row = {"trainer": name, "pattern": pattern, "chars": len(text), "train_s": wall}
    row["train_cpu_s"] = cpu
    if encode:
        fresh = type(tok).from_dict(tok.to_dict())  # no cache warmed up by training
        ids, enc_wall, _ = timed(fresh.encode, text)
        assert fresh.decode(ids) == text
        row.update(encode_s=enc_wall, tokens_per_byte=len(ids) / len(text.encode()))
    return row | {"_tok": tok}


def bench(text: str, vocab_size: int, prefix_chars: int, patterns: list) -> dict:
    rows, checks = [], {}
    prefix = text[:prefix_chars]
    for pattern in patterns:
        label = pattern or "lines"
        print(f"[{label}] training on the whole text ({len(text):,} chars) ...", flush=True)
        full = {n: run_one(n, text, vocab_size, pattern, True) for n in ("fmbook", "hf")}
        print(f"[{label}] training on the first {len(prefix):,} chars ...", flush=True)
        part = {n: run_one(n, prefix, vocab_size, pattern, False) for n in TRAINERS}
        estimate = part["naive"]["train_s"] * len(text) / len(prefix)
        full["naive"] = {"trainer": "naive", "pattern": pattern, "chars": len(text)}
        full["naive"] |= {"train_s": estimate, "estimate": True}
        ours, theirs = full["fmbook"]["_tok"], full["hf"]["_tok"]
        ours_tokens = [ours.vocab[i] for i in range(256, ours.vocab_size)]
        hf_tokens = hf_merged_tokens(theirs)
        checks[label] = {
            "fmbook_equals_naive_on_prefix": part["fmbook"]["_tok"].merges
            == part["naive"]["_tok"].merges,
            "merges": len(ours_tokens),
            "hf_same_token_at_same_rank": sum(
                a == b for a, b in zip(ours_tokens, hf_tokens, strict=False)
            ),
            "hf_same_token_set": len(set(ours_tokens) & set(hf_tokens)),
        }
        for group in (full, part):
            base = group["fmbook"]["train_s"]
            for row in group.values():
                row.pop("_tok", None)
                rows.append(row | {"vs_fmbook": row["train_s"] / base})
    return {"rows": rows, "checks": checks}


def print_table(rows: list[dict]) -> None:
    head = f"{'chunks':7} {'trainer':7} {'chars':>9} {'train s':>9} {'x fmbook':>9} "
    print(head + f"{'encode s':>9} {'tok/byte':>9}")
    for r in rows:
        secs = f"~{r['train_s']:.0f}" if r.get("estimate") else f"{r['train_s']:.2f}"
        enc = f"{r['encode_s']:.2f}" if "encode_s" in r else "-"
        tpb = f"{r['tokens_per_byte']:.3f}" if "tokens_per_byte" in r else "-"
        print(
            f"{r['pattern'] or 'lines':7} {r['trainer']:7} {r['chars']:9,} {secs:>9} "
            f"{r['vs_fmbook']:9.1f} {enc:>9} {tpb:>9}"
        )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab-size", type=int, default=1000)
    parser.add_argument("--prefix-chars", type=int, default=100_000)
    parser.add_argument("--patterns", nargs="+", default=["lines", "gpt2"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.prefix_chars < 1000:
        parser.error(f"--prefix-chars must be at least 1000, got {args.prefix_chars}")
    patterns = [None if p == "lines" else p for p in args.patterns]

    import tokenizers

    text = shakespeare.load_text()
    result = bench(text, args.vocab_size, args.prefix_chars, patterns)
    result["setup"] = {
        "vocab_size": args.vocab_size,
        "text": "Tiny Shakespeare (whole text)",
        "chars": len(text),
        "bytes": len(text.encode()),
        "prefix_chars": args.prefix_chars,
        "naive_on_whole_text": "estimate: naive time on the prefix x (whole chars / prefix chars)",
        **machine(),
        "tokenizers": tokenizers.__version__,
    }
    print()
    print_table(result["rows"])
    print("~: estimated, not measured (naive, scaled linearly from the prefix)")
    for label, check in result["checks"].items():
        print(
            f"[{label}] fmbook == naive merges on the prefix: "
            f"{check['fmbook_equals_naive_on_prefix']}; "
            f"HF learns the same token at the same rank for {check['hf_same_token_at_same_rank']}"
            f" of {check['merges']} merges, the same set of tokens for "
            f"{check['hf_same_token_set']}"
        )
    write_results(result, args.out)
    return result


if __name__ == "__main__":
    main()
