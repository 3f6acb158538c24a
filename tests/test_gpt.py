import math

import pytest
import torch
import torch.nn.functional as F

from fmbook.models import GPT, GPTConfig


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, max_len=8, n_layer=2, n_head=2, d_model=16)).eval()


def test_forward_shapes_and_initial_loss(model):
    idx = torch.randint(0, 11, (3, 8))
    logits, loss = model(idx, torch.randint(0, 11, (3, 8)))
    assert logits.shape == (3, 8, 11)
    # a freshly initialised model predicts close to uniform: loss ~ ln(V)
    assert abs(loss.item() - math.log(11)) < 0.1
    assert model(idx)[1] is None


def test_loss_is_cross_entropy_of_logits(model):
    idx = torch.randint(0, 11, (2, 5))
    tgt = torch.randint(0, 11, (2, 5))
    logits, loss = model(idx, tgt)
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 11), tgt.reshape(-1)))


def test_causality_future_tokens_do_not_change_past_logits(model):
    idx = torch.randint(0, 11, (1, 8))
    changed = idx.clone()
    changed[0, 5:] = (changed[0, 5:] + 1) % 11
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6)
    assert not torch.allclose(a[0, 5:], b[0, 5:])


def test_attention_matches_explicit_softmax_formula(model):
    """The SDPA path equals softmax(q k^T / sqrt(d_k) + causal mask) v written out."""
    attn = model.blocks[0].attn
    x = torch.randn(2, 6, 16)
    q, k, v = attn.qkv(x).split(16, dim=2)
    q, k, v = (t.view(2, 6, 2, 8).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(8)
    scores = scores.masked_fill(torch.ones(6, 6).triu(1).bool(), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 6, 16)
    assert torch.allclose(attn(x, causal=True), attn.proj(y), atol=1e-5)


def test_weights_are_tied_and_counted_once(model):
    assert model.lm_head.weight is model.tok_emb.weight
    total = sum(p.numel() for p in model.parameters())
    assert model.num_params(non_embedding=False) == total
    assert model.num_params() == total - 8 * 16


def test_generate_length_context_crop_and_determinism(model):
    start = torch.zeros(2, 3, dtype=torch.long)
    g = torch.Generator().manual_seed(1)
    out = model.generate(start, max_new_tokens=12, generator=g)  # runs past max_len=8
    assert out.shape == (2, 15) and torch.equal(out[:, :3], start)
    again = model.generate(start, max_new_tokens=12, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


def test_top_k_1_is_greedy(model):
    start = torch.tensor([[1, 2, 3]])
    out = model.generate(start, max_new_tokens=4, top_k=1)
    idx = start
    for _ in range(4):  # greedy by hand
        logits, _ = model(idx)
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, idx)


@pytest.mark.slow
def test_a_few_steps_overfit_a_tiny_sequence():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=5, max_len=8, n_layer=1, n_head=1, d_model=16))
    x = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]])
    y = torch.tensor([[1, 2, 3, 4, 0, 1, 2, 3]])
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(100):
        _, loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_cached_forward_equals_full_forward(model):
    from fmbook.nn import KVCache

    idx = torch.randint(0, 11, (2, 8))
    full, _ = model(idx)
    caches = [KVCache() for _ in model.blocks]
    first, _ = model(idx[:, :5], caches=caches)  # prefill 5 positions
    rest = [model(idx[:, t : t + 1], caches=caches)[0] for t in range(5, 8)]  # one at a time
    assert torch.allclose(torch.cat([first, *rest], dim=1), full, atol=1e-5)
    with pytest.raises(ValueError, match="9 tokens.*more than max_len=8"):
        model(idx[:, :1], caches=caches)
    with pytest.raises(ValueError, match="one KVCache per layer"):
        model(idx, caches=[KVCache()])


@pytest.mark.parametrize("new_tokens", [3, 20])  # 20 runs past max_len=8: the window slides
def test_cached_greedy_generation_equals_recomputation(model, new_tokens):
    start = torch.randint(0, 11, (3, 4))
    cached = model.generate(start, new_tokens, top_k=1, use_cache=True)
    recomputed = model.generate(start, new_tokens, top_k=1, use_cache=False)
    assert torch.equal(cached, recomputed)
