"""What the grader calls. If you organise your code differently, change only these."""

from __future__ import annotations

from . import bpe


def run_merge(ids, pair, new_id):
    return bpe.merge(ids, pair, new_id)


def run_train(text: str, vocab_size: int):
    return [tuple(pair) for pair in bpe.train(text, vocab_size)]


def run_encode(text: str, merges):
    return bpe.encode(text, merges)


def run_decode(ids, merges):
    return bpe.decode(ids, merges)
