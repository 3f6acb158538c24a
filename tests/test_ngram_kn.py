import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from fmbook.models.ngram import KneserNeyLM, NGramLM


class BruteForceKN:
    """Interpolated Kneser-Ney written with dictionaries, straight from the formulas."""

    def __init__(self, train, order, V, D):
        self.order, self.V, self.D = order, V, D
        grams = {m: Counter() for m in range(1, order + 1)}
        for m in range(1, order + 1):
            if m == order:
                for i in range(len(train) - m + 1):
                    grams[m][tuple(train[i : i + m])] += 1
            else:  # continuation count: distinct left neighbours of the m-gram
                left = defaultdict(set)
                for i in range(1, len(train) - m + 1):
                    left[tuple(train[i : i + m])].add(train[i - 1])
                grams[m] = Counter({g: len(s) for g, s in left.items()})
        self.grams = grams

    def prob(self, context, w):
        p = 1.0 / self.V
        for m in range(1, self.order + 1):
            h = tuple(context[len(context) - (m - 1) :]) if m > 1 else ()
            table = self.grams[m]
            total = sum(c for g, c in table.items() if g[:-1] == h)
            types = sum(1 for g, c in table.items() if g[:-1] == h and c > 0)
            if total > 0:
                p = (max(table[h + (w,)] - self.D, 0) + self.D * types * p) / total
        return p


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_brute_force(order):
    rng = np.random.default_rng(order)
    train, test = rng.integers(0, 5, 200).tolist(), rng.integers(0, 6, 60).tolist()
    lm = KneserNeyLM(order, 6, discount=0.6).fit(train)  # word 5 never occurs in train
    reference = BruteForceKN(train, order, 6, 0.6)
    expected = [
        math.log(reference.prob(test[i - order + 1 : i], test[i]))
        for i in range(order - 1, len(test))
    ]
    assert np.allclose(lm.log_probs(test), expected)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_sum_to_one_for_seen_and_unseen_contexts(order):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 4, 300)  # ids 4, 5 are never seen
    lm = KneserNeyLM(order, 6).fit(train)
    contexts = [train[: order - 1], [5] * (order - 1), [4, 0, 1][: order - 1]]
    for context in contexts:
        probs = np.exp(lm.next_log_probs(context))
        assert probs.sum() == pytest.approx(1.0)
        assert probs.min() > 0


def test_continuation_counts_favour_words_seen_in_many_contexts():
    # "a" (0) follows only "b" (1), but often; "c" (2) follows four different words once each
    train = [1, 0] * 20 + [3, 2, 4, 2, 5, 2, 6, 2]
    lm = KneserNeyLM(2, 8).fit(train)
    assert (train[:-1].count(1), train.count(2)) == (20, 4)
    unseen_context = [7]  # falls back to the lower order: continuation counts decide
    probs = np.exp(lm.next_log_probs(unseen_context))
    assert probs[2] > probs[0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="discount"):
        KneserNeyLM(2, 3, discount=0.0)
    with pytest.raises(ValueError, match="order"):
        KneserNeyLM(0, 3)
    with pytest.raises(RuntimeError, match="fit"):
        KneserNeyLM(2, 3).log_probs([0, 1])
    lm = KneserNeyLM(3, 3).fit([0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"\[0, vocab_size=3\)"):
        lm.log_probs([0, 1, 3])
    with pytest.raises(ValueError, match="context must hold order-1=2 ids"):
        lm.next_log_probs([0])


@pytest.fixture(scope="module")
def shakespeare_ids(data_mirror):
    from fmbook.data.shakespeare import load_text, split
    from fmbook.tokenizers.char import CharTokenizer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMBOOK_DATA_MIRROR", str(data_mirror))
        text = load_text()
    train, val = split(text)
    tok = CharTokenizer.train(text)
    return np.array(tok.encode(train)), np.array(tok.encode(val)), tok.vocab_size


# Measured (validation cross-entropy in nats per character, discount 0.75):
#   order 3: KN 2.041, add-1 2.068, best add-k 2.046 (k=0.1)
#   order 4: KN 1.722, add-1 1.953, best add-k 1.779 (k=0.03)
#   order 5: KN 1.566, add-1 2.174, best add-k 1.750 (k=0.03)
# At order 3 nearly every trigram of the validation text was seen, so smoothing matters
# little and the gain is small; it grows with the order as the counts get sparse.
MEASURED = {3: (2.041, 0.02, 0.002), 4: (1.722, 0.2, 0.04), 5: (1.566, 0.5, 0.15)}


@pytest.mark.parametrize("order", [3, 4, 5])
@pytest.mark.slow
def test_kneser_ney_beats_add_k_on_tiny_shakespeare(shakespeare_ids, order):
    train, val, V = shakespeare_ids
    kn = KneserNeyLM(order, V).fit(train).cross_entropy(val)
    grid = (1.0, 0.3, 0.1, 0.03, 0.01)
    add_k = {k: NGramLM(order, V, k=k).fit(train).cross_entropy(val) for k in grid}
    expected_kn, gain_over_add_one, gain_over_best_k = MEASURED[order]
    assert kn == pytest.approx(expected_kn, abs=2e-3)
    assert kn < add_k[1.0] - gain_over_add_one, (kn, add_k)
    assert kn < min(add_k.values()) - gain_over_best_k, (kn, add_k)
