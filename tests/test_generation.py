import itertools
import math

import pytest
import torch

from fmbook.generation import (
    beam_search,
    greedy_next,
    greedy_search,
    sample_next,
    top_k_filter,
    top_p_filter,
)


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([0.05, 0.4, 0.1, 0.3, 0.15])  # sorted: 0.4, 0.3, 0.15, 0.1, 0.05
    logits = probs.log()
    kept = lambda p: torch.isfinite(top_p_filter(logits, p)).nonzero().view(-1).tolist()  # noqa: E731
    assert kept(0.4) == [1]  # the top token alone already has 0.4
    assert kept(0.5) == [1, 3]  # 0.4 < 0.5 <= 0.7
    assert kept(0.7) == [1, 3]  # exactly 0.7 is enough
    assert kept(0.71) == [1, 3, 4]  # 0.85
    assert kept(1.0) == [0, 1, 2, 3, 4]
    assert kept(1e-9) == [1]  # at least one token
    kept_logits = top_p_filter(logits, 0.5)
    assert torch.equal(kept_logits[[1, 3]], logits[[1, 3]])


def test_top_p_filters_each_row_of_a_batch():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    out = top_p_filter(logits, 0.8)
    assert torch.isfinite(out).tolist() == [[True, False, False], [False, False, True]]


def test_top_k_one_and_greedy_agree():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50, generator=g)
    greedy = greedy_next(logits)
    assert greedy.shape == (64,) and greedy.dtype == torch.long
    assert torch.equal(sample_next(logits, top_k=1, generator=g), greedy)
    assert torch.equal(sample_next(logits, temperature=0.5, top_p=1e-6, generator=g), greedy)
    assert torch.isfinite(top_k_filter(logits, 5)).sum(dim=-1).eq(5).all()


def test_sampling_follows_the_distribution():
    g = torch.Generator().manual_seed(1)
    probs = torch.tensor([0.5, 0.3, 0.2])
    draws = sample_next(probs.log().expand(20_000, 3), generator=g)
    freq = torch.bincount(draws, minlength=3).float() / draws.numel()
    sd = (probs * (1 - probs) / draws.numel()).sqrt()
    assert ((freq - probs).abs() < 5 * sd).all()
    hot = sample_next(probs.log().expand(20_000, 3), temperature=0.1, generator=g)
    assert (hot == 0).float().mean() > 0.99  # T -> 0 approaches greedy


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_sample_next_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_next(torch.zeros(2, 4), **kwargs)


def test_logits_must_be_float():
    with pytest.raises(ValueError, match="logits"):
        greedy_next(torch.zeros(2, 4, dtype=torch.long))


# ---------------------------------------------------------------------------- searches

V, L = 3, 4


def toy_step(prefixes: torch.Tensor) -> torch.Tensor:
    """Next-token log-probs of a fixed random table indexed by the whole prefix: a Markov
    chain on prefixes, where the greedy choice of the first token is a trap (see below)."""
    rows = []
    for p in prefixes.tolist():
        seed = hash(tuple(p)) % (2**31)
        logits = 2.0 * torch.randn(V, generator=torch.Generator().manual_seed(seed))
        if len(p) == 1:  # first token: 0 looks best, but everything after 0 is flat
            logits = torch.tensor([1.0, 0.6, 0.0])
        elif p[1] == 0:
            logits = torch.zeros(V)
        rows.append(logits.log_softmax(-1))
    return torch.stack(rows)


def exhaustive_best(step_fn, start, eos_id=None):
    """Score every sequence of L tokens (stopping at EOS) by brute force."""
    best, best_seq = -math.inf, None
    for tail in itertools.product(range(V), repeat=L):
        seq, score = list(start), 0.0
        for tok in tail:
            score += float(step_fn(torch.tensor([seq]))[0, tok])
            seq.append(tok)
            if tok == eos_id:
                break
        seq += [eos_id] * (len(start) + L - len(seq))
        if score > best + 1e-9:
            best, best_seq = score, seq
    return best_seq, best


def test_greedy_is_suboptimal_and_a_wide_beam_finds_the_optimum():
    start = torch.tensor([[7]])
    greedy = greedy_search(toy_step, start, max_len=L)
    assert greedy[0, 1] == 0  # greedy walks into the trap
    greedy_score = sum(float(toy_step(greedy[:, : t + 1])[0, greedy[0, t + 1]]) for t in range(L))
    best_seq, best = exhaustive_best(toy_step, [7])
    assert best > greedy_score + 0.1  # so the example does test something
    seqs, scores = beam_search(toy_step, start, beam_size=V ** (L - 1), max_len=L,
                               length_penalty=0.0)  # fmt: skip
    assert seqs[0].tolist() == best_seq
    assert float(scores[0]) == pytest.approx(best, abs=1e-5)
    narrow, _ = beam_search(toy_step, start, beam_size=2, max_len=L, length_penalty=0.0)
    assert narrow[0, 1] != 0  # two beams already escape the trap


def test_beam_search_with_eos_matches_exhaustive_search():
    eos = 2
    start = torch.tensor([[5]])
    best_seq, best = exhaustive_best(toy_step, [5], eos_id=eos)
    seqs, scores = beam_search(toy_step, start, beam_size=V**L, max_len=L, eos_id=eos,
                               length_penalty=0.0)  # fmt: skip
    assert seqs[0].tolist() == best_seq
    assert float(scores[0]) == pytest.approx(best, abs=1e-5)


def test_beam_size_one_equals_greedy_on_a_batch():
    table = torch.randn(6, 6, generator=torch.Generator().manual_seed(3)).log_softmax(-1)

    def bigram(prefixes):  # next token depends on the last one only
        return table[prefixes[:, -1]]

    start = torch.tensor([[0], [1], [4]])
    greedy = greedy_search(bigram, start, max_len=8, eos_id=5)
    beam, _ = beam_search(bigram, start, beam_size=1, max_len=8, eos_id=5)
    assert torch.equal(beam, greedy)
    for row in greedy.tolist():  # after the first EOS, only EOS
        if 5 in row:
            assert set(row[row.index(5) :]) == {5}


def test_beam_search_reorders_a_stateful_step_function():
    table = torch.randn(5, 5, generator=torch.Generator().manual_seed(4)).log_softmax(-1)
    state = {"last": None}

    def cached(prefixes):  # uses only state from earlier calls plus the newest token
        if state["last"] is not None:
            assert torch.equal(state["last"], prefixes[:, -2])
        state["last"] = prefixes[:, -1]
        return table[prefixes[:, -1]]

    def reorder(index):
        if state["last"] is not None:
            state["last"] = state["last"][index]

    start = torch.tensor([[0], [3]])
    seqs, _ = beam_search(cached, start, beam_size=3, max_len=5, reorder=reorder)
    plain, _ = beam_search(lambda p: table[p[:, -1]], start, beam_size=3, max_len=5)
    assert torch.equal(seqs, plain)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beam_size": 0}, "beam_size"),
        ({"max_len": 0}, "max_len"),
        ({"eos_id": -1}, "eos_id"),
        ({"length_penalty": -1.0}, "length_penalty"),
        ({"start": torch.zeros(2, 1)}, "start"),
        ({"start": torch.zeros(2, 0, dtype=torch.long)}, "start"),
        ({"step_fn": lambda p: torch.zeros(p.shape[0])}, "step_fn"),
    ],
)
def test_beam_search_rejects_bad_arguments(kwargs, match):
    args = {
        "step_fn": lambda p: torch.zeros(p.shape[0], 4),
        "start": torch.zeros(2, 1, dtype=torch.long),
        "beam_size": 2,
        "max_len": 3,
    } | kwargs
    with pytest.raises(ValueError, match=match):
        beam_search(**args)


def test_searches_drive_a_decoder_only_model_through_a_closure():
    from fmbook.models import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, max_len=16, n_layer=1, n_head=2, d_model=16)).eval()

    def step(prefixes):  # decoder-only: the whole prefix goes through the model
        return model(prefixes)[0][:, -1].log_softmax(-1)

    start = torch.tensor([[1, 2], [3, 4]])
    sampled = model.generate(start, 6, top_k=1)  # top-1 sampling is greedy decoding
    assert torch.equal(greedy_search(step, start, max_len=6), sampled)
    beam, scores = beam_search(step, start, beam_size=1, max_len=6, length_penalty=0.0)
    assert torch.equal(beam, sampled)
    wide, wide_scores = beam_search(step, start, beam_size=4, max_len=6, length_penalty=0.0)
    assert wide.shape == (2, 8)
    logp = step_all(model, wide)[:, 1:-1].gather(-1, wide[:, 2:, None]).squeeze(-1)  # (2, 6)
    torch.testing.assert_close(wide_scores, logp.sum(dim=1), atol=1e-4, rtol=1e-4)


def step_all(model, seqs):
    """Log-probs of the next token at every position of seqs: (B, T) -> (B, T, V)."""
    return model(seqs)[0].log_softmax(-1)


def test_sample_next_on_one_row_draws_what_a_hand_written_top_k_sampler_draws():
    """The masked-LM chapter's sampler was this helper; sample_next replaced it draw for draw."""

    def top_k_sample(logits, generator, temperature=0.8, k=10):
        logits = logits / temperature
        logits = logits.masked_fill(logits < torch.topk(logits, k).values[-1], float("-inf"))
        return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))

    logits = 3 * torch.randn(68, generator=torch.Generator().manual_seed(0))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    ours = [int(sample_next(logits, 0.8, top_k=10, generator=g2)) for _ in range(300)]
    assert ours == [top_k_sample(logits, g1) for _ in range(300)]
    assert sample_next(logits, generator=g2).shape == ()  # (V,) -> one id, a 0-d tensor


def test_gpt_generate_samples_with_sample_next_and_restores_train_mode_on_error(monkeypatch):
    import fmbook.generation as generation_module
    from fmbook.models import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, max_len=8, n_layer=1, n_head=2, d_model=16))
    start = torch.tensor([[1, 2], [3, 4]])
    out = model.generate(
        start, 10, temperature=0.7, top_k=5, generator=torch.Generator().manual_seed(0)
    )
    g, idx = torch.Generator().manual_seed(0), start
    model.eval()
    with torch.no_grad():
        for _ in range(10):
            logits = model(idx[:, -8:])[0][:, -1]  # (B, V)
            idx = torch.cat((idx, sample_next(logits, 0.7, top_k=5, generator=g)[:, None]), dim=1)
    assert torch.equal(out, idx)

    def fail(*args, **kwargs):
        raise RuntimeError("sampling failed")

    model.train()
    monkeypatch.setattr(generation_module, "sample_next", fail)  # GPT.generate uses it
    with pytest.raises(RuntimeError, match="sampling failed"):
        model.generate(start, 3)
    assert model.training  # restored although generation failed
