import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import stats

from fmbook import privacy
from fmbook.models import GPT, GPTConfig
from fmbook.tokenizers import CharTokenizer

# Opacus's per-example gradients use full backward hooks, which PyTorch warns about
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook")


def brute_rank(scores, index):
    """Rank by sorting: the canary's position among the candidates sorted by score, with
    tied candidates placed in every possible order (the mean of its positions)."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i != index))
    first = order.index(index) + 1  # the canary before its ties
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i == index))
    last = order.index(index) + 1  # after them
    return (first + last) / 2


def test_rank_and_exposure_match_brute_force_on_a_toy_scorer():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 30, (200,), generator=g).double()  # many ties
    for index in range(0, 200, 7):
        expected = brute_rank(scores.tolist(), index)
        assert privacy.rank(scores, index) == expected
        assert privacy.exposure(scores, index) == pytest.approx(
            math.log2(200) - math.log2(expected)
        )


def test_exposure_is_log2_r_for_the_top_candidate_and_about_one_bit_for_ties():
    scores = torch.linspace(0, 1, 1000)
    assert privacy.rank(scores, 0) == 1
    assert privacy.exposure(scores, 0) == pytest.approx(math.log2(1000))
    assert privacy.exposure(scores, 999) == pytest.approx(0.0)
    flat = torch.zeros(1000)  # a model that knows nothing: mid-rank (|R| + 1) / 2
    assert privacy.rank(flat, 3) == 500.5
    assert privacy.exposure(flat, 3) == pytest.approx(math.log2(1000 / 500.5))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="not in the candidate space"):
        privacy.secret_index("12a4", 4)
    with pytest.raises(ValueError, match="not in the candidate space"):
        privacy.secret_index("123", 4)
    with pytest.raises(ValueError, match="not in the candidate space"):
        privacy.exposure(torch.zeros(10), 10)
    with pytest.raises(ValueError, match="1-D float"):
        privacy.exposure(torch.zeros(2, 5), 0)
    with pytest.raises(ValueError, match="repetition 0 < 1"):
        privacy.insert_canaries(["abcdefgh"] * 4, ["x1"], [0])
    with pytest.raises(ValueError, match="one repeat count per canary"):
        privacy.insert_canaries(["abcdefgh"] * 4, ["x1", "x2"], [1])
    with pytest.raises(ValueError, match="n_digits"):
        privacy.random_secrets(3, 0)


def test_secret_index_and_random_secrets():
    assert privacy.secret_index("0042", 4) == 42
    secrets = privacy.random_secrets(50, 3, seed=1)
    assert len(set(secrets)) == 50 and all(len(s) == 3 and s.isdigit() for s in secrets)
    assert secrets == privacy.random_secrets(50, 3, seed=1)


def test_insert_canaries_puts_each_copy_in_its_own_record():
    records = [f"{i:03d}" + "abcdefghijklmnop" for i in range(40)]
    out, holder = privacy.insert_canaries(records, ["pin 12", "pin 34"], [3, 5], seed=0)
    assert [len(r) for r in out] == [len(r) for r in records]
    assert holder.count(0) == 3 and holder.count(1) == 5
    for r, h in zip(out, holder, strict=True):
        if h >= 0:
            assert r.startswith(["pin 12", "pin 34"][h] + "\n")
        else:
            assert r in records


def tiny_gpt(vocab: int, seed: int = 0, positions: str = "rope") -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=vocab, max_len=16, n_layer=1, n_head=2, d_model=16, positions=positions
    )
    return GPT(cfg).eval()


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_secret_log_perplexities_match_full_sequence_scores(positions):
    tok = CharTokenizer("abc's pin" + privacy.DIGITS)
    model = tiny_gpt(tok.vocab_size, positions=positions)
    prefix, n = "abc's pin ", 3
    fast = privacy.secret_log_perplexities(model, tok, prefix, n, batch_size=7)
    assert fast.shape == (1000,)
    one = privacy.secret_log_perplexities(model, tok, prefix, 1)
    assert one.shape == (10,)
    assert torch.logsumexp(-one * math.log(2), 0).item() < 1e-6  # a distribution
    P = len(prefix)
    for i in (0, 7, 42, 123, 999):
        ids = torch.tensor([tok.encode(prefix + f"{i:03d}")])
        with torch.no_grad():
            logp = F.log_softmax(model(ids[:, :-1])[0], -1)[0]  # (T, V)
        nll = -logp[P - 1 :].gather(1, ids[0, P:, None]).sum() / math.log(2)
        assert fast[i].item() == pytest.approx(nll.item(), rel=1e-5)
    with pytest.raises(ValueError, match="non-empty"):
        privacy.secret_log_perplexities(model, tok, "", n)


def test_exposure_estimate_is_close_for_a_skew_normal_population():
    population = torch.tensor(stats.skewnorm.rvs(3.0, size=100_000, random_state=0))
    canary = 1  # a low-scoring candidate
    population[canary] = float(population.min()) + 0.01
    exact = privacy.exposure(population, canary)
    sample = population[torch.randperm(len(population))[:5000]]
    estimate = privacy.exposure_estimate(sample, population[canary].item())
    assert abs(estimate - exact) < 3.0  # in bits; exact here is about 16
    assert estimate > 10


def test_record_losses_and_membership_auc():
    model = tiny_gpt(10)
    ids = torch.randint(0, 10, (9, 8))
    losses = privacy.record_losses(model, ids, batch_size=4)
    with torch.no_grad():
        _, expected = model(ids[2:3, :-1], ids[2:3, 1:])
    assert losses[2].item() == pytest.approx(expected.item(), rel=1e-5)
    members, others = torch.tensor([0.1, 0.5, 0.9, 0.5]), torch.tensor([0.5, 0.7, 1.2])
    u = stats.mannwhitneyu(others, members).statistic  # pairs with member loss lower
    assert privacy.membership_auc(members, others) == pytest.approx(u / 12)
    assert privacy.membership_auc(members, members) == pytest.approx(0.5)


def per_sample_grads(model, x, y):
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, xi, yi):
        out = torch.func.functional_call(model, p, (xi[None],))
        return F.cross_entropy(out, yi[None])

    grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return [grads[k] for k, _ in model.named_parameters()]


def test_privatise_matches_opacus_clipping_and_noise_scale():
    from opacus.optimizers import DPOptimizer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(6, 5), torch.randint(0, 3, (6,))
    grads = per_sample_grads(model, x, y)
    mine = privacy.privatise(grads, max_norm=0.5, noise_multiplier=0.0, expected_batch_size=8)
    for p, g in zip(model.parameters(), grads, strict=True):
        p.grad_sample = g
    opt = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1),
        noise_multiplier=0.0,
        max_grad_norm=0.5,
        expected_batch_size=8,
    )
    opt.clip_and_accumulate()
    opt.add_noise()
    opt.scale_grad()
    for p, m in zip(model.parameters(), mine, strict=True):
        torch.testing.assert_close(p.grad, m)
    clipped = privacy.clip_per_example(grads, 0.5)
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in clipped], 1).norm(dim=1)
    assert (norms <= 0.5 + 1e-5).all()
    # noise: std sigma * C on the sum, so sigma * C / B on the result
    big = [torch.zeros(4, 20_000)]
    noisy = privacy.privatise(big, 1.5, 2.0, 4, generator=torch.Generator().manual_seed(0))
    assert noisy[0].std().item() == pytest.approx(2.0 * 1.5 / 4, rel=0.03)


def test_make_private_trains_a_gpt_without_the_secure_rng_warning():
    model = tiny_gpt(10)
    model.train()
    data = torch.randint(0, 10, (32, 9))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data[:, :-1], data[:, 1:]), batch_size=8
    )
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="rope"):
        privacy.make_private(
            tiny_gpt(10, positions="learned"), sgd, loader, noise_multiplier=1.0, max_grad_norm=1.0
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine, dp_model, opt, dp_loader = privacy.make_private(
            model,
            sgd,
            loader,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
        )
    assert not [w for w in caught if "Secure RNG" in str(w.message)]
    for x, y in dp_loader:
        if len(x) == 0:
            continue
        logits, _ = dp_model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    eps = engine.get_epsilon(1e-5)
    assert 0 < eps < float("inf")
