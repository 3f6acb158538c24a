"""Evaluation metrics: language-model losses in readable units, accuracy, BLEU and chrF.

* :func:`perplexity` and :func:`bits_per_token` turn a mean cross-entropy in nats (what
  ``F.cross_entropy`` and :class:`~fmbook.tasks.CausalLM` report) into the units papers use.
* :func:`accuracy` compares predictions (or logits) with targets, skipping padding.
* :func:`bleu` and :func:`chrf` are *corpus* scores computed by ``sacrebleu`` (Post, 2018),
  the reference implementation, so that numbers in the book are comparable with papers.
  They take one or several references per segment; :func:`bleu_signature` and
  :func:`chrf_signature` give sacreBLEU's signature string to print with a score.
  :func:`bleu_paired_bootstrap` gives an interval for the BLEU difference of two systems
  on the same segments (Koehn, 2004), from sacreBLEU's per-segment statistics.
  ``sacrebleu`` is imported only when one of them is called.
* :func:`word_error_rate` is the corpus WER of speech recognition (edits over reference
  words), computed by ``torchmetrics``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "accuracy",
    "bits_per_token",
    "bleu",
    "bleu_paired_bootstrap",
    "bleu_signature",
    "chrf",
    "chrf_signature",
    "perplexity",
    "word_error_rate",
]


def _loss_value(loss_nats) -> float:
    """A finite, non-negative mean loss as a float (accepts floats and 1-element tensors)."""
    if torch.is_tensor(loss_nats):
        if loss_nats.numel() != 1:
            raise ValueError(
                f"loss_nats must be a single number, got a tensor of shape {tuple(loss_nats.shape)}"
            )
        loss_nats = loss_nats.item()
    if isinstance(loss_nats, bool) or not isinstance(loss_nats, numbers.Real):
        raise ValueError(f"loss_nats must be a number, got {type(loss_nats).__name__}")
    if not math.isfinite(loss_nats) or loss_nats < 0:
        raise ValueError(f"loss_nats must be a finite number >= 0, got {loss_nats!r}")
    return float(loss_nats)


def perplexity(loss_nats) -> float:
    """``exp(loss)``: the effective number of equally likely next tokens.

    A uniform guess over V tokens has loss ``ln V`` and perplexity V.
    """
    return math.exp(_loss_value(loss_nats))


def bits_per_token(loss_nats) -> float:
    """The loss in bits, ``loss / ln 2`` (bits per character for a character model)."""
    return _loss_value(loss_nats) / math.log(2)


def accuracy(logits_or_preds, targets, ignore_index: int = -100) -> float:
    """Fraction of positions where the prediction equals the target.

    ``logits_or_preds`` is either predicted class ids with the shape of ``targets``, or
    logits with one more (last) dimension, whose argmax is the prediction. Positions whose
    target is ``ignore_index`` (padding) are not counted.
    """
    preds, targets = torch.as_tensor(logits_or_preds), torch.as_tensor(targets)
    if preds.is_floating_point() and preds.dim() == targets.dim() + 1:
        preds = preds.argmax(dim=-1)
    if preds.shape != targets.shape:
        raise ValueError(
            "logits_or_preds must have the shape of targets "
            f"{tuple(targets.shape)} (predictions) or that shape plus a class dimension "
            f"(logits), got {tuple(torch.as_tensor(logits_or_preds).shape)}"
        )
    if preds.is_floating_point() or targets.is_floating_point():
        raise ValueError("predictions and targets must be integer class ids, got floats")
    keep = targets != ignore_index
    counted = int(keep.sum())
    if counted == 0:
        raise ValueError(
            f"no position to score: every target equals ignore_index={ignore_index} (or it is empty)"
        )
    return float((preds[keep] == targets[keep]).sum()) / counted


def _reference_streams(hypotheses, references) -> tuple[list[str], list[list[str | None]]]:
    """Check the inputs and turn per-hypothesis references into sacrebleu's streams.

    ``references`` is one string per hypothesis, or one list of strings per hypothesis
    (several references each, not necessarily the same number). sacreBLEU takes one
    *stream* per reference slot; a segment with fewer references than the most has
    ``None`` in the remaining streams, which sacreBLEU documents as "no reference here"
    (its signature then says ``nrefs:var``).
    """
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence):
        raise ValueError("hypotheses must be a list of strings (one per segment)")
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise ValueError("references must be a list with one entry per hypothesis")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references must have the same length, got {len(hypotheses)} "
            f"hypotheses and {len(references)} references"
        )
    if not hypotheses:
        raise ValueError("hypotheses is empty: a corpus score needs at least one segment")
    if not all(isinstance(h, str) for h in hypotheses):
        raise ValueError("every hypothesis must be a string")
    if not all(isinstance(r, str | Sequence) for r in references):
        raise ValueError("every reference must be a string or a list of strings")
    per_segment = [[r] if isinstance(r, str) else list(r) for r in references]
    if any(len(refs) == 0 for refs in per_segment):
        raise ValueError("every hypothesis needs at least one reference, got an empty list")
    if not all(isinstance(r, str) for refs in per_segment for r in refs):
        raise ValueError("every reference must be a string")
    n_streams = max(len(refs) for refs in per_segment)
    padded = [refs + [None] * (n_streams - len(refs)) for refs in per_segment]
    streams = [list(stream) for stream in zip(*padded, strict=True)]
    return list(hypotheses), streams


def _bleu_metric(tokenize, smooth_method, lowercase, pretokenized):
    import sacrebleu

    return sacrebleu.BLEU(
        tokenize=tokenize, smooth_method=smooth_method, lowercase=lowercase, force=pretokenized
    )


def _chrf_metric(char_order, word_order, beta):
    import sacrebleu

    return sacrebleu.CHRF(char_order=char_order, word_order=word_order, beta=beta)


def bleu(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    tokenize: str = "13a",
    smooth_method: str = "exp",
    lowercase: bool = False,
    pretokenized: bool = False,
) -> float:
    """Corpus BLEU (Papineni et al., 2002) in [0, 100], computed by ``sacrebleu``.

    n-gram counts (n = 1..4) are summed over the whole corpus before the precisions are
    formed. With the default ``smooth_method="exp"`` (mteval-v13a), the k-th order with
    no match gets precision ``1 / (2**k * total)`` instead of 0. ``references`` holds one
    string per hypothesis, or one list of strings per hypothesis (multiple references, as
    many as each segment has: an n-gram counts up to its largest count in any reference,
    and the brevity penalty uses the reference length closest to the hypothesis').
    ``pretokenized=True`` says the text is split into words on purpose (e.g. "le chat
    dort ."), which silences sacreBLEU's "forgot to detokenize" warning without changing
    the score; with ``tokenize="none"`` the words are scored as they are.
    :func:`bleu_signature` gives sacreBLEU's signature of the same computation.
    """
    hyps, streams = _reference_streams(hypotheses, references)
    metric = _bleu_metric(tokenize, smooth_method, lowercase, pretokenized)
    return float(metric.corpus_score(hyps, streams).score)


def bleu_signature(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    tokenize: str = "13a",
    smooth_method: str = "exp",
    lowercase: bool = False,
    pretokenized: bool = False,
) -> str:
    """sacreBLEU's signature of :func:`bleu` with these arguments, e.g.
    ``nrefs:var|case:mixed|eff:no|tok:none|smooth:exp|version:2.6.0``: report it with the
    score, so that readers know exactly what was computed."""
    hyps, streams = _reference_streams(hypotheses, references)
    metric = _bleu_metric(tokenize, smooth_method, lowercase, pretokenized)
    metric.corpus_score(hyps, streams)  # sets the number of references
    return str(metric.get_signature())


def bleu_paired_bootstrap(
    hypotheses_a: Sequence[str],
    hypotheses_b: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    **options,
):
    """BLEU(a) - BLEU(b) on the same segments, with a paired bootstrap interval.

    Segments are resampled with replacement ``n_resamples`` times (the same resample for
    both systems); each resample's corpus BLEU is computed from sacreBLEU's per-segment
    n-gram statistics, as in sacreBLEU's own paired bootstrap test (Koehn, 2004). The
    interval is the percentile interval of the differences; ``options`` are those of
    :func:`bleu`. Returns a :class:`fmbook.stats.Interval` (``p_value``: the share of
    resamples in which the difference has the other sign than the estimate, doubled).
    """
    import numpy as np

    from .stats import Interval

    if len(hypotheses_a) != len(hypotheses_b):
        raise ValueError(
            f"the two systems need the same segments, got {len(hypotheses_a)} and "
            f"{len(hypotheses_b)} hypotheses"
        )
    if not 0 < level < 1 or n_resamples < 10:
        raise ValueError("level must be in (0, 1) and n_resamples >= 10")
    hyps_a, streams = _reference_streams(hypotheses_a, references)
    hyps_b, _ = _reference_streams(hypotheses_b, references)
    metric = _bleu_metric(
        options.pop("tokenize", "13a"),
        options.pop("smooth_method", "exp"),
        options.pop("lowercase", False),
        options.pop("pretokenized", False),
    )
    if options:
        raise ValueError(f"unknown options {sorted(options)}")
    stats = [np.array(metric._extract_corpus_statistics(h, streams)) for h in (hyps_a, hyps_b)]

    def score(rows) -> float:
        return float(metric._compute_score_from_stats(list(rows.sum(0))).score)

    estimate = score(stats[0]) - score(stats[1])
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(hyps_a), size=(n_resamples, len(hyps_a)))
    diffs = np.array([score(stats[0][i]) - score(stats[1][i]) for i in index])
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    other_side = np.mean(diffs <= 0) if estimate > 0 else np.mean(diffs >= 0)
    return Interval(estimate, float(low), float(high), level, float(min(1.0, 2 * other_side)))


def chrf(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
) -> float:
    """Corpus chrF (Popović, 2015) in [0, 100], computed by ``sacrebleu``.

    The F-beta score of character n-gram precision and recall (n = 1..``char_order``,
    spaces removed), averaged over the orders that occur. ``word_order=2`` gives chrF++.
    With several references per segment, each segment is scored against the reference
    that gives it the best F-score. :func:`chrf_signature` gives sacreBLEU's signature.
    """
    hyps, streams = _reference_streams(hypotheses, references)
    metric = _chrf_metric(char_order, word_order, beta)
    return float(metric.corpus_score(hyps, streams).score)


def chrf_signature(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
) -> str:
    """sacreBLEU's signature of :func:`chrf` with these arguments."""
    hyps, streams = _reference_streams(hypotheses, references)
    metric = _chrf_metric(char_order, word_order, beta)
    metric.corpus_score(hyps, streams)
    return str(metric.get_signature())


def word_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus word error rate, ``(substitutions + deletions + insertions) / reference words``,
    computed by ``torchmetrics.text.WordErrorRate``; words are split at spaces.

    It can exceed 1 (many insertions). An empty list of hypotheses, a list of another length
    than the references, or references without a single word raise ``ValueError``.
    """
    from torchmetrics.text import WordErrorRate

    if isinstance(hypotheses, str) or isinstance(references, str):
        raise ValueError("hypotheses and references must be lists of strings, not one string")
    hypotheses, references = list(hypotheses), list(references)
    if not hypotheses:
        raise ValueError("word_error_rate needs at least one hypothesis, got an empty list")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"need one reference per hypothesis, got {len(hypotheses)} and {len(references)}"
        )
    if not all(isinstance(t, str) for t in hypotheses + references):
        raise ValueError("hypotheses and references must be strings")
    if not any(r.split() for r in references):
        raise ValueError("the references hold no words: the WER is undefined")
    return float(WordErrorRate()(hypotheses, references))
