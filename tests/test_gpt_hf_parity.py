"""fmbook's GPT computes the same function as Hugging Face's GPT-2 given the same weights."""

import pytest
import torch

from fmbook.models import GPT, GPTConfig

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed (pip install -r requirements.txt); "
    "the GPT-2 parity test compares with its GPT2LMHeadModel",
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hf_twin(cfg: GPTConfig, attn_implementation: str):
    """A GPT2LMHeadModel with the architecture of ``GPT(cfg)`` and no dropout."""
    config = transformers.GPT2Config(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        activation_function="gelu",  # exact (erf) GELU, as F.gelu; GPT-2 itself uses gelu_new
        layer_norm_epsilon=1e-5,  # nn.LayerNorm's default
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
    )
    config._attn_implementation = attn_implementation
    return transformers.GPT2LMHeadModel(config)


@torch.no_grad()
def copy_gpt_to_hf(gpt: GPT, hf) -> None:
    """Copy every weight. GPT-2's Conv1D stores (in, out) matrices, nn.Linear (out, in)."""
    t = hf.transformer
    t.wte.weight.copy_(gpt.tok_emb.weight)  # lm_head is tied to wte, as in fmbook
    t.wpe.weight.copy_(gpt.pos_emb.weight)
    pairs = [(t.ln_f, gpt.ln_f)]
    for theirs, ours in zip(t.h, gpt.blocks, strict=True):
        pairs += [(theirs.ln_1, ours.ln_1), (theirs.ln_2, ours.ln_2)]
        for conv, linear in (
            (theirs.attn.c_attn, ours.attn.qkv),  # q, k, v stacked in the same order
            (theirs.attn.c_proj, ours.attn.proj),
            (theirs.mlp.c_fc, ours.mlp.fc),
            (theirs.mlp.c_proj, ours.mlp.proj),
        ):
            conv.weight.copy_(linear.weight.T)
            conv.bias.copy_(linear.bias)
    for theirs, ours in pairs:  # LayerNorms
        theirs.weight.copy_(ours.weight)
        theirs.bias.copy_(ours.bias)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_gpt_logits_match_hf_gpt2(attn_implementation):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=4, n_embd=64, bias=True)
    gpt, hf = GPT(cfg).eval(), hf_twin(cfg, attn_implementation).eval()
    n_ours = sum(p.numel() for p in gpt.parameters())
    assert n_ours == sum(p.numel() for p in hf.parameters())  # same architecture, tied head
    copy_gpt_to_hf(gpt, hf)
    with torch.no_grad():  # make LayerNorms non-trivial, so that a missed copy would show
        for module in gpt.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.add_(0.1 * torch.randn_like(module.weight))
                module.bias.add_(0.1 * torch.randn_like(module.bias))
    copy_gpt_to_hf(gpt, hf)
    idx = torch.randint(0, cfg.vocab_size, (3, cfg.block_size))
    with torch.no_grad():
        ours, _ = gpt(idx)
        theirs = hf(input_ids=idx).logits
        short, _ = gpt(idx[:, :5])  # causal: a prefix gives the prefix's logits
    assert ours.shape == theirs.shape == (3, cfg.block_size, cfg.vocab_size)
    assert ours.std() > 0.1  # not a trivial agreement of near-zero logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    torch.testing.assert_close(short, theirs[:, :5], atol=1e-4, rtol=0)


def test_gpt_loss_matches_hf_gpt2():
    torch.manual_seed(1)
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=32, bias=True)
    gpt, hf = GPT(cfg).eval(), hf_twin(cfg, "eager").eval()
    copy_gpt_to_hf(gpt, hf)
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.block_size))
    with torch.no_grad():
        # fmbook takes the shifted targets; HF shifts labels=input_ids itself. Both score
        # token t+1 given tokens 0..t, for t = 0..14.
        _, ours = gpt(idx[:, :-1], idx[:, 1:])
        theirs = hf(input_ids=idx, labels=idx).loss
    assert ours.item() > 3.0  # an untrained model: close to ln(50) = 3.9
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
