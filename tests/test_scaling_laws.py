"""fmbook.scaling_laws: the Chinchilla fit on synthetic data, the scores, a tiny grid."""

import itertools
import json
import math

import numpy as np
import pytest
import torch

from fmbook import scaling_laws as sl
from fmbook.models import GPTConfig
from fmbook.models.counting import gpt_non_embedding_params
from fmbook.scaling_laws import ScalingLaw

TRUE = ScalingLaw(E=1.3, A=60.0, B=400.0, alpha=0.45, beta=0.38)


def synthetic(law=TRUE, noise=0.005, seed=0):
    """Runs on a 6 x 3 grid like the chapter's, losses from ``law`` times log-normal noise."""
    rng = np.random.default_rng(seed)
    N, D = map(
        np.array,
        zip(
            *itertools.product(np.geomspace(7e3, 8e5, 6), np.geomspace(4e5, 3.3e6, 4)), strict=True
        ),
    )
    L = law.loss(N, D) * np.exp(rng.normal(0, noise, len(N)))
    return N, D, L


def test_fit_recovers_exact_law():
    N, D, L = synthetic(noise=0.0)
    law = sl.fit(N, D, L)
    for name in ("E", "alpha", "beta"):
        assert getattr(law, name) == pytest.approx(getattr(TRUE, name), rel=0.02)
    assert np.allclose(law.loss(N, D), L, rtol=1e-3)


def test_fit_recovers_noisy_law_and_predicts_larger_run():
    N, D, L = synthetic(noise=0.005)
    law = sl.fit(N, D, L)
    assert law.alpha == pytest.approx(TRUE.alpha, abs=0.1)
    assert law.beta == pytest.approx(TRUE.beta, abs=0.1)
    assert law.E == pytest.approx(TRUE.E, abs=0.1)
    big = law.loss(1.6e6, 1.6e6)  # a four times larger model, as in the chapter
    assert big == pytest.approx(TRUE.loss(1.6e6, 1.6e6), rel=0.02)


def test_bootstrap_intervals_contain_truth():
    N, D, L = synthetic(noise=0.005, seed=1)
    ci = sl.bootstrap(N, D, L, n_boot=40, seed=0, starts=4)
    for name in ("alpha", "beta", "E"):
        low, high = ci[name]
        assert low <= getattr(TRUE, name) <= high, (name, ci[name])
    assert len(ci["samples"]) == 40
    assert ci["a"][0] < TRUE.a < ci["a"][1]


def test_fit_refuses_too_few_points():
    N, D, L = synthetic(noise=0.0)
    with pytest.raises(ValueError, match="at least 5 runs"):
        sl.fit(N[:4], D[:4], L[:4])
    with pytest.raises(ValueError, match="same length"):
        sl.fit(N, D[:5], L)
    with pytest.raises(ValueError, match="positive"):
        sl.fit(-N, D, L)
    sl.fit(N[:5], D[:5], L[:5], starts=2)  # five runs, five parameters: allowed


def test_huber_and_gradient():
    r = np.array([-2.0, -1e-4, 0.0, 5e-4, 3.0])
    h = sl.huber(r, 1e-3)
    assert h[2] == 0 and h[3] == pytest.approx(0.5 * 25e-8)
    assert h[4] == pytest.approx(1e-3 * (3.0 - 0.5e-3))
    N, D, L = synthetic(noise=0.01)
    args = (np.log(N), np.log(D), np.log(L), 0.05)
    theta = np.array([4.0, 6.0, 0.2, 0.4, 0.4])
    f, g = sl._objective(theta, *args)
    for i in range(5):
        step = np.zeros(5)
        step[i] = 1e-6
        numeric = sl._objective(theta + step, *args)[0] - sl._objective(theta - step, *args)[0]
        assert g[i] == pytest.approx(numeric / 2e-6, rel=1e-4, abs=1e-8)


def test_compute_optimal_minimises_loss_at_fixed_compute():
    C = 1e15
    n_opt, d_opt = TRUE.compute_optimal(C)
    assert 6 * n_opt * d_opt == pytest.approx(C)
    N = np.geomspace(n_opt / 10, n_opt * 10, 2001)
    best = N[np.argmin(TRUE.loss(N, C / (6 * N)))]
    assert best == pytest.approx(n_opt, rel=0.01)
    assert TRUE.a == pytest.approx(0.38 / 0.83) and TRUE.a + TRUE.b == pytest.approx(1)
    # doubling compute multiplies N_opt by 2^a
    assert TRUE.compute_optimal(2 * C)[0] / n_opt == pytest.approx(2**TRUE.a)


def test_non_embedding_params():
    cfg = GPTConfig(vocab_size=65, max_len=64, n_layer=2, n_head=2, d_model=32)
    assert gpt_non_embedding_params(cfg) == 2 * (12 * 32**2 + 13 * 32) + 2 * 32
    rope = GPTConfig(
        vocab_size=65,
        max_len=64,
        n_layer=2,
        n_head=2,
        d_model=32,
        positions="rope",
        tie_embeddings=False,
    )
    assert gpt_non_embedding_params(rope) == gpt_non_embedding_params(cfg) + 65 * 32


class Perfect(torch.nn.Module):
    """Predicts ``ids`` exactly except where ``wrong`` (a set of target positions) says."""

    def __init__(self, ids, wrong, vocab):
        super().__init__()
        self.ids, self.wrong, self.vocab = ids, wrong, vocab

    def forward(self, x):
        logits = torch.zeros(*x.shape, self.vocab)
        for b in range(x.shape[0]):
            for t in range(x.shape[1]):
                pos = self.offset + b * x.shape[1] + t + 1  # the target's index in ids
                target = int(self.ids[pos])
                logits[b, t, (target + 1) % self.vocab if pos in self.wrong else target] = 5
        self.offset += x.numel()
        return logits, None


def test_score_exact_match_and_words():
    # vocab: 0 = space, 1..3 letters; windows of 8 targets
    ids = torch.tensor([0, 1, 2, 0, 3, 3, 1, 0, 2, 1, 0, 1, 3, 2, 0, 1, 2])
    word = torch.tensor([False, True, True, True])
    model = Perfect(ids, wrong={5}, vocab=4)
    model.offset = 0
    out = sl.score(model, ids, 8, word, ks=(1, 2))
    assert out["accuracy"] == pytest.approx(15 / 16)
    assert out["match_2"] == pytest.approx(12 / 14)  # pairs (4,5) and (5,6) miss
    # words inside windows: [1 2] right, [3 3 1] wrong; [1 3 2] right; [1 2] at the end
    # of the second window runs past it and is not scored; [2 1] starts the window: no
    assert out["word_match"] == pytest.approx(2 / 3)
    assert out["loss"] > 0 and out["loss_se"] >= 0


def test_train_run_and_build_tiny(tmp_path, monkeypatch):
    tiny = sl.Size(1, 2, 16)
    monkeypatch.setattr(sl, "GRID", ((tiny, 3), (tiny, 6)))
    record = sl.main(["build", "--out", str(tmp_path / "g.json"), "--val-tokens", "2000"])
    on_disk = json.loads((tmp_path / "g.json").read_text())
    assert on_disk["schema"] == sl.SCHEMA and len(on_disk["runs"]) == 2
    sl.check_record(on_disk)
    run = record["runs"][1]
    assert run["D"] == 6 * sl.BATCH_SIZE * sl.BLOCK_SIZE and run["val_tokens"] == 1984
    assert run["loss"] < math.log(65) + 0.5 and run["cpu_seconds"] > 0
    again = sl.train_run(tiny, 6, 0, val_tokens=2000)  # one thread: the same numbers
    assert again["loss"] == pytest.approx(run["loss"], abs=1e-5)
    trained = []
    monkeypatch.setattr(sl, "train_run", lambda *a, **k: trained.append(a) or again)
    resumed = sl.main(["build", "--out", str(tmp_path / "g.json"), "--val-tokens", "2000"])
    assert trained == [] and resumed["runs"] == record["runs"]  # nothing trained again
    on_disk["recipe"]["hashes"][tiny.name] = "0" * 12
    with pytest.raises(ValueError, match="stale"):
        sl.check_record(on_disk)
    with pytest.raises(ValueError, match="schema"):
        sl.check_record({**on_disk, "schema": 0})
