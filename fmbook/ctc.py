"""Decoding CTC outputs (Graves et al., 2006): greedy and prefix beam search.

A CTC model emits, at each of ``T`` frames, log-probabilities over the labels plus a
*blank*. An alignment (one symbol per frame) maps to a labelling by merging repeats and
then dropping blanks: ``a a - b b - b`` -> ``a b b``. The probability of a labelling is the
sum over all its alignments.

* :func:`greedy_decode` takes the best symbol per frame and collapses: the labelling of
  the single most probable *alignment*, which need not be the most probable *labelling*.
* :func:`prefix_beam_search` keeps the ``beam`` most probable labelling prefixes, each with
  two probabilities, of its alignments so far ending in a blank and not ending in one, so
  that alignments of the same prefix are summed, not compared.
* :func:`labelling_log_prob` sums over all alignments by brute force (tiny inputs only):
  the reference the tests compare both decoders with.
"""

from __future__ import annotations

import itertools
import math

import torch


def _check(log_probs: torch.Tensor, blank: int) -> None:
    if not torch.is_tensor(log_probs) or log_probs.dim() != 2 or log_probs.shape[0] < 1:
        raise ValueError(f"log_probs must be a (T, V) tensor with T >= 1, got {log_probs!r:.60}")
    if not 0 <= blank < log_probs.shape[1]:
        raise ValueError(f"blank must be in [0, {log_probs.shape[1]}), got {blank}")


def collapse(path, blank: int = 0) -> list[int]:
    """The labelling of an alignment: merge repeated symbols, then drop blanks."""
    out, previous = [], None
    for symbol in path:
        if symbol != previous and symbol != blank:
            out.append(symbol)
        previous = symbol
    return out


def greedy_decode(log_probs: torch.Tensor, blank: int = 0) -> list[int]:
    """Best symbol per frame of ``log_probs`` ``(T, V)``, collapsed."""
    _check(log_probs, blank)
    return collapse(log_probs.argmax(-1).tolist(), blank)


def _logsumexp(*values: float) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _accumulator(grown: dict):
    """``add(prefix, blank_lp, label_lp)``: sum log-probabilities into ``grown[prefix]``."""

    def add(prefix, blank_lp=-math.inf, label_lp=-math.inf):
        b, nb = grown.get(prefix, (-math.inf, -math.inf))
        grown[prefix] = [_logsumexp(b, blank_lp), _logsumexp(nb, label_lp)]

    return add


def prefix_beam_search(log_probs: torch.Tensor, beam: int = 8, blank: int = 0) -> list[int]:
    """The most probable labelling found by CTC prefix beam search over ``log_probs`` (T, V)."""
    _check(log_probs, blank)
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be an int >= 1, got {beam!r}")
    lp = log_probs.double().tolist()
    # <show prefix_beam_search>
    NEG = -math.inf
    beams = {(): (0.0, NEG)}  # prefix -> (log P(ends in blank), log P(ends in a label))
    for frame in lp:
        grown: dict[tuple, list[float]] = {}
        add = _accumulator(grown)
        for prefix, (b, nb) in beams.items():
            add(prefix, blank_lp=_logsumexp(b, nb) + frame[blank])  # emit a blank
            for c, p in enumerate(frame):
                if c == blank:
                    continue
                if prefix and prefix[-1] == c:
                    add(prefix, label_lp=nb + p)  # repeat merges into the same label
                    add(prefix + (c,), label_lp=b + p)  # a blank in between: a new label
                else:
                    add(prefix + (c,), label_lp=_logsumexp(b, nb) + p)
        ranked = sorted(grown.items(), key=lambda kv: -_logsumexp(*kv[1]))
        beams = dict(ranked[:beam])
    best = max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))[0]
    # </show prefix_beam_search>
    return list(best)


def labelling_log_prob(log_probs: torch.Tensor, labelling, blank: int = 0) -> float:
    """log P(labelling) = log of the sum over every alignment of it (V**T paths: tiny T only)."""
    _check(log_probs, blank)
    T, V = log_probs.shape
    if V**T > 1_000_000:
        raise ValueError(f"brute force over {V}**{T} alignments is too many; use T, V small")
    target, total = list(labelling), -math.inf
    for path in itertools.product(range(V), repeat=T):
        if collapse(path, blank) == target:
            total = _logsumexp(total, float(sum(log_probs[t, s] for t, s in enumerate(path))))
    return total
