import math

import numpy as np
import pytest
import torch

from fmbook.metrics import (
    accuracy,
    bits_per_token,
    bleu,
    bleu_paired_bootstrap,
    bleu_signature,
    chrf,
    chrf_signature,
    perplexity,
)

# --- losses in other units -------------------------------------------------------------


def test_uniform_guess_has_perplexity_vocab_size():
    assert perplexity(math.log(65)) == pytest.approx(65)
    assert perplexity(torch.tensor(math.log(65))) == pytest.approx(65)
    assert perplexity(0) == 1.0


def test_bits_per_token():
    assert bits_per_token(math.log(2)) == pytest.approx(1.0)
    assert bits_per_token(np.float32(math.log(256))) == pytest.approx(8.0, rel=1e-6)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "1.5", True])
def test_loss_conversions_reject_bad_values(bad):
    with pytest.raises(ValueError, match="loss_nats"):
        perplexity(bad)
    with pytest.raises(ValueError, match="loss_nats"):
        bits_per_token(bad)


def test_loss_conversions_reject_tensors_of_many_values():
    with pytest.raises(ValueError, match=r"single number.*\(2,\)"):
        perplexity(torch.tensor([1.0, 2.0]))


# --- accuracy --------------------------------------------------------------------------


def test_accuracy_of_predictions_skips_ignore_index():
    preds = torch.tensor([[1, 2, 3, 4]])
    targets = torch.tensor([[1, 0, 3, -100]])
    assert accuracy(preds, targets) == pytest.approx(2 / 3)
    assert accuracy(preds, torch.tensor([[1, 0, 3, 7]]), ignore_index=0) == pytest.approx(2 / 3)


def test_accuracy_of_logits_uses_argmax():
    logits = torch.tensor([[[0.1, 0.9], [2.0, -1.0]], [[0.0, 1.0], [5.0, 0.0]]])  # (2, 2, 2)
    targets = torch.tensor([[1, 0], [0, -100]])
    assert accuracy(logits, targets) == pytest.approx(2 / 3)
    assert accuracy([1, 1, 0], [1, 0, 0]) == pytest.approx(2 / 3)  # plain lists work too


def test_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="shape of targets"):
        accuracy(torch.tensor([1, 2, 3]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="shape of targets"):
        accuracy(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="ignore_index=-100"):
        accuracy(torch.tensor([1, 2]), torch.tensor([-100, -100]))
    with pytest.raises(ValueError, match="integer class ids"):
        accuracy(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))


# --- BLEU and chrF ---------------------------------------------------------------------

HYPS = ["the cat sat on the mat", "a dog barks"]


def test_identical_corpus_scores_100():
    assert bleu(HYPS, HYPS) == pytest.approx(100.0)
    assert chrf(HYPS, HYPS) == pytest.approx(100.0)
    assert chrf(HYPS, HYPS, word_order=2) == pytest.approx(100.0)  # chrF++


def test_disjoint_corpus_scores_0():
    refs = ["xyz qqq www vvv", "ppp fff"]  # shares no word and no character
    assert bleu(HYPS, refs) == 0.0
    assert chrf(HYPS, refs) == pytest.approx(0.0, abs=1e-9)


def test_bleu_by_hand_without_smoothing():
    # hypothesis vs. "the cat sat on a mat": matched n-grams 5/6, 3/5, 2/4, 1/3,
    # equal lengths so no brevity penalty: BLEU = (5/6 * 3/5 * 1/2 * 1/3) ** (1/4)
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert bleu([HYPS[0]], ["the cat sat on a mat"]) == pytest.approx(expected, abs=1e-9)


def test_bleu_by_hand_with_exp_smoothing():
    # vs. "the cat sat under the mat": 5/6, 3/5, 1/4 and no 4-gram match out of 3.
    # "exp" smoothing (mteval-v13a): the 1st order with no match gets 1 / (2 * total) = 1/6.
    expected = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    ref = ["the cat sat under the mat"]
    assert bleu([HYPS[0]], ref) == pytest.approx(expected, abs=1e-9)
    assert bleu([HYPS[0]], ref, smooth_method="none") == 0.0  # one zero precision -> 0


def test_bleu_brevity_penalty_by_hand():
    # a 4-word prefix of a 6-word reference: every precision is 1, BP = exp(1 - 6/4)
    expected = 100 * math.exp(1 - 6 / 4)
    assert bleu(["the cat sat on"], ["the cat sat on the mat"]) == pytest.approx(expected)


def test_chrf_by_hand():
    # "abc" vs "abd": 1-grams 2/3, 2-grams 1/2, 3-grams 0/1, no 4..6-grams (3 orders count).
    # Precision = recall = (2/3 + 1/2 + 0) / 3 = 7/18, and F_beta of equal P and R is P.
    assert chrf(["abc"], ["abd"]) == pytest.approx(100 * 7 / 18, abs=1e-9)


def test_multiple_references_take_the_best_match():
    refs = [["a completely different sentence", HYPS[0]], ["no", HYPS[1]]]
    assert bleu(HYPS, refs) == pytest.approx(100.0)
    assert chrf(HYPS, refs) == pytest.approx(100.0)


@pytest.mark.parametrize("metric", [bleu, chrf])
def test_corpus_metrics_reject_bad_input(metric):
    with pytest.raises(ValueError, match="same length, got 2 hypotheses and 1 references"):
        metric(HYPS, ["only one"])
    with pytest.raises(ValueError, match="hypotheses must be a list"):
        metric("a string", ["a string"])
    with pytest.raises(ValueError, match="at least one segment"):
        metric([], [])
    with pytest.raises(ValueError, match="at least one reference"):
        metric(HYPS, [["x", "y"], []])
    with pytest.raises(ValueError, match="every reference must be a string"):
        metric(HYPS, ["x", 3])


def test_bleu_pretokenized_silences_the_detokenize_warning_without_changing_the_score(caplog):
    from fmbook.metrics import bleu

    hyps = [f"le chat {i} dort sur le lit ." for i in range(120)]
    refs = [f"le chat {i} est sur le lit ." for i in range(120)]
    plain = bleu(hyps, refs)
    assert "detokenize" in caplog.text  # sacreBLEU warns about the spaced periods
    caplog.clear()
    quiet = bleu(hyps, refs, pretokenized=True)
    assert "detokenize" not in caplog.text
    assert quiet == plain


# --- a variable number of references, checked against sacrebleu called directly --------

MULTI_HYPS = ["le chat dort sur le lit .", "je veux une voiture .", "il pleut ."]
MULTI_REFS = [
    ["le chat dort sur le lit .", "la chatte dort sur le lit ."],
    ["je veux une nouvelle voiture ."],
    ["il pleut .", "il tombe des cordes .", "ça mouille ."],
]


def test_variable_references_match_sacrebleu_with_none_padding():
    import sacrebleu

    # sacreBLEU's documented form: one stream per reference slot, None where a segment
    # has fewer references
    streams = [[r[k] if k < len(r) else None for r in MULTI_REFS] for k in range(3)]
    want_bleu = sacrebleu.corpus_bleu(MULTI_HYPS, streams, tokenize="none", force=True)
    want_chrf = sacrebleu.corpus_chrf(MULTI_HYPS, streams)
    got = bleu(MULTI_HYPS, MULTI_REFS, tokenize="none", pretokenized=True)
    assert got == pytest.approx(want_bleu.score, abs=1e-9)
    assert chrf(MULTI_HYPS, MULTI_REFS) == pytest.approx(want_chrf.score, abs=1e-9)
    # padding by repeating a segment's first reference gives the same scores: BLEU clips
    # each n-gram by its largest count in any reference, chrF keeps the best reference
    repeated = [[r[k] if k < len(r) else r[0] for r in MULTI_REFS] for k in range(3)]
    rep = sacrebleu.corpus_bleu(MULTI_HYPS, repeated, tokenize="none", force=True)
    assert rep.score == pytest.approx(got, abs=1e-9)
    rep_chrf = sacrebleu.corpus_chrf(MULTI_HYPS, repeated).score
    assert rep_chrf == pytest.approx(chrf(MULTI_HYPS, MULTI_REFS), abs=1e-9)


def test_a_translation_matching_only_a_second_reference_scores_higher_with_it():
    hyps = MULTI_HYPS[:2] + ["il tombe des cordes ."]  # matches the 2nd reference only
    first_only = [refs[0] for refs in MULTI_REFS]
    one = bleu(hyps, first_only, tokenize="none", pretokenized=True)
    many = bleu(hyps, MULTI_REFS, tokenize="none", pretokenized=True)
    assert many > one + 10
    assert chrf(hyps, MULTI_REFS) > chrf(hyps, first_only) + 10


def test_signatures_name_the_options():
    sig = bleu_signature(MULTI_HYPS, MULTI_REFS, tokenize="none", pretokenized=True)
    assert "nrefs:var" in sig and "tok:none" in sig and "smooth:exp" in sig
    assert "nrefs:1" in bleu_signature(MULTI_HYPS, [r[0] for r in MULTI_REFS])
    assert "tok:13a" in bleu_signature(MULTI_HYPS, [r[0] for r in MULTI_REFS])
    sig = chrf_signature(MULTI_HYPS, MULTI_REFS)
    assert "nrefs:var" in sig and "nc:6" in sig and "nw:0" in sig


def test_tokenize_none_with_pretokenized_gives_no_warning(caplog):
    hyps = [f"le chat {i} dort sur le lit ." for i in range(120)]
    refs = [[f"le chat {i} est sur le lit .", f"le chat {i} dort ."] for i in range(120)]
    bleu(hyps, refs, tokenize="none", pretokenized=True)
    bleu_signature(hyps, refs, tokenize="none", pretokenized=True)
    chrf(hyps, refs)
    assert caplog.text == ""


def test_bleu_paired_bootstrap():
    hyps_good = [f"le chat {i} dort sur le lit ." for i in range(60)]
    hyps_bad = [f"un chien {i} mange ." for i in range(60)]
    refs = [[f"le chat {i} dort sur le lit .", f"le chat {i} dort ."] for i in range(60)]
    options = dict(tokenize="none", pretokenized=True)
    diff = bleu_paired_bootstrap(hyps_good, hyps_bad, refs, n_resamples=200, **options)
    want = bleu(hyps_good, refs, **options) - bleu(hyps_bad, refs, **options)
    assert diff.estimate == pytest.approx(want, abs=1e-9)
    assert diff.low <= diff.estimate <= diff.high and diff.excludes_zero()
    assert diff.p_value < 0.01
    same = bleu_paired_bootstrap(hyps_good, hyps_good, refs, n_resamples=50, **options)
    assert same.estimate == same.low == same.high == 0
    # half good, half bad against the same system reversed: the interval covers 0
    mixed_a = hyps_good[:30] + hyps_bad[30:]
    mixed_b = hyps_bad[:30] + hyps_good[30:]
    mixed = bleu_paired_bootstrap(mixed_a, mixed_b, refs, n_resamples=300, **options)
    assert mixed.low < 0 < mixed.high
    with pytest.raises(ValueError, match="same segments"):
        bleu_paired_bootstrap(hyps_good, hyps_bad[:5], refs)
    with pytest.raises(ValueError, match="unknown options"):
        bleu_paired_bootstrap(hyps_good, hyps_bad, refs, n_resamples=20, beam=4)
