"""fmbook.nn: every building block against a reference (a loop, a formula or torch)."""

import math

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as F

from fmbook.nn import (
    MLP,
    KVCache,
    LayerNorm,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    RMSNorm,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    SwiGLU,
    TransformerBlock,
    apply_rotary,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    sdpa,
    swiglu_hidden,
)

TOL = dict(atol=1e-5, rtol=0.0)  # float32 agreement asked of every fast/slow pair


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def close(a, b, **tol):
    torch.testing.assert_close(a, b, **(tol or TOL))


# ---------------------------------------------------------------------------- attention


def loop_attention(q, k, v, allowed):
    """Plain numpy loops: out[i] = sum_j softmax_j(q_i . k_j / sqrt(d)) v_j over allowed j."""
    q, k, v = (t.double().numpy() for t in (q, k, v))
    out = np.zeros((q.shape[0], v.shape[1]))
    for i in range(q.shape[0]):
        js = [j for j in range(k.shape[0]) if allowed[i][j]]
        scores = [
            sum(q[i, c] * k[j, c] for c in range(q.shape[1])) / math.sqrt(q.shape[1]) for j in js
        ]
        expo = [math.exp(s - max(scores)) for s in scores]
        for j, e in zip(js, expo, strict=True):
            out[i] += e / sum(expo) * v[j]
    return torch.tensor(out, dtype=torch.float32)


def test_explicit_attention_equals_loops_on_tiny_case():
    q, k, v = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2)
    every = [[True] * 5] * 3
    close(scaled_dot_product_attention(q, k, v)[0], loop_attention(q, k, v, every))
    # causal with Tq=3 < Tk=5 aligns to the end: query i sees keys j <= i + 2
    end_aligned = [[j <= i + 2 for j in range(5)] for i in range(3)]
    close(
        scaled_dot_product_attention(q, k, v, causal=True)[0], loop_attention(q, k, v, end_aligned)
    )
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    close(
        scaled_dot_product_attention(q, k, v, mask=mask)[0], loop_attention(q, k, v, mask.tolist())
    )


def test_causal_mask_is_end_aligned():
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    assert torch.equal(causal_mask(3, 3), torch.ones(3, 3).tril().bool())
    # torch's is_causal aligns to the start instead; sdpa therefore passes its own mask
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    start_aligned = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert not torch.allclose(sdpa(q, k, v, causal=True), start_aligned)
    close(
        sdpa(q, k, v, causal=True),
        F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(3, 6)),
    )


SHAPES = [  # batch dims, Tq, Tk, d_k, d_v
    ((), 5, 5, 8, 8),
    ((2,), 7, 7, 4, 6),
    ((2, 3), 6, 6, 16, 16),
    ((1, 4), 1, 9, 8, 8),  # one new query over a cache
    ((3, 2), 4, 10, 8, 4),  # cross-attention, Tq < Tk
    ((2, 2), 9, 4, 8, 8),  # Tq > Tk: with causal, the first 5 queries see nothing
]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("batch,tq,tk,dk,dv", SHAPES)
def test_fast_path_agrees_with_explicit(batch, tq, tk, dk, dv, causal):
    q, k, v = torch.randn(*batch, tq, dk), torch.randn(*batch, tk, dk), torch.randn(*batch, tk, dv)
    out, weights = scaled_dot_product_attention(q, k, v, causal=causal)
    close(sdpa(q, k, v, causal=causal), out)
    assert out.shape == (*batch, tq, dv) and weights.shape == (*batch, tq, tk)
    visible = causal_mask(tq, tk).any(-1) if causal else torch.ones(tq, dtype=torch.bool)
    close(weights.sum(-1), visible.float().expand(*batch, tq))  # 1, or 0 if no key is visible
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("causal", [False, True])
def test_fast_path_agrees_with_key_padding_of_different_lengths(causal):
    B, H, T, D = 4, 3, 8, 8
    q, k, v = torch.randn(B, H, T, D), torch.randn(B, H, T, D), torch.randn(B, H, T, D)
    keep = padding_mask([8, 5, 1, 3], T)[:, None, None, :]  # (B, 1, 1, T)
    out, weights = scaled_dot_product_attention(q, k, v, mask=keep, causal=causal)
    close(sdpa(q, k, v, mask=keep, causal=causal), out)
    close(weights.sum(-1), torch.ones(B, H, T))
    assert (weights.masked_select(~keep.expand_as(weights)) == 0).all()
    # a padded key never matters: changing it leaves the output alone
    v2 = v.clone()
    v2[1, :, 5:] = 100.0
    close(scaled_dot_product_attention(q, k, v2, mask=keep, causal=causal)[0], out)


def test_cross_attention_with_padding_agrees():
    q, k, v = torch.randn(3, 2, 5, 8), torch.randn(3, 2, 11, 8), torch.randn(3, 2, 11, 4)
    keep = padding_mask([11, 7, 2])[:, None, None, :]
    close(sdpa(q, k, v, mask=keep), scaled_dot_product_attention(q, k, v, mask=keep)[0])


def test_query_with_no_visible_key_gets_zero_output_and_finite_gradients():
    q, k, v = (torch.randn(2, 4, 3, requires_grad=True) for _ in range(3))
    keep = torch.tensor([[True, True, False, False], [False, False, False, False]])
    mask = keep[:, None, :]  # (B, 1, Tk): batch row 1 sees no key at all
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.equal(out[1], torch.zeros(4, 3)) and torch.equal(weights[1], torch.zeros(4, 4))
    close(sdpa(q, k, v, mask=mask), out)
    for y in (out, sdpa(q, k, v, mask=mask)):
        grads = torch.autograd.grad(y.sum(), (q, k, v))
        assert all(torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------------------- multi-head


def torch_mha(mha: MultiHeadAttention) -> tnn.MultiheadAttention:
    """A torch.nn.MultiheadAttention holding mha's weights."""
    ref = tnn.MultiheadAttention(mha.d_model, mha.n_head, batch_first=True)
    with torch.no_grad():
        if mha.cross:
            ref.in_proj_weight.copy_(torch.cat((mha.q.weight, mha.kv.weight)))
            ref.in_proj_bias.copy_(torch.cat((mha.q.bias, mha.kv.bias)))
        else:
            ref.in_proj_weight.copy_(mha.qkv.weight)
            ref.in_proj_bias.copy_(mha.qkv.bias)
        ref.out_proj.weight.copy_(mha.proj.weight)
        ref.out_proj.bias.copy_(mha.proj.bias)
    return ref.eval()


def test_self_attention_matches_torch_multihead_attention():
    mha = MultiHeadAttention(32, 4).eval()
    ref = torch_mha(mha)
    x = torch.randn(3, 7, 32)
    close(mha(x), ref(x, x, x, need_weights=False)[0])
    blocked = torch.ones(7, 7, dtype=torch.bool).triu(1)  # torch: True = blocked
    close(mha(x, causal=True), ref(x, x, x, attn_mask=blocked, need_weights=False)[0])
    keep = padding_mask([7, 4, 2], 7)  # ours: True = real key
    out = ref(x, x, x, key_padding_mask=~keep, need_weights=False)[0]
    close(mha(x, mask=keep), out)
    close(mha(x, mask=keep[:, None, None, :]), out)  # the same mask written 4-D


def test_cross_attention_matches_torch_multihead_attention():
    mha = MultiHeadAttention(24, 3, cross=True).eval()
    ref = torch_mha(mha)
    x, memory = torch.randn(2, 5, 24), torch.randn(2, 9, 24)
    close(mha(x, context=memory), ref(x, memory, memory, need_weights=False)[0])
    keep = padding_mask([9, 3])
    out = ref(x, memory, memory, key_padding_mask=~keep, need_weights=False)[0]
    close(mha(x, context=memory, mask=keep), out)


@pytest.mark.parametrize("rotary", [False, True])
def test_cache_decoding_equals_full_causal_recomputation(rotary):
    rope = RotaryEmbedding(8, max_len=16) if rotary else None
    mha = MultiHeadAttention(32, 4, rotary=rope).eval()
    x = torch.randn(2, 9, 32)
    full = mha(x, causal=True)
    cache = KVCache()
    steps = [mha(x[:, t : t + 1], causal=True, cache=cache) for t in range(9)]
    close(torch.cat(steps, dim=1), full)
    assert len(cache) == 9 and cache.k.shape == (2, 4, 9, 8)
    cache = KVCache()  # a prompt of 4 tokens at once, then chunks of 2 and 3
    chunks = [mha(x[:, a:b], causal=True, cache=cache) for a, b in ((0, 4), (4, 6), (6, 9))]
    close(torch.cat(chunks, dim=1), full)


def test_cache_reorder_picks_rows_for_beam_search():
    mha, cache = MultiHeadAttention(32, 4).eval(), KVCache()
    cache.reorder(torch.tensor([1, 0]))  # an empty cache stays empty
    assert len(cache) == 0
    x = torch.randn(3, 5, 32)
    mha(x, cache=cache)
    k, v = cache.k.clone(), cache.v.clone()
    index = torch.tensor([2, 2, 0])
    cache.reorder(index)
    assert torch.equal(cache.k, k[index]) and torch.equal(cache.v, v[index])
    # decoding on from the reordered cache equals decoding the reordered prefixes
    nxt = torch.randn(3, 1, 32)
    ref = mha(torch.cat((x[index], nxt), dim=1), causal=True)[:, -1:]
    close(mha(nxt, cache=cache, causal=True), ref)


def test_cache_with_key_padding_equals_full_computation():
    mha = MultiHeadAttention(16, 2).eval()
    x = torch.randn(2, 6, 16)
    keep = padding_mask([6, 4], 6)
    full = mha(x, mask=keep, causal=True)
    cache = KVCache()
    steps = [
        mha(x[:, t : t + 1], mask=keep[:, : t + 1], causal=True, cache=cache) for t in range(6)
    ]
    close(torch.cat(steps, dim=1), full)


def test_dropout_acts_in_training_only():
    mha = MultiHeadAttention(16, 2, dropout=0.5)
    x = torch.randn(2, 5, 16)
    assert not torch.allclose(mha(x), mha(x))
    mha.eval()
    assert torch.equal(mha(x), mha(x))
    q = torch.randn(2, 4, 8)
    dropped = scaled_dot_product_attention(q, q, q, dropout_p=0.5)[1]
    assert (dropped == 0).any() and dropped.max() > 1.0 / 4  # kept weights are scaled by 2


# ---------------------------------------------------------------------------- positions


def test_sinusoidal_values_by_hand():
    pe = SinusoidalPositionalEncoding(d_model=4, max_len=10)
    table = pe(torch.arange(3))  # PE[pos, 2i] = sin(pos / 10000^(2i/4)), PE[pos, 2i+1] = cos(...)
    expected = [
        [0.0, 1.0, 0.0, 1.0],
        [math.sin(1), math.cos(1), math.sin(1 / 100), math.cos(1 / 100)],
        [math.sin(2), math.cos(2), math.sin(2 / 100), math.cos(2 / 100)],
    ]
    close(table, torch.tensor(expected))
    assert pe(torch.tensor([[0, 2], [1, 1]])).shape == (2, 2, 4)
    odd = SinusoidalPositionalEncoding(d_model=5)(torch.tensor([3]))
    close(odd[0, 4], torch.tensor(math.sin(3 / 10000 ** (4 / 5))))
    assert list(pe.parameters()) == [] and pe.state_dict() == {}


def test_learned_positions_are_a_trainable_embedding():
    emb = LearnedPositionalEmbedding(max_len=8, d_model=6)
    out = emb(torch.arange(5))
    assert out.shape == (5, 6) and torch.equal(out, emb.weight[:5])
    out.sum().backward()
    assert emb.weight.grad[:5].eq(1).all() and emb.weight.grad[5:].eq(0).all()
    assert list(emb.state_dict()) == ["weight"]


def test_rope_keeps_norms_and_depends_on_relative_offset_only():
    q, k = torch.randn(2, 3, 10, 16), torch.randn(2, 3, 10, 16)
    pos = torch.arange(10)
    rq, rk = apply_rotary(q, k, pos)
    close(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-5, rtol=1e-5)
    close(rq[..., 0, :], q[..., 0, :])  # position 0 is no rotation

    def score(m, n):  # <R_m q, R_n k> for one pair of vectors placed at positions m, n
        a, _ = apply_rotary(q[0, 0, :1], q[0, 0, :1], torch.tensor([m]))
        b, _ = apply_rotary(k[0, 0, :1], k[0, 0, :1], torch.tensor([n]))
        return (a * b).sum()

    for offset in (0, 3, -5):
        ref = score(10, 10 + offset)
        for m in (5, 7, 123, 1000):
            close(score(m, m + offset), ref, atol=1e-4, rtol=1e-4)
    assert not torch.isclose(score(10, 13), score(10, 14))  # ... but it does depend on it


def test_rotary_module_equals_function():
    rope = RotaryEmbedding(8, max_len=32)
    q, k = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8)
    pos = torch.arange(20, 25)
    for a, b in zip(rope(q, k, pos), apply_rotary(q, k, pos), strict=True):
        close(a, b)


# ---------------------------------------------------------------------------- norms and MLPs


def test_rmsnorm_matches_formula_and_torch():
    norm = RMSNorm(12)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(12))
    x = torch.randn(3, 5, 12) * 4
    formula = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    close(norm(x), formula)
    if hasattr(tnn, "RMSNorm"):
        ref = tnn.RMSNorm(12, eps=1e-6)
        with torch.no_grad():
            ref.weight.copy_(norm.weight)
        close(norm(x), ref(x))
    assert norm(x.half()).dtype == torch.float16


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_matches_formula(bias):
    norm = LayerNorm(10, bias=bias)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(10))
        if bias:
            norm.bias.copy_(torch.randn(10))
    x = torch.randn(4, 10) * 3 + 1
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    formula = (x - mean) / torch.sqrt(var + 1e-5) * norm.weight + (norm.bias if bias else 0)
    close(norm(x), formula)
    assert (norm.bias is None) == (not bias)


def test_mlp_shapes_and_formula():
    mlp = MLP(8)
    assert mlp.fc.weight.shape == (32, 8) and mlp.proj.weight.shape == (8, 32)
    x = torch.randn(2, 3, 8)
    assert mlp(x).shape == (2, 3, 8)
    close(mlp(x), F.gelu(x @ mlp.fc.weight.T + mlp.fc.bias) @ mlp.proj.weight.T + mlp.proj.bias)
    assert MLP(8, hidden=5).fc.out_features == 5


def test_swiglu_equals_its_formula_with_copied_weights():
    assert swiglu_hidden(128) == 344 and swiglu_hidden(48) == 128 and swiglu_hidden(64, 64) == 192
    glu = SwiGLU(48, bias=False)
    assert glu.gate.weight.shape == (128, 48) and glu.proj.weight.shape == (48, 128)
    w1, w3, w2 = (torch.randn_like(lin.weight) * 0.1 for lin in (glu.gate, glu.up, glu.proj))
    with torch.no_grad():
        glu.gate.weight.copy_(w1), glu.up.weight.copy_(w3), glu.proj.weight.copy_(w2)
    x = torch.randn(2, 5, 48)
    a = x @ w1.T
    close(glu(x), ((a * torch.sigmoid(a)) * (x @ w3.T)) @ w2.T)
    assert SwiGLU(16, hidden=10)(torch.randn(3, 16)).shape == (3, 16)


# ---------------------------------------------------------------------------- blocks

CONFIGS = [
    dict(mlp="gelu", norm="layer"),
    dict(mlp="swiglu", norm="rms", bias=False),
    dict(mlp="swiglu", norm="rms", rotary=True),
]


def make_block(cfg, cross=False):
    cfg = dict(cfg)
    rotary = RotaryEmbedding(8, max_len=32) if cfg.pop("rotary", False) else None
    return TransformerBlock(32, 4, cross_attention=cross, rotary=rotary, **cfg).eval()


@pytest.mark.parametrize("cfg", CONFIGS)
def test_block_is_causal(cfg):
    block = make_block(cfg)
    x = torch.randn(2, 8, 32)
    y = block(x, causal=True)
    x2 = x.clone()
    x2[:, 5:] = torch.randn(2, 3, 32)  # change the future
    y2 = block(x2, causal=True)
    close(y2[:, :5], y[:, :5])
    assert not torch.allclose(y2[:, 5:], y[:, 5:])
    assert not torch.allclose(block(x2)[:, :5], block(x)[:, :5])  # without causal it leaks


@pytest.mark.parametrize("cfg", CONFIGS)
def test_block_cache_equals_full_recomputation(cfg):
    blocks = [make_block(cfg, cross=True) for _ in range(2)]
    x, memory = torch.randn(2, 7, 32), torch.randn(2, 5, 32)
    keep = padding_mask([5, 3])

    def run(h, caches=None):
        for i, block in enumerate(blocks):
            cache = None if caches is None else caches[i]
            h = block(h, memory=memory, memory_mask=keep, causal=True, cache=cache)
        return h

    full = run(x)
    assert full.shape == (2, 7, 32)
    caches = [KVCache(), KVCache()]
    steps = [run(x[:, t : t + 1], caches) for t in range(7)]
    close(torch.cat(steps, dim=1), full)
    assert [len(c) for c in caches] == [7, 7]
