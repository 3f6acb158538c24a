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
* For generated text without references: :func:`distinct_n` (Li et al., 2016) and
  :func:`self_bleu` (Zhu et al., 2018) measure diversity across a set of samples, and
  :func:`sample_nll` is the negative log-likelihood a language model (the generator or
  an independent judge) gives the generated tokens, a proxy for quality.
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
    "distinct_n",
    "perplexity",
    "sample_nll",
    "self_bleu",
    "squad_scores",
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


# ---------------------------------------------------------------------------- diversity


def _texts(texts, least: int) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError("texts must be a list of strings (one per sample)")
    if len(texts) < least:
        raise ValueError(f"need at least {least} sample(s), got {len(texts)}")
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("every sample must be a string")
    return list(texts)


def distinct_n(texts: Sequence[str], n: int, tokenize=str.split) -> float:
    """Distinct-n (Li et al., 2016): distinct n-grams over all n-grams of a set of samples.

    Each text is split into tokens by ``tokenize`` (words, by default; ``list`` gives
    characters); n-grams do not cross from one sample into the next. 1 means no n-gram is
    ever repeated, values near 0 mean the samples keep saying the same thing. (Li et al.
    divide by the number of tokens; for n = 1 the two agree.)
    """
    texts = _texts(texts, 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    grams = [
        tuple(tokens[i : i + n])
        for tokens in map(tokenize, texts)
        for i in range(len(tokens) - n + 1)
    ]
    if not grams:
        raise ValueError(f"the samples hold no {n}-gram: every sample is shorter than n={n}")
    return len(set(grams)) / len(grams)


def self_bleu(texts: Sequence[str], max_ngram_order: int = 4, tokenize: str = "13a") -> float:
    """Self-BLEU (Zhu et al., 2018) in [0, 100]: the mean BLEU of each sample against all
    the other samples as references. High means the samples resemble each other.

    Each score is sacreBLEU's *sentence* BLEU with ``effective_order`` (orders with no
    n-gram in the hypothesis are left out rather than zeroed), up to ``max_ngram_order``.
    """
    texts = _texts(texts, 2)
    import sacrebleu

    metric = sacrebleu.BLEU(
        max_ngram_order=max_ngram_order, effective_order=True, tokenize=tokenize
    )
    scores = [
        metric.sentence_score(text, texts[:i] + texts[i + 1 :]).score
        for i, text in enumerate(texts)
    ]
    return float(sum(scores) / len(scores))


@torch.no_grad()
def sample_nll(model, seqs: torch.Tensor, prompt_len: int, batch_size: int = 64):
    """Mean negative log-likelihood (nats per token) that ``model`` gives the generated
    part of each sequence: seqs (N, T) -> (N,).

    Row ``n`` is a prompt of ``prompt_len`` tokens followed by generated tokens; only the
    tokens after the prompt are scored, each given everything before it. ``model`` is a
    causal language model that maps ids (B, t) to ``(logits (B, t, V), ...)`` with at
    most ``model.config.max_len`` positions (:class:`fmbook.models.GPT`); it is scored in
    eval mode.
    """
    if not torch.is_tensor(seqs) or seqs.dtype != torch.long or seqs.dim() != 2:
        raise ValueError("seqs must be an (N, T) tensor of dtype torch.long")
    if seqs.shape[0] == 0:
        raise ValueError("seqs is empty: there is no sample to score")
    if isinstance(prompt_len, bool) or not isinstance(prompt_len, int):
        raise ValueError(f"prompt_len must be an int, got {prompt_len!r}")
    if not 1 <= prompt_len < seqs.shape[1]:
        raise ValueError(
            f"prompt_len must be in [1, T-1] = [1, {seqs.shape[1] - 1}]: at least one "
            f"token of context and one generated token, got {prompt_len}"
        )
    longest = getattr(getattr(model, "config", None), "max_len", None)
    if longest is not None and seqs.shape[1] - 1 > longest:
        raise ValueError(
            f"sequences of {seqs.shape[1]} tokens need {seqs.shape[1] - 1} positions, more "
            f"than the model's max_len={longest}"
        )
    was_training = model.training
    model.eval()
    try:
        rows = []
        for chunk in seqs.split(batch_size):
            logits = model(chunk[:, :-1])[0].float()  # (b, T-1, V): predicts tokens 1..T-1
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), chunk[:, 1:], reduction="none"
            )  # (b, T-1)
            rows.append(nll[:, prompt_len - 1 :].mean(dim=1))  # generated tokens only
    finally:
        model.train(was_training)
    return torch.cat(rows)


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


def squad_scores(preds: Sequence[str], targets: Sequence[str | Sequence[str]]) -> dict[str, float]:
    """SQuAD exact match and F1 in percent (Rajpurkar et al., 2016), computed by
    ``torchmetrics.text.SQuAD``: each prediction is compared with each of its reference
    answers after normalisation (lower case, punctuation and the articles a/an/the removed,
    white space collapsed); EM is 100 if some reference is equal, F1 is the best F1 of the
    *word* overlap with a reference. Both are averaged over the examples.

    ``targets[i]`` is one reference answer or a list of them. Returns ``{"em", "f1"}``.
    """
    from torchmetrics.text import SQuAD

    preds, targets = list(preds), list(targets)
    if len(preds) != len(targets) or not preds:
        raise ValueError(
            f"need as many predictions as targets (>= 1), got {len(preds)} and {len(targets)}"
        )
    refs = [[t] if isinstance(t, str) else list(t) for t in targets]
    if not all(isinstance(p, str) for p in preds) or not all(
        r and all(isinstance(a, str) for a in r) for r in refs
    ):
        raise ValueError("predictions must be strings, targets strings or lists of strings")
    metric = SQuAD()
    scores = metric(
        [{"prediction_text": p, "id": str(i)} for i, p in enumerate(preds)],
        [
            {"answers": {"text": r, "answer_start": [0] * len(r)}, "id": str(i)}
            for i, r in enumerate(refs)
        ],
    )
    return {"em": float(scores["exact_match"]), "f1": float(scores["f1"])}
