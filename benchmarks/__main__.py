"""Run every benchmark, one after another: ``python -m benchmarks`` (or ``make benchmarks``).

Each writes its numbers to ``benchmarks/results/<name>.json``; the Performance page of the
book shows the latest committed numbers (from ``benchmarks/README.md``).
"""

from . import bpe, gpt, word2vec

BENCHMARKS = {"bpe": bpe.main, "gpt": gpt.main, "word2vec": word2vec.main}

if __name__ == "__main__":
    for name, run in BENCHMARKS.items():
        print(f"=== benchmark: {name} ===", flush=True)
        run([])
