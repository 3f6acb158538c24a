"""The modern GPT options (Part 5, speedrun): RoPE, RMSNorm, ReLU², SwiGLU, QK-norm, no
biases, an untied head. Off by default; each changes the model as documented."""

import math

import pytest
import torch

from fmbook.models import GPT, GPTConfig
from fmbook.models.counting import gpt_matmul_params, gpt_params
from fmbook.nn import MultiHeadAttention, RotaryEmbedding, relu2

MODERN = dict(positions="rope", norm="rms", mlp="relu2", qk_norm=True, bias=False)


def small(**kw):
    return GPTConfig(vocab_size=13, max_len=16, n_layer=2, n_head=2, d_model=16, **kw)


def test_defaults_are_gpt2():
    cfg = small()
    assert (cfg.positions, cfg.norm, cfg.mlp, cfg.qk_norm, cfg.tie_embeddings) == (
        "learned",
        "layer",
        "gelu",
        False,
        True,
    )
    torch.manual_seed(0)
    a = GPT(cfg).state_dict()
    assert "pos_emb.weight" in a and not any("q_norm" in k for k in a)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        MODERN,
        {**MODERN, "mlp": "swiglu"},
        {"tie_embeddings": False},
        {"qk_norm": True},
        {"positions": "rope", "tie_embeddings": False, "norm": "rms"},
    ],
)
def test_params_match_counting(kw):
    cfg = small(**kw)
    model = GPT(cfg)
    assert gpt_params(cfg) == sum(p.numel() for p in model.parameters())
    assert (model.lm_head.weight is model.tok_emb.weight) == cfg.tie_embeddings
    assert (model.pos_emb is None) == (cfg.positions == "rope")


def test_matmul_params_swiglu():
    cfg = small(mlp="swiglu")
    C, h = 16, 48  # swiglu_hidden(16) = 48 (2/3 * 64 = 42.7, rounded up to a multiple of 8)
    assert gpt_matmul_params(cfg) == 2 * (4 * C * C + 3 * C * h) + 13 * C


@pytest.mark.parametrize("kw", [{}, MODERN, {**MODERN, "mlp": "swiglu"}])
def test_causal_and_cache_equivalence(kw):
    torch.manual_seed(0)
    model = GPT(small(**kw)).eval()
    idx = torch.randint(0, 13, (2, 12))
    full, _ = model(idx)
    changed = idx.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 13
    assert torch.allclose(full[:, :8], model(changed)[0][:, :8], atol=1e-5)
    from fmbook.nn import KVCache

    caches = [KVCache() for _ in model.blocks]
    a = model(idx[:, :7], caches=caches)[0]
    b = model(idx[:, 7:], caches=caches)[0]
    assert torch.allclose(torch.cat([a, b], 1), full, atol=1e-5)


def test_rope_model_scores_depend_on_relative_position_only():
    """With RoPE and no learned positions, shifting a whole sequence by s positions leaves
    the attention scores unchanged: <R_m q, R_n k> depends on n - m only."""
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, bias=False, rotary=RotaryEmbedding(8, max_len=64))
    x = torch.randn(1, 6, 16)
    q, k, _ = attn._project(x, None)  # (1, 2, 6, 8)
    scores = []
    for shift in (0, 5, 20):
        pos = torch.arange(shift, shift + 6)
        rq, rk = attn.rotary(q, k, pos)
        scores.append(rq @ rk.transpose(-2, -1))
    assert torch.allclose(scores[0], scores[1], atol=1e-5)
    assert torch.allclose(scores[0], scores[2], atol=1e-5)


def test_qk_norm_shapes_and_bounded_scores():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, qk_norm=True)
    assert attn.q_norm.weight.shape == (8,) and attn.k_norm.weight.shape == (8,)
    x = 100 * torch.randn(2, 5, 16)  # huge inputs
    assert attn(x, causal=True).shape == (2, 5, 16)
    q, k, _ = attn._project(x, None)
    qn, kn = attn.q_norm(q), attn.k_norm(k)  # (2, 2, 5, 8)
    assert torch.allclose(qn.pow(2).mean(-1), torch.ones(2, 2, 5), atol=1e-3)
    # with unit gains |q . k| / sqrt(D) <= sqrt(D), however large the inputs
    assert (qn @ kn.transpose(-2, -1)).abs().max() / math.sqrt(8) <= math.sqrt(8) + 1e-4


def test_relu2():
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.equal(relu2(x), torch.tensor([0.0, 0.0, 9.0]))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"positions": "alibi"}, "positions"),
        ({"norm": "batch"}, "norm"),
        ({"mlp": "relu"}, "mlp"),
    ],
)
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        small(**kw)
    with pytest.raises(ValueError, match="even head width"):
        GPTConfig(vocab_size=5, max_len=4, n_layer=1, n_head=2, d_model=6, positions="rope")
