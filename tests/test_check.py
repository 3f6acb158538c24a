"""fmbook.check accepts the right answers, rejects typical wrong ones with the right hint,
and never prints the reference."""

import math

import pytest
import torch

from fmbook import check


def test_number_accepts_the_answer_and_names_telling_ratios():
    assert check.number(0.3107, 0.3107)
    assert check.number(0.311, 0.3107, rtol=1e-2)
    cases = {
        2 * 0.3107: "twice",
        0.3107 / 2: "half",
        31.07: "100 times too large",
        -0.3107: "wrong sign",
        0.5: "too large",
        0.1: "too small",
    }
    for answer, hint in cases.items():
        verdict = check.number(answer, 0.3107)
        assert not verdict
        assert hint in verdict.message
        assert "0.31" not in verdict.message and "0.31" not in repr(verdict)  # no solution


def test_number_explains_answers_that_are_not_numbers():
    assert "replace it by your answer" in check.number(..., 1.0).message
    assert "single number" in check.number("1.0x", 1.0).message
    assert "single number" in check.number(torch.ones(3), 1.0).message
    assert "overflow" in check.number(float("inf"), 1.0).message
    assert check.number(torch.tensor(2.0), 2.0)  # a 0-d tensor is a number


def test_tensor_diagnoses_shape_transpose_factor_nan_and_wrong_entries():
    ref = torch.arange(6.0).reshape(2, 3) + 1
    assert check.tensor(ref.clone(), ref)
    assert check.tensor(ref.numpy(), ref)  # numpy arrays are accepted
    assert "transposed" in check.tensor(ref.T, ref).message
    assert "shape (3,)" in check.tensor(torch.ones(3), ref).message
    assert "twice" in check.tensor(2 * ref, ref).message
    assert "NaN" in check.tensor(ref.log() * float("nan"), ref).message
    wrong = ref.clone()
    wrong[0, 1] += 1
    assert "1 of 6 entries" in check.tensor(wrong, ref).message


def correct_softmax(x):
    z = x - x.max(dim=-1, keepdim=True).values
    return z.exp() / z.exp().sum(dim=-1, keepdim=True)


def test_softmax_check():
    assert check.softmax(correct_softmax)
    assert (
        "wrong axis"
        in check.softmax(lambda x: correct_softmax(x.transpose(0, -1)).transpose(0, -1)).message
    )
    assert "wrong axis" in check.softmax(lambda x: x.softmax(dim=0)).message
    naive = check.softmax(lambda x: x.exp() / x.exp().sum(-1, keepdim=True))
    assert not naive and "overflow" in naive.message and "test case 3" in naive.message
    assert "whole tensor" in check.softmax(lambda x: x.exp() / x.exp().sum()).message


def test_a_stub_and_a_crash_are_reported_not_raised():
    def stub(x):
        raise NotImplementedError

    assert check.softmax(stub).message == "Your softmax is not implemented yet."
    crash = check.softmax(lambda x: x @ torch.ones(2, 2))
    assert not crash and "raised RuntimeError" in crash.message


def student_attention(q, k, v, causal=False):
    """A from-scratch implementation, as a student would write it."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, Tq, Tk)
    if causal:
        keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    return scores.softmax(dim=-1) @ v  # (B, Tq, d_v)


def test_attention_accepts_a_correct_implementation_and_the_books():
    from fmbook.nn.attention import scaled_dot_product_attention

    assert check.attention(student_attention)
    assert check.attention(lambda q, k, v: scaled_dot_product_attention(q, k, v)[0])
    assert check.causal_attention(lambda q, k, v: student_attention(q, k, v, causal=True))
    assert check.causal_attention(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, causal=True)[0]
    )


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda q, k, v: student_attention(q, k, v) * 2, "twice"),
        (lambda q, k, v: student_attention(q * math.sqrt(q.shape[-1]), k, v), "not scaled"),
        (lambda q, k, v: student_attention(q / math.sqrt(q.shape[-1]), k, v), "by d_k"),
        (
            lambda q, k, v: (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-2) @ v,
            "query axis",
        ),
        (
            lambda q, k, v: (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1),
            "multiply them by V",
        ),
        (lambda q, k, v: student_attention(q, k, v, causal=True), "wrong"),
    ],
)
def test_attention_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    verdict = check.attention(wrong)
    assert not verdict
    assert hint in verdict.message


def mask_after_softmax(q, k, v):
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    return (weights * keep) @ v  # zeroes the future but does not renormalise


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (mask_after_softmax, "mask after the softmax"),
        (lambda q, k, v: student_attention(q, k, v), "does not mask"),
        (
            lambda q, k, v: student_attention(q.flip(-2), k.flip(-2), v.flip(-2), causal=True).flip(
                -2
            ),
            "hides the past",
        ),
        (lambda q, k, v: 0.5 * student_attention(q, k, v, causal=True), "half"),
    ],
)
def test_causal_attention_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    verdict = check.causal_attention(wrong)
    assert not verdict
    assert hint in verdict.message


def test_exercise_registry():
    @check.register("ex-test-only-share")
    def _share(answer):
        return check.number(answer, 50257 * 768 / 124e6, what="The share")

    try:
        assert check.exercise("ex-test-only-share", 0.311)
        assert "twice" in check.exercise("ex-test-only-share", 0.622).message
        with pytest.raises(ValueError, match="already registered"):
            check.register("ex-test-only-share")(_share)
    finally:
        check._EXERCISES.pop("ex-test-only-share")
    with pytest.raises(ValueError, match="no check is registered for exercise 'ex-nope'"):
        check.exercise("ex-nope", 1)


def test_verdict_shows_as_one_line_in_a_notebook():
    ok, bad = check.number(1.0, 1.0), check.number(2.0, 1.0)
    assert repr(ok).startswith("Correct: ") and repr(bad).startswith("Not yet: ")
    assert bad._repr_markdown_().startswith("❌") and "\n" not in bad._repr_markdown_()
