"""Induction heads: the repeated-segment data, the attention-only model, the
prefix-matching score and head ablation (chapter 7-trends/in-context-learning)."""

import pytest
import torch

from fmbook.data.repeats import RepeatedSegments, RepeatsDataModule
from fmbook.interpret import (
    InductionMonitor,
    ablate_heads,
    masked_loss,
    prefix_matching_chance,
    prefix_matching_score,
    record_attention,
)
from fmbook.models import AttnOnlyConfig, AttnOnlyTransformer


def test_segment_really_repeats():
    data = RepeatedSegments(50, seq_len=40, vocab_size=16, seg_len=(5, 12), seed=3)
    for i in range(len(data)):
        seq = data.tokens[i].long()
        a, b, m = int(data.first[i]), int(data.second[i]), int(data.length[i])
        assert 5 <= m <= 12 and b >= a + m and b + m <= 41
        assert torch.equal(seq[a : a + m], seq[b : b + m])
        x, y = data[i]
        assert x.shape == y.shape == (40,) and torch.equal(x[1:], y[:-1])
    first, second = data.target_masks()
    assert torch.equal(first.sum(1), data.length - 1)
    assert torch.equal(second.sum(1), data.length - 1)
    # a target of the second occurrence equals the target L positions earlier
    i, t = second.nonzero()[0].tolist()
    x, y = data[i]
    assert y[t] == y[t - int(data.second[i] - data.first[i])]


def test_data_seeded():
    a = RepeatedSegments(8, seq_len=30, vocab_size=10, seg_len=(3, 5), seed=1)
    b = RepeatedSegments(8, seq_len=30, vocab_size=10, seg_len=(3, 5), seed=1)
    c = RepeatedSegments(8, seq_len=30, vocab_size=10, seg_len=(3, 5), seed=2)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    dm = RepeatsDataModule(n_train=64, n_val=16, seq_len=30, seg_len=(3, 5), batch_size=8)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (8, 30) and x.dtype == torch.long


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seq_len=20, seg_len=(5, 12)), "cannot occur twice"),
        (dict(seq_len=40, seg_len=(8, 5)), "seg_len"),
        (dict(seq_len=40, seg_len=(1, 5)), "seg_len"),
        (dict(seq_len=0, seg_len=(3, 5)), "seq_len"),
    ],
)
def test_bad_data_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RepeatedSegments(4, vocab_size=10, **kwargs)


def perfect_induction(tokens):
    """A (B, 1, T, T) pattern: each query with an earlier occurrence of its token
    attends to the token after that occurrence (the latest one), else to itself."""
    B, T = tokens.shape
    attn = torch.zeros(B, 1, T, T)
    for b in range(B):
        for i in range(T):
            earlier = [j for j in range(i) if tokens[b, j] == tokens[b, i]]
            attn[b, 0, i, earlier[-1] + 1 if earlier else i] = 1.0
    return attn


def test_prefix_matching_score_perfect_and_uniform():
    data = RepeatedSegments(16, seq_len=48, vocab_size=64, seg_len=(10, 20), seed=0)
    x = data.tokens[:, :-1].long()
    _, second = data.target_masks()
    assert prefix_matching_score(perfect_induction(x), x, second).item() == 1.0
    assert prefix_matching_score(perfect_induction(x), x).item() == 1.0
    T = x.shape[1]
    uniform = (torch.ones(T, T).tril() / torch.arange(1, T + 1)[:, None]).expand(16, 2, T, T)
    score = prefix_matching_score(uniform, x, second)
    chance = prefix_matching_chance(x, second)
    assert torch.allclose(score, torch.tensor([chance, chance]))
    assert 0.01 < chance < 0.1  # about 1 / (mean query position)
    # attending to the previous occurrence itself (not the token after it) scores ~0
    shifted = perfect_induction(x).roll(-1, dims=-1)
    assert prefix_matching_score(shifted, x, second).item() < 0.1


def test_prefix_matching_bad_input():
    x = torch.arange(6)[None]  # no repeated token
    with pytest.raises(ValueError, match="nothing to score"):
        prefix_matching_score(torch.ones(1, 1, 6, 6) / 6, x)
    with pytest.raises(ValueError, match="attn must be"):
        prefix_matching_score(torch.ones(1, 1, 5, 5), torch.zeros(1, 6, dtype=torch.long))


def small_model(positions="rope"):
    torch.manual_seed(0)
    cfg = AttnOnlyConfig(
        vocab_size=16, max_len=24, n_layer=2, n_head=4, d_model=32, positions=positions
    )
    return AttnOnlyTransformer(cfg).eval()


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_model_shapes_and_attention(positions):
    model = small_model(positions)
    x = torch.randint(0, 16, (3, 24))
    with record_attention(model) as maps:
        logits, loss = model(x, x)
    assert logits.shape == (3, 24, 16) and loss.ndim == 0
    assert maps.names() == ["blocks.0.attn", "blocks.1.attn"]
    assert maps["blocks.1.attn"].shape == (3, 4, 24, 24)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ValueError, match="positions"):
        AttnOnlyConfig(positions="sinusoidal")


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_ablation_changes_only_that_head(mode):
    model = small_model()
    x = torch.randint(0, 16, (2, 24))
    layer = model.blocks[1].attn
    seen = {}
    hook = layer.proj.register_forward_pre_hook(lambda m, a: seen.update(inp=a[0].clone()))
    with torch.no_grad():
        base, _ = model(x)
        plain = seen["inp"]
        with ablate_heads(model, {"blocks.1.attn": [2]}, mode=mode):
            ablated, _ = model(x)
        after, _ = model(x)  # the hook is gone after the block
    hook.remove()
    assert ablated.shape == base.shape
    assert not torch.allclose(ablated, base)
    assert torch.equal(after, base)
    D = 32 // 4
    with torch.no_grad(), ablate_heads(model, {"blocks.1.attn": 2}, mode=mode):
        captured = {}
        h2 = layer.proj.register_forward_hook(lambda m, a, o: captured.update(inp=a[0]))
        model(x)
        h2.remove()
    inp = captured["inp"]
    keep = torch.ones(32, dtype=torch.bool)
    keep[2 * D : 3 * D] = False
    assert torch.equal(inp[..., keep], plain[..., keep])  # other heads untouched
    expect = 0.0 if mode == "zero" else plain[..., ~keep].mean(0)
    assert torch.allclose(inp[..., ~keep], torch.as_tensor(expect).expand_as(inp[..., ~keep]))


def test_ablation_bad_input():
    model = small_model()
    with pytest.raises(ValueError, match="not an attention layer"):
        with ablate_heads(model, {"blocks.1": [0]}):
            pass
    with pytest.raises(ValueError, match=r"must be in \[0, 4\)"):
        with ablate_heads(model, {"blocks.0.attn": [4]}):
            pass
    with pytest.raises(ValueError, match="mode"):
        with ablate_heads(model, {"blocks.0.attn": [0]}, mode="noise"):
            pass


def test_masked_loss_and_monitor():
    data = RepeatedSegments(8, seq_len=24, vocab_size=16, seg_len=(4, 8), seed=0)
    x, y = data.tokens[:, :-1].long(), data.tokens[:, 1:].long()
    first, second = data.target_masks()
    model = small_model()
    with torch.no_grad():
        logits, _ = model(x)
    assert abs(masked_loss(logits, y, torch.ones_like(first)) - model(x, y)[1].item()) < 1e-5
    with pytest.raises(ValueError, match="selects no position"):
        masked_loss(logits, y, torch.zeros_like(first))
    row = InductionMonitor(x, y, first, second).measure(model, 0)
    assert {"loss_first", "loss_second", "blocks.0.attn.0", "blocks.1.attn.3"} <= set(row)


def test_previous_token_score():
    from fmbook.interpret import previous_token_score

    T = 7
    prev = torch.zeros(2, 1, T, T)
    prev[:, 0, 0, 0] = 1.0
    prev[:, 0, torch.arange(1, T), torch.arange(T - 1)] = 1.0
    assert previous_token_score(prev).item() == 1.0
    uniform = (torch.ones(T, T).tril() / torch.arange(1, T + 1)[:, None]).expand(2, 1, T, T)
    expect = sum(1 / (i + 1) for i in range(1, T)) / (T - 1)
    assert abs(previous_token_score(uniform).item() - expect) < 1e-6
