"""Checks that students run in a notebook: is my answer right, and if not, why not?

A check compares an answer with the book's reference and returns a :class:`Verdict`, which
is true when the answer is right and shows as one line in a notebook. A wrong answer gets a
hint about the *kind* of mistake (a factor of 2, a transposed matrix, a softmax over the
wrong axis, a mask applied after the softmax) and never the reference value itself.

* :func:`number` -- a scalar, within a relative tolerance;
* :func:`tensor` -- an array: shape, NaNs, a transpose, a constant factor;
* :func:`function` -- a function run on test inputs next to a reference, with a list of
  known mistakes whose outputs are recognised;
* :func:`softmax`, :func:`attention`, :func:`causal_attention` -- the book's standard
  functions, with the mistakes people usually make in them;
* :func:`exercise` -- the registered check of one of the book's exercises, by its label.

In an autograder, ``assert check.attention(student_fn)`` fails with the hint as message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "Verdict",
    "attention",
    "causal_attention",
    "exercise",
    "function",
    "number",
    "register",
    "softmax",
    "tensor",
]


@dataclass(frozen=True)
class Verdict:
    """The result of a check: ``ok`` and a message that never contains the reference."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return ("Correct: " if self.ok else "Not yet: ") + self.message

    def _repr_markdown_(self) -> str:
        return ("✅ **Correct.** " if self.ok else "❌ **Not yet.** ") + self.message


def _pass(what: str) -> Verdict:
    return Verdict(True, f"{what} agrees with the book's answer.")


# ----------------------------------------------------------------------------- numbers

# Ratios answer / reference that point at a common slip, and what to say about them.
_FACTORS = (
    (2.0, "about twice the expected value: is a factor of 2 counted twice?"),
    (0.5, "about half the expected value: is a factor of 2 missing?"),
    (100.0, "about 100 times too large: a percentage where a fraction is asked?"),
    (0.01, "about 100 times too small: a fraction where a percentage is asked?"),
    (-1.0, "the right size with the wrong sign"),
)


def _factor_hint(ratio: float, rtol: float) -> str | None:
    for factor, hint in _FACTORS:
        if abs(ratio - factor) <= max(rtol, 0.01) * abs(factor):
            return hint
    return None


def number(answer, reference: float, *, rtol: float = 1e-2, atol: float = 0.0, what="Your number"):
    """Check a scalar ``answer`` against ``reference``: right within ``rtol`` (relative) or
    ``atol`` (absolute); otherwise say whether it is too large or too small, and whether the
    ratio is a telling one (2, 1/2, 100, 1/100, -1)."""
    if isinstance(answer, bool) or answer is None or answer is Ellipsis:
        return Verdict(False, f"{what} is {answer!r}: replace it by your answer.")
    try:
        value = float(answer.item() if torch.is_tensor(answer) else answer)
    except (TypeError, ValueError, RuntimeError):
        return Verdict(False, f"{what} must be a single number, got {type(answer).__name__}.")
    if math.isnan(value) or math.isinf(value):
        return Verdict(False, f"{what} is {value}: look for a division by zero or an overflow.")
    if abs(value - reference) <= atol + rtol * abs(reference):
        return _pass(what)
    if reference != 0:
        hint = _factor_hint(value / reference, rtol)
        if hint:
            return Verdict(False, f"{what} is {hint}")
    side = "too large" if value > reference else "too small"
    return Verdict(False, f"{what} is {side}.")


# ----------------------------------------------------------------------------- tensors


def _as_tensor(x) -> torch.Tensor | None:
    if torch.is_tensor(x):
        return x.detach().to("cpu", torch.float64)
    try:
        return torch.as_tensor(x, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return None


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=atol)


def tensor(answer, reference, *, rtol: float = 1e-4, atol: float = 1e-5, what="Your tensor"):
    """Check an array ``answer`` against ``reference`` (same shape, close entries), and
    diagnose the usual mismatches: shape, NaN, a transpose of the last two axes, a constant
    factor, or how many entries differ."""
    ref = _as_tensor(reference)
    if answer is None or answer is Ellipsis:
        return Verdict(False, f"{what} is {answer!r}: replace it by your answer.")
    got = _as_tensor(answer)
    if got is None:
        return Verdict(False, f"{what} must be a tensor or array, got {type(answer).__name__}.")
    if got.shape != ref.shape:
        if got.dim() >= 2 and got.transpose(-2, -1).shape == ref.shape:
            if _close(got.transpose(-2, -1), ref, rtol, atol):
                return Verdict(False, f"{what} is transposed: swap its last two axes.")
        return Verdict(
            False, f"{what} has shape {tuple(got.shape)}; the answer has shape {tuple(ref.shape)}."
        )
    if torch.isnan(got).any() or torch.isinf(got).any():
        return Verdict(
            False,
            f"{what} contains NaN or inf: look for an overflow (exp of a large number?) or a 0/0.",
        )
    if _close(got, ref, rtol, atol):
        return _pass(what)
    scale = float((got * ref).sum() / (ref * ref).sum()) if ref.abs().sum() > 0 else 0.0
    if scale and _close(got, scale * ref, 1e-3, atol):
        hint = _factor_hint(scale, 1e-2)
        if hint:
            return Verdict(False, f"{what} is {hint}")
        return Verdict(False, f"{what} is the answer times a constant: check the scaling.")
    wrong = ~torch.isclose(got, ref, rtol=rtol, atol=atol)
    return Verdict(False, f"{what}: {int(wrong.sum())} of {wrong.numel()} entries are wrong.")


# ----------------------------------------------------------------------------- functions


def function(
    fn: Callable,
    reference: Callable,
    cases: Iterable[Sequence],
    *,
    mistakes: Sequence[tuple[str, Callable]] = (),
    rtol: float = 1e-4,
    atol: float = 1e-5,
    what: str = "Your function",
) -> Verdict:
    """Run ``fn`` and ``reference`` on each case (a tuple of arguments) and compare the
    outputs with :func:`tensor`. When they differ, each known mistake ``(hint, wrong_fn)`` is
    run on the same case: an output that matches ``wrong_fn``'s gets its ``hint``."""
    for i, args in enumerate(cases):
        expected = reference(*args)
        try:
            got = fn(*[a.clone() if torch.is_tensor(a) else a for a in args])
        except NotImplementedError:
            return Verdict(False, f"{what} is not implemented yet.")
        except Exception as err:  # a student's bug, shown to the student
            return Verdict(False, f"{what} raised {type(err).__name__}: {err}")
        verdict = tensor(got, expected, rtol=rtol, atol=atol, what=what)
        if verdict:
            continue
        got = _as_tensor(got)
        for hint, wrong in mistakes:
            if got is not None and _close(got, _as_tensor(wrong(*args)), rtol, atol):
                return Verdict(False, f"{what} {hint}")
        if i:
            return Verdict(False, f"{verdict.message} (test case {i + 1}; the first passed)")
        return verdict
    return _pass(what)


def _qkv(seed: int, b: int = 2, tq: int = 5, tk: int = 5, d: int = 4, dv: int = 3, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    q = scale * torch.randn(b, tq, d, generator=g)
    k = scale * torch.randn(b, tk, d, generator=g)
    v = torch.randn(b, tk, dv, generator=g)
    return q, k, v


def _weights(q, k, scale, dim=-1, mask=None):
    scores = q @ k.transpose(-2, -1) / scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=dim)


def softmax(fn: Callable) -> Verdict:
    """Check ``fn(x)``, a softmax over the last axis of ``x`` (..., n), numerically stable."""
    g = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(3, 4, generator=g),),
        (torch.randn(2, 3, 5, generator=g),),
        (torch.tensor([[1000.0, 999.0, 998.0], [-5.0, 0.0, 5.0]]),),  # needs the max trick
    ]
    mistakes = [
        (
            "takes the softmax over the wrong axis: normalise over the last one (dim=-1).",
            lambda x: x.softmax(dim=0),
        ),
        (
            "normalises over the whole tensor: each row must sum to 1 on its own.",
            lambda x: x.exp() / x.exp().sum(),
        ),
    ]  # an exp that overflows (no max subtracted) gives inf/inf = NaN on the third case
    return function(fn, lambda x: x.softmax(dim=-1), cases, mistakes=mistakes, what="Your softmax")


def attention(fn: Callable) -> Verdict:
    """Check ``fn(q, k, v)`` -> softmax(q k^T / sqrt(d_k)) v, with q (B, Tq, d_k),
    k (B, Tk, d_k) and v (B, Tk, d_v); compared with ``torch``'s SDPA."""
    cases = [_qkv(0), _qkv(1, tq=3, tk=6), _qkv(2, d=16)]
    return function(
        fn,
        F.scaled_dot_product_attention,
        cases,
        mistakes=_attention_mistakes(masked=False),
        what="Your attention",
    )


def causal_attention(fn: Callable) -> Verdict:
    """Check ``fn(q, k, v)`` -> causal attention: query ``i`` sees keys ``0..i`` (Tq = Tk),
    compared with ``torch``'s SDPA with ``is_causal=True``."""
    cases = [_qkv(0), _qkv(1, tq=7, tk=7), _qkv(2, d=16)]
    return function(
        fn,
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        cases,
        mistakes=_attention_mistakes(masked=True),
        what="Your causal attention",
    )


def _causal(q, k):
    return torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()  # (Tq, Tk)


def _attention_mistakes(masked: bool) -> list[tuple[str, Callable]]:
    sqrt_d = lambda q: math.sqrt(q.shape[-1])  # noqa: E731
    mask = (lambda q, k: _causal(q, k)) if masked else (lambda q, k: None)
    out = [
        (
            "is not scaled: divide the scores q k^T by sqrt(d_k).",
            lambda q, k, v: _weights(q, k, 1.0, mask=mask(q, k)) @ v,
        ),
        (
            "divides the scores by d_k: the scale is sqrt(d_k).",
            lambda q, k, v: _weights(q, k, q.shape[-1], mask=mask(q, k)) @ v,
        ),
        (
            "takes the softmax over the query axis: each query's weights over the keys "
            "(dim=-1) must sum to 1.",
            lambda q, k, v: _weights(q, k, sqrt_d(q), dim=-2, mask=mask(q, k)) @ v,
        ),
        (
            "returns the attention weights: multiply them by V.",
            lambda q, k, v: _weights(q, k, sqrt_d(q), mask=mask(q, k)),
        ),
    ]
    if masked:
        out += [
            (
                "applies the mask after the softmax: the weights no longer sum to 1. Set the "
                "hidden scores to -inf before the softmax.",
                lambda q, k, v: (_weights(q, k, sqrt_d(q)) * _causal(q, k)) @ v,
            ),
            (
                "hides the past instead of the future: query i may see keys 0..i (tril).",
                lambda q, k, v: _weights(q, k, sqrt_d(q), mask=_causal(q, k).T) @ v,
            ),
            (
                "does not mask: query i must not see keys after i.",
                lambda q, k, v: _weights(q, k, sqrt_d(q)) @ v,
            ),
        ]
    return out


# ----------------------------------------------------------------------------- exercises

_EXERCISES: dict[str, Callable[..., Verdict]] = {}


def register(label: str) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Decorator: make ``check(*answers)`` the check of the exercise labelled ``label``."""

    def decorate(check: Callable[..., Verdict]) -> Callable[..., Verdict]:
        if label in _EXERCISES:
            raise ValueError(f"an exercise check is already registered for {label!r}")
        _EXERCISES[label] = check
        return check

    return decorate


def exercise(label: str, *answers, **named) -> Verdict:
    """Check the answer(s) to the book's exercise ``label`` (e.g. ``"ex-gpt-units"``)."""
    from . import exercises  # noqa: F401  (registers the book's exercise checks)

    if label not in _EXERCISES:
        known = ", ".join(sorted(_EXERCISES)) or "none yet"
        raise ValueError(
            f"no check is registered for exercise {label!r}; checks exist for: {known}"
        )
    return _EXERCISES[label](*answers, **named)
