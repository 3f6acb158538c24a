"""The checks of the book's exercises (fmbook.exercises): each accepts the answer of the
chapter's solution and rejects typical wrong answers; each checkable exercise tells the
reader how to call its check, and every check belongs to an exercise of the book."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from fmbook import check
from fmbook.exercises import all_of

ROOT = Path(__file__).resolve().parents[1]

# The solutions' answers, computed the way each chapter's solution computes them.
RIGHT = {
    "ex-tokens-embeddings-params": {"share_gpt2": 50_257 * 768 / 124e6},
    "ex-end-to-end-cache-memory": {"gpt2_bytes": 2 * 12 * 1 * 1024 * 768 * 4},
    "ex-gpt-units": {"bits": 1.5 / math.log(2), "perplexity": math.exp(1.5)},
    "ex-mlm-budget": {"bert_chars_per_step": 1024, "gpt_steps": 375, "gpt_steps_15": 225},
    "ex-transformer-equations-gpt2": {
        "n_params": 124_439_808,
        "token_share": 38_597_376 / 124_439_808,
        "untied_extra": 38_597_376,
    },
    "ex-transformer-equations-compute": {
        "flops_6nd": 6 * 793_344 * 2250 * 32 * 128,  # N with biases and norms, as solved
        "chinchilla_flops": 5.88e23,
        "chinchilla_years": 5.88e23 / 1e15 / (365 * 24 * 3600),
    },
    "ex-dbg-init-loss": {"loss_512": 6.238, "loss_gpt2": 10.825},
    "ex-scale-bytes": {"bytes_per_param": 16, "gib": 104.3, "min_gpus": 2},
    "ex-scale-sampler": {"per_rank": 3},
    "ex-qa-f1": {"em": 0, "f1": 66.67},
    "ex-qa-precision": {"max_precision": 0.2},
    "ex-speech-ctc-greedy": {
        "p_empty": 0.55**3,
        "p_a": 3 * 0.45 * 0.55**2 + 2 * 0.45**2 * 0.55 + 0.45**3,
    },
    "ex-translation-length-penalty": {"length_alpha0": 1, "length_alpha1": 20},
    "ex-mm-init-loss": {"loss_b10": 2.303},
    "ex-mm-temperature": {"min_loss": math.log(1 + 9 * math.exp(-(1 + 1 / 9)))},
    "ex-compute-chinchilla": {"n_params": 5.115e10, "n_tokens": 1.023e12},
    "ex-compute-gqa": {"gqa_bytes": 1_342_177_280, "mha_bytes": 10_737_418_240},
}


def softmax_jacobian(z):
    p = z.softmax(-1)
    return torch.diag(p) - torch.outer(p, p)


FUNCTIONS = {
    "ex-attention-jacobian": {"jacobian_fn": softmax_jacobian},
    "ex-word2vec-sigmoid": {"grad_fn": lambda x: -torch.sigmoid(x)},
}


def registered() -> set[str]:
    check.exercise.__globals__["_EXERCISES"]  # noqa: B018  (the registry is filled lazily)
    import fmbook.exercises  # noqa: F401

    return set(check._EXERCISES)


def test_every_registered_check_is_tested_here():
    assert registered() == set(RIGHT) | set(FUNCTIONS)


@pytest.mark.parametrize("label", sorted(RIGHT))
def test_the_solution_passes_and_a_wrong_part_fails(label):
    answers = RIGHT[label]
    verdict = check.exercise(label, **answers)
    assert verdict, f"{label}: {verdict.message}"
    for name, value in answers.items():  # each part, off by a factor of 2 (or +1 if zero)
        wrong = dict(answers, **{name: 2 * value if value else 1})
        verdict = check.exercise(label, **wrong)
        assert not verdict, f"{label}: {name} doubled was accepted"
        if len(str(value)) >= 3:
            assert f"{value}" not in verdict.message  # never the answer
    missing = check.exercise(label)  # nothing filled in yet
    assert not missing and "replace it by your answer" in missing.message


def test_typical_mistakes_get_their_hint():
    share = RIGHT["ex-tokens-embeddings-params"]["share_gpt2"]
    assert (
        "100 times" in check.exercise("ex-tokens-embeddings-params", share_gpt2=100 * share).message
    )
    assert (
        "twice"
        in check.exercise(
            "ex-end-to-end-cache-memory", gpt2_bytes=2 * 2 * 12 * 1024 * 768 * 4
        ).message
    )  # counted K and V twice
    assert (
        "half"
        in check.exercise("ex-end-to-end-cache-memory", gpt2_bytes=12 * 1024 * 768 * 4).message
    )  # forgot the values
    log2 = check.exercise("ex-dbg-init-loss", loss_512=9.0, loss_gpt2=math.log2(50_257))
    assert not log2 and "too large" in log2.message  # bits instead of nats
    fp32_only = check.exercise("ex-scale-bytes", bytes_per_param=12, gib=78.2, min_gpus=1)
    assert not fp32_only and "too small" in fp32_only.message  # forgot the master weights
    antipodes = check.exercise("ex-mm-temperature", min_loss=math.log(1 + 9 * math.exp(-2)))
    assert not antipodes and "too small" in antipodes.message  # cosine -1 for all nine
    mha_for_gqa = check.exercise("ex-compute-gqa", gqa_bytes=10_737_418_240, mha_bytes=1)
    assert not mha_for_gqa and "cache with 8 KV heads" in mha_for_gqa.message


def test_function_checks_accept_the_formula_and_reject_the_usual_slips():
    assert check.exercise("ex-attention-jacobian", **FUNCTIONS["ex-attention-jacobian"])
    no_outer = check.exercise(
        "ex-attention-jacobian", jacobian_fn=lambda z: torch.diag(z.softmax(-1))
    )
    assert not no_outer and "-p_i p_j" in no_outer.message
    flipped = check.exercise("ex-attention-jacobian", jacobian_fn=lambda z: -softmax_jacobian(z))
    assert not flipped and "wrong sign" in flipped.message
    assert (
        "not its result"
        in check.exercise("ex-attention-jacobian", jacobian_fn=torch.eye(3)).message
    )
    assert check.exercise("ex-word2vec-sigmoid", **FUNCTIONS["ex-word2vec-sigmoid"])
    sign = check.exercise("ex-word2vec-sigmoid", grad_fn=torch.sigmoid)
    assert not sign and "wrong sign" in sign.message


def test_all_of_reports_the_first_wrong_part():
    ok, bad = check.number(1, 1), check.number(2, 1, what="Part b")
    assert all_of(ok, ok)
    assert all_of(ok, bad).message == bad.message


def exercises_in_the_book() -> dict[str, str]:
    found = {}
    for path in sorted(ROOT.glob("chapters/*/*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"])
            for m in re.finditer(r"```\{exercise\}[^\n]*\n:label: (\S+)\n(.*?)\n```", text, re.S):
                found[m[1]] = m[2]
    return found


def test_each_checkable_exercise_shows_how_to_call_its_check():
    book = exercises_in_the_book()
    for label in registered():
        assert label in book, f"a check is registered for {label}, which no chapter has"
        call = re.search(r'`check\.exercise\("([^"]+)"([^`]*)\)`', book[label])
        assert call and call[1] == label, f"{label}: the exercise does not say how to check it"
        names = re.findall(r"(\w+)=", call[2])
        expected = set(RIGHT.get(label, FUNCTIONS.get(label, {})))
        assert set(names) == expected, f"{label}: the call names {names}, the check {expected}"
