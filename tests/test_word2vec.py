import math

import pytest
import torch

from fmbook.data.skipgram import (
    NegativeSampler,
    SkipGramDataModule,
    keep_probabilities,
    skipgram_pairs,
    subsample,
)
from fmbook.models.word2vec import (
    SkipGramNS,
    cooccurrence_matrix,
    most_similar,
    sgns_loss_and_grads,
    shifted_pmi,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def log_sigmoid(x):
    return -math.log1p(math.exp(-x))


# ---------------------------------------------------------------------------- the loss


@pytest.mark.parametrize(
    "seed, lead, k, d", [(0, (), 1, 3), (1, (), 5, 4), (2, (7,), 3, 6), (3, (2, 3), 2, 5)]
)
def test_analytic_gradients_equal_autograd(seed, lead, k, d):
    g = torch.Generator().manual_seed(seed)
    v_c, u_o = (torch.randn(*lead, d, generator=g, dtype=torch.float64) for _ in range(2))
    u_neg = torch.randn(*lead, k, d, generator=g, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (v_c, u_o, u_neg)]
    loss, *analytic = sgns_loss_and_grads(v_c, u_o, u_neg)
    auto_loss = sgns_loss_and_grads(*leaves)[0]
    auto = torch.autograd.grad(auto_loss.sum(), leaves)
    assert loss.shape == lead
    assert torch.allclose(loss, auto_loss)
    for mine, ref in zip(analytic, auto, strict=True):
        assert torch.allclose(mine, ref, atol=1e-12)


def test_gradcheck_on_the_loss():
    g = torch.Generator().manual_seed(0)
    args = [
        torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True),
        torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True),
        torch.randn(4, 2, 3, generator=g, dtype=torch.float64, requires_grad=True),
    ]
    assert torch.autograd.gradcheck(lambda *a: sgns_loss_and_grads(*a)[0], args)


def test_loss_equals_the_formula_on_a_hand_example():
    # s_o = u_o.v_c = 2, s_1 = 0, s_2 = -1
    v_c, u_o = torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0])
    u_neg = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    expected = -(log_sigmoid(2.0) + log_sigmoid(-0.0) + log_sigmoid(1.0))
    loss, grad_v, grad_o, grad_neg = sgns_loss_and_grads(v_c, u_o, u_neg)
    assert loss.item() == pytest.approx(expected)
    sig = torch.sigmoid(torch.tensor([2.0, 0.0, -1.0]))
    assert torch.allclose(grad_o, -(1 - sig[0]) * v_c)
    assert torch.allclose(grad_neg, sig[1:, None] * v_c)
    # the model computes the same loss from its embedding tables
    model = SkipGramNS(4, 2)
    with torch.no_grad():
        model.V.weight[0] = v_c
        model.U.weight[1], model.U.weight[2], model.U.weight[3] = u_o, u_neg[0], u_neg[1]
    batch = model(torch.tensor([0, 0]), torch.tensor([1, 1]), torch.tensor([[2, 3], [2, 3]]))
    assert batch.item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------------- data helpers


def test_pairs_within_the_window():
    centers, contexts = skipgram_pairs([10, 11, 12], window=1)
    pairs = sorted(zip(centers.tolist(), contexts.tolist(), strict=True))
    assert pairs == [(10, 11), (11, 10), (11, 12), (12, 11)]
    centers, _ = skipgram_pairs(torch.arange(10), window=3)
    assert len(centers) == 2 * (9 + 8 + 7)
    g = torch.Generator().manual_seed(0)
    dyn_c, dyn_o = skipgram_pairs(torch.arange(50), window=3, dynamic=True, generator=g)
    assert 0 < len(dyn_c) < 2 * (49 + 48 + 47)
    assert ((dyn_c - dyn_o).abs() <= 3).all() and (dyn_c != dyn_o).all()


def test_subsampling_follows_mikolovs_formula():
    keep = keep_probabilities([90, 9, 1], t=0.01)  # f = 0.9, 0.09, 0.01
    assert torch.allclose(keep, torch.tensor([math.sqrt(0.01 / 0.9), 1 / 3, 1.0], dtype=keep.dtype))
    ids = torch.tensor([0] * 9000 + [1] * 900 + [2] * 100)
    kept = subsample(ids, t=0.01, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(kept, minlength=3)
    assert counts[2] == 100
    assert abs(counts[0] / 9000 - math.sqrt(0.01 / 0.9)) < 0.02
    assert abs(counts[1] / 900 - 1 / 3) < 0.05


def test_negative_sampler_uses_unigram_to_the_three_quarters():
    counts = torch.tensor([1000.0, 100.0, 10.0, 0.0])
    sampler = NegativeSampler(counts, generator=torch.Generator().manual_seed(0))
    expected = counts**0.75 / (counts**0.75).sum()
    assert torch.allclose(sampler.probs, expected.double())
    draws = sampler.sample(200, 50)
    assert draws.shape == (200, 50) and draws.dtype == torch.long
    freq = torch.bincount(draws.flatten(), minlength=4).double() / draws.numel()
    assert (freq - expected.double()).abs().max() < 0.01 and freq[3] == 0
    again = NegativeSampler(counts, generator=torch.Generator().manual_seed(0)).sample(200, 50)
    assert torch.equal(draws, again)


def test_the_alias_table_gives_exactly_the_noise_distribution():
    from fmbook.data.skipgram import _alias_table

    counts = torch.randint(0, 50, (300,)).double() ** 2
    probs = NegativeSampler(counts).probs
    keep, alias = _alias_table(probs)
    # column i (chosen with probability 1/n) gives i with prob keep[i], else alias[i]
    implied = keep.clone().index_add_(0, alias, 1 - keep) / len(probs)
    assert torch.allclose(implied, probs, atol=1e-12)


def test_most_similar_by_cosine():
    vectors = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    idx, sims = most_similar(vectors, 0, k=2)
    assert idx.tolist() == [1, 2]
    assert sims[0].item() == pytest.approx(10 / math.sqrt(101))


def test_shifted_pmi_on_a_hand_example():
    counts = torch.tensor([[2.0, 1.0], [1.0, 0.0]])  # |D| = 4, #c = #o = (3, 1)
    spmi = shifted_pmi(counts, k=2)
    assert spmi[0, 0].item() == pytest.approx(math.log(2 * 4 / (3 * 3)) - math.log(2))
    assert spmi[0, 1].item() == pytest.approx(math.log(1 * 4 / (3 * 1)) - math.log(2))
    assert spmi[1, 1].item() == -math.inf


# ---------------------------------------------------------------------------- training


def two_topic_corpus(n_blocks=60, block=40, seed=0):
    """Words 0-7 form topic A, 8-15 topic B; the text alternates long single-topic blocks."""
    g = torch.Generator().manual_seed(seed)
    blocks = [torch.randint(0, 8, (block,), generator=g) + 8 * (i % 2) for i in range(n_blocks)]
    return torch.cat(blocks)


def test_training_puts_same_topic_words_nearest():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    centers, contexts = skipgram_pairs(two_topic_corpus(), window=2)
    sampler = NegativeSampler(torch.bincount(centers), generator=g)
    model = SkipGramNS(16, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(300):
        i = torch.randint(0, len(centers), (256,), generator=g)
        loss = model(centers[i], contexts[i], sampler.sample(256, 5))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.8 * losses[0]
    vectors = model.word_vectors()
    for word in range(16):
        neighbours, _ = most_similar(vectors, word, k=5)
        assert all(n // 8 == word // 8 for n in neighbours.tolist()), (word, neighbours)


def markov_corpus(vocab=8, n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    transition = torch.rand(vocab, vocab, generator=g) ** 4 + 0.02
    transition /= transition.sum(1, keepdim=True)
    steps = torch.rand(n, generator=g)
    cumulative, ids = transition.cumsum(1), [0]
    for u in steps.tolist():
        ids.append(min(int((cumulative[ids[-1]] < u).sum()), vocab - 1))
    return torch.tensor(ids)


@pytest.mark.parametrize("power", [1.0, 0.75])
def test_full_batch_sgns_converges_to_shifted_pmi(power):
    """Levy & Goldberg (2014): with dim >= vocab, the optimum is u_o.v_c = PMI(c,o) - log k
    (for noise = context distribution; with count**0.75 the shift changes accordingly)."""
    torch.manual_seed(0)
    counts = cooccurrence_matrix(*skipgram_pairs(markov_corpus(), window=2), vocab_size=8)
    assert counts.min() > 0  # every pair co-occurs, so the optimum is finite
    noise = counts.sum(0) ** power
    noise /= noise.sum()
    target = shifted_pmi(counts, k=3, noise=noise)
    if power == 1.0:
        assert torch.allclose(target, shifted_pmi(counts, k=3))
    assert target.max() - target.min() > 1.5  # the corpus has structure worth recovering
    model = SkipGramNS(8, 8).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(600):
        optimizer.zero_grad()
        model.expected_loss(counts, k=3, noise=noise).backward()
        optimizer.step()
    assert (model.scores().detach() - target).abs().max() < 1e-3


def test_softmax_and_sgns_objectives_have_different_optima():
    """Negative sampling replaces the softmax objective: at the softmax optimum the scores
    give p(o | c) = #(c,o) / #c; at the SGNS optimum they are PMI - log k, whose row
    softmax is not p(o | c)."""
    torch.manual_seed(0)
    counts = cooccurrence_matrix(*skipgram_pairs(markov_corpus(), window=2), vocab_size=8)
    p_o_given_c = counts / counts.sum(1, keepdim=True)
    fitted = {}
    for name in ("softmax", "sgns"):
        model = SkipGramNS(8, 8).double()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        for _ in range(600):
            optimizer.zero_grad()
            loss = (
                model.expected_softmax_loss(counts)
                if name == "softmax"
                else model.expected_loss(counts, k=3)
            )
            loss.backward()
            optimizer.step()
        fitted[name] = model.scores().detach()
    softmax_p = fitted["softmax"].softmax(1)
    assert (softmax_p - p_o_given_c).abs().max() < 1e-4
    entropy = -(counts * p_o_given_c.log()).sum() / counts.sum()
    model = SkipGramNS(8, 8).double()
    with torch.no_grad():  # the softmax loss at its optimum is the conditional entropy
        model.V.weight.copy_(torch.eye(8, dtype=torch.float64))
        model.U.weight.copy_(p_o_given_c.log().T)
    assert model.expected_softmax_loss(counts).item() == pytest.approx(entropy.item())
    assert (fitted["sgns"] - shifted_pmi(counts, k=3)).abs().max() < 1e-3
    assert (fitted["sgns"].softmax(1) - p_o_given_c).abs().max() > 0.05


@pytest.mark.slow
def test_sampled_sgns_correlates_with_shifted_pmi():
    """The same with sampled negatives (noise = context distribution) and minibatches:
    noisier, so only a correlation is checked."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    centers, contexts = skipgram_pairs(markov_corpus(), window=2)
    target = shifted_pmi(cooccurrence_matrix(centers, contexts, 8), k=3)
    sampler = NegativeSampler(torch.bincount(contexts), power=1.0, generator=g)
    model = SkipGramNS(8, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(800):
        i = torch.randint(0, len(centers), (512,), generator=g)
        optimizer.zero_grad()
        model(centers[i], contexts[i], sampler.sample(512, 3)).backward()
        optimizer.step()
    scores = model.scores().detach().double().flatten()
    assert torch.corrcoef(torch.stack([scores, target.flatten()]))[0, 1] > 0.95


# ---------------------------------------------------------------------------- bad input


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="u_neg must have shape"):
        sgns_loss_and_grads(torch.zeros(3), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        sgns_loss_and_grads(torch.zeros(3), torch.zeros(4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="dim"):
        SkipGramNS(10, 0)
    model = SkipGramNS(10, 4)
    with pytest.raises(ValueError, match=r"negatives must lie in \[0, vocab_size=10\)"):
        model(torch.tensor([0]), torch.tensor([1]), torch.tensor([[10]]))
    with pytest.raises(ValueError, match="batch size"):
        model(torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([[2]]))
    with pytest.raises(ValueError, match="window"):
        skipgram_pairs([1, 2, 3], window=0)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        skipgram_pairs([1], window=2)
    with pytest.raises(ValueError, match="t must be > 0"):
        keep_probabilities([1, 2], t=0)
    with pytest.raises(ValueError, match="power"):
        NegativeSampler([1, 2], power=-1)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        shifted_pmi(torch.ones(2, 2), k=0)
    with pytest.raises(ValueError, match="idx"):
        most_similar(torch.ones(3, 2), 3)


# ---------------------------------------------------------------------------- Lightning task


def test_datamodule_batches_pairs_with_negatives():
    ids = two_topic_corpus(n_blocks=10)
    dm = SkipGramDataModule(ids, 16, window=2, negatives=4, batch_size=32, subsample_t=0.05)
    dm.setup()
    center, context, negatives = next(iter(dm.train_dataloader()))
    assert center.shape == context.shape == (32,) and negatives.shape == (32, 4)
    assert negatives.dtype == torch.long and 0 <= negatives.min() and negatives.max() < 16
    assert dm.val_dataloader() == []  # no val_ids: Lightning skips validation
    assert len(dm.train_pairs) < 4 * len(ids)  # subsampling dropped some tokens
    with pytest.raises(ValueError, match=r"train_ids must hold >= 2 ids in \[0, vocab_size=8\)"):
        SkipGramDataModule(ids, 8)


def test_datamodule_redraws_the_pairs_every_epoch():
    ids = two_topic_corpus(n_blocks=10)
    dm = SkipGramDataModule(ids, 16, window=3, batch_size=64, subsample_t=0.05, seed=1)
    dm.setup()
    first = dm.train_pairs
    loader = dm.train_dataloader()
    epoch1 = torch.cat([torch.stack(b[:2], 1) for b in loader])
    assert torch.equal(dm.train_pairs, first)  # the first pass serves the pairs of setup
    epoch2 = torch.cat([torch.stack(b[:2], 1) for b in loader])
    assert dm.train_pairs is not first  # the second pass drew new ones
    assert sorted(map(tuple, epoch1.tolist())) == sorted(map(tuple, first.tolist()))
    assert sorted(map(tuple, epoch2.tolist())) == sorted(map(tuple, dm.train_pairs.tolist()))
    assert not torch.equal(epoch1[:100], epoch2[:100])
    assert len(epoch1) != len(epoch2)  # subsampling and windows drawn afresh
    # reproducible from the seed
    again = SkipGramDataModule(ids, 16, window=3, batch_size=64, subsample_t=0.05, seed=1)
    again.setup()
    loader = again.train_dataloader()
    list(loader)
    assert torch.equal(torch.cat([torch.stack(b[:2], 1) for b in loader]), epoch2)


def test_lightning_runs_every_epoch_on_fresh_pairs():
    from fmbook.tasks import make_trainer
    from fmbook.tasks.skipgram import SkipGram

    ids = two_topic_corpus(n_blocks=10)
    dm = SkipGramDataModule(ids, 16, window=2, batch_size=128, subsample_t=0.05)
    draws = []
    dm.draw_pairs = lambda draw=dm.draw_pairs: draws.append(draw()) or draws[-1]
    trainer = make_trainer(max_steps=10**6, val_every=10**6, max_epochs=3, accelerator="cpu")
    trainer.fit(SkipGram(16, 4), dm)
    assert len(draws) == 3  # setup (epoch 1), then epochs 2 and 3
    assert trainer.global_step == sum(-(-len(p) // 128) for p in draws)


@pytest.mark.parametrize("optimizer", ["sparse_adam", "adam"])
def test_skipgram_task_lowers_the_loss(optimizer):
    from fmbook.tasks import evaluate, make_trainer
    from fmbook.tasks.skipgram import SkipGram

    torch.manual_seed(0)
    ids = two_topic_corpus()
    dm = SkipGramDataModule(
        ids, 16, val_ids=two_topic_corpus(seed=1)[:800], window=2, batch_size=256
    )
    task = SkipGram(16, 10, lr=0.02, optimizer=optimizer)
    before = evaluate(task, dm)
    assert before == pytest.approx(6 * math.log(2), abs=1e-3)  # U starts at zero: (K+1) log 2
    make_trainer(max_steps=40, val_every=40).fit(task, dm)
    assert evaluate(task, dm) < 0.75 * before
    assert task.word_vectors().shape == (16, 10)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        SkipGram(16, 10, optimizer="sgd")


def _epochs(dm, n_epochs):
    """The (centre, context) pairs served in each of ``n_epochs`` passes, as (N, 2)."""
    loader = dm.train_dataloader()
    return [torch.cat([torch.stack(b[:2], 1) for b in loader]) for _ in range(n_epochs)]


def test_dynamic_window_weights_distance_j_by_m_plus_1_minus_j_over_m():
    """word2vec.c draws each centre's reach b uniformly from 1..m, so a pair at distance j
    is kept with probability P(b >= j) = (m + 1 - j) / m: 1, 0.8, 0.6, 0.4, 0.2 for m = 5.
    The data module draws the reaches afresh in every epoch (no subsampling here)."""
    n, m = 20_000, 5
    dm = SkipGramDataModule(torch.arange(n), n, window=m, batch_size=8192, seed=0)
    dm.setup()
    epochs = _epochs(dm, 2)
    j = torch.arange(1, m + 1, dtype=torch.float64)
    possible = 2 * (n - j)  # positions with a partner at distance j, on both sides
    weight = (m + 1 - j) / m
    sd = (possible * weight * (1 - weight)).sqrt()
    for pairs in epochs:  # ids are positions, so o - c is the offset
        observed = torch.bincount((pairs[:, 1] - pairs[:, 0]).abs(), minlength=m + 1)[1:]
        assert ((observed - possible * weight).abs() <= 5 * sd + 1e-9).all(), observed
    first, second = (set(map(tuple, p.tolist())) for p in epochs)
    assert first != second  # new reaches in epoch 2
    # a centre keeps its reach within an epoch: its pairs are all distances up to b
    c, o = epochs[1][:, 0], epochs[1][:, 1]
    reach = torch.zeros(n, dtype=torch.long).scatter_reduce(0, c, (o - c).abs(), "amax")
    assert torch.bincount(c, minlength=n)[m:-m].tolist() == (2 * reach[m:-m]).tolist()
    full = SkipGramDataModule(torch.arange(n), n, window=m, dynamic_window=False)
    full.setup()
    fixed = torch.bincount((full.train_pairs[:, 1] - full.train_pairs[:, 0]).abs())[1:]
    assert torch.equal(fixed.double(), possible)  # the fixed window weights all j alike


def test_subsampling_is_drawn_afresh_every_epoch():
    """Word 0 fills every other position (f = 1/2); t = 1/8 keeps it with probability
    sqrt(t / f) = 1/2, the rare words always. Fixed window, so only subsampling varies."""
    n, m = 20_000, 2
    ids = torch.where(torch.arange(n) % 2 == 0, 0, torch.arange(n) // 2 + 1)
    dm = SkipGramDataModule(
        ids, n // 2 + 1, window=m, dynamic_window=False, subsample_t=1 / 8, seed=0
    )
    dm.setup()
    epochs = _epochs(dm, 3)
    kept = []
    for pairs in epochs:
        rare = pairs[:, 0] != 0
        assert torch.equal(  # every rare word is kept: 2m pairs each (bar the edges)
            torch.bincount(pairs[rare, 0], minlength=n // 2 + 1)[5:-5],
            torch.full((n // 2 - 9,), 2 * m),
        )
        kept.append((pairs[:, 0] == 0).sum().item() / (2 * m))  # kept copies of word 0
    sd = math.sqrt(n / 2 * 0.25)
    assert all(abs(k - n / 4) < 5 * sd + 1 for k in kept), kept
    assert len(set(kept)) == 3  # each epoch kept a different number of copies


def test_validation_pairs_are_drawn_like_training_pairs_with_fixed_negatives():
    """Validation estimates the training objective on held-out text: subsampled with the
    training counts and dynamic windows, drawn once; every pass has the same negatives."""
    ids = two_topic_corpus(n_blocks=20)
    val_ids = two_topic_corpus(n_blocks=10, seed=1)
    dm = SkipGramDataModule(ids, 16, val_ids=val_ids, window=3, subsample_t=0.01, seed=0)
    dm.setup()
    full_window = 2 * (3 * len(val_ids) - 6)
    assert 0 < len(dm.val_pairs) < 0.5 * full_window  # subsampling and dynamic windows
    first, second = list(dm.val_dataloader()), list(dm.val_dataloader())
    for a, b in zip(first, second, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    list(dm.train_dataloader())  # training draws do not move the validation negatives
    third = list(dm.val_dataloader())
    assert all(torch.equal(a[2], c[2]) for a, c in zip(first, third, strict=True))
    again = SkipGramDataModule(ids, 16, val_ids=val_ids, window=3, subsample_t=0.01, seed=0)
    again.setup()
    assert torch.equal(again.val_pairs, dm.val_pairs)
