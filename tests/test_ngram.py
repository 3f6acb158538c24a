import math
from collections import Counter

import numpy as np
import pytest

from fmbook.models.ngram import NGramLM


def brute_force_log_probs(train, test, order, V, k):
    grams = Counter(tuple(train[i : i + order]) for i in range(len(train) - order + 1))
    ctxs = Counter(tuple(train[i : i + order - 1]) for i in range(len(train) - order + 1))
    out = []
    for i in range(order - 1, len(test)):
        c, w = tuple(test[i - order + 1 : i]), test[i]
        ctx_count = ctxs[c] if order > 1 else len(train)
        out.append(math.log((grams[c + (w,)] + k) / (ctx_count + k * V)))
    return np.array(out)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_brute_force_counts(order):
    rng = np.random.default_rng(order)
    train, test = rng.integers(0, 5, 300).tolist(), rng.integers(0, 5, 80).tolist()
    lm = NGramLM(order, 5, k=0.5).fit(train)
    expected = brute_force_log_probs(train, test, order, 5, 0.5)
    assert np.allclose(lm.log_probs(test), expected)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_probabilities_sum_to_one_for_every_context(order):
    rng = np.random.default_rng(0)
    lm = NGramLM(order, 4, k=0.1).fit(rng.integers(0, 4, 200))
    ctx = [1, 2][: order - 1]
    total = sum(math.exp(lm.log_probs(ctx + [w])[-1]) for w in range(4))
    assert total == pytest.approx(1.0)


def test_cross_entropy_perplexity_and_unseen():
    lm = NGramLM(2, 3, k=1.0).fit([0, 1, 2, 0, 1, 2, 0, 1])
    assert lm.perplexity([0, 1, 2]) == pytest.approx(math.exp(lm.cross_entropy([0, 1, 2])))
    assert lm.unseen_fraction([0, 1, 2]) == 0.0
    assert lm.unseen_fraction([0, 0, 2, 2]) == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [({"order": 0}, "order"), ({"vocab_size": 0}, "vocab_size"), ({"k": 0.0}, "k must be > 0")],
)
def test_bad_arguments(kwargs, match):
    args = {"order": 2, "vocab_size": 3, "k": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        NGramLM(**args)


def test_bad_ids_and_unfitted():
    lm = NGramLM(2, 3)
    with pytest.raises(RuntimeError, match="fit"):
        lm.log_probs([0, 1])
    with pytest.raises(ValueError, match=r"\[0, vocab_size=3\)"):
        lm.fit([0, 3])
