"""fmbook's GPT computes the same function as Hugging Face's GPT-2 given the same weights."""

import sys

import pytest
import torch

from fmbook.models import GPT, GPTConfig
from fmbook.models.hf_gpt2 import to_hf_gpt2

pytest.importorskip(
    "transformers",
    reason="transformers is not installed (pip install -r requirements.txt); "
    "the GPT-2 parity test compares with its GPT2LMHeadModel",
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_gpt_logits_match_hf_gpt2(attn_implementation):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=97, max_len=32, n_layer=2, n_head=4, d_model=64, bias=True)
    gpt = GPT(cfg).eval()
    with torch.no_grad():  # make LayerNorms non-trivial, so that a missed copy would show
        for module in gpt.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.add_(0.1 * torch.randn_like(module.weight))
                module.bias.add_(0.1 * torch.randn_like(module.bias))
    hf = to_hf_gpt2(gpt, attn_implementation).eval()
    n_ours = sum(p.numel() for p in gpt.parameters())
    assert n_ours == sum(p.numel() for p in hf.parameters())  # same architecture, tied head
    idx = torch.randint(0, cfg.vocab_size, (3, cfg.max_len))
    with torch.no_grad():
        ours, _ = gpt(idx)
        theirs = hf(input_ids=idx).logits
        short, _ = gpt(idx[:, :5])  # causal: a prefix gives the prefix's logits
    assert ours.shape == theirs.shape == (3, cfg.max_len, cfg.vocab_size)
    assert ours.std() > 0.1  # not a trivial agreement of near-zero logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    torch.testing.assert_close(short, theirs[:, :5], atol=1e-4, rtol=0)


def test_gpt_loss_matches_hf_gpt2():
    torch.manual_seed(1)
    cfg = GPTConfig(vocab_size=50, max_len=16, n_layer=1, n_head=2, d_model=32, bias=True)
    gpt = GPT(cfg).eval()
    hf = to_hf_gpt2(gpt, "eager").eval()
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.max_len))
    with torch.no_grad():
        # fmbook takes the shifted targets; HF shifts labels=input_ids itself. Both score
        # token t+1 given tokens 0..t, for t = 0..14.
        _, ours = gpt(idx[:, :-1], idx[:, 1:])
        theirs = hf(input_ids=idx, labels=idx).loss
    assert ours.item() > 3.0  # an untrained model: close to ln(50) = 3.9
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_to_hf_gpt2_rejects_what_gpt2_cannot_hold(monkeypatch):
    with pytest.raises(ValueError, match="cfg.bias must be True"):
        to_hf_gpt2(GPT(GPTConfig(vocab_size=11, max_len=8, n_layer=1, n_head=1, bias=False)))
    with pytest.raises(ValueError, match="gpt must be an fmbook.models.GPT, got Linear"):
        to_hf_gpt2(torch.nn.Linear(2, 2))
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    with pytest.raises(ImportError, match="needs the 'transformers' package"):
        to_hf_gpt2(GPT(GPTConfig(vocab_size=11, max_len=8, n_layer=1, n_head=1)))


def test_the_converter_imports_transformers_only_when_called():
    import ast
    import inspect

    import fmbook.models.hf_gpt2 as module

    top_level = ast.parse(inspect.getsource(module)).body
    imported = [
        alias.name if isinstance(node, ast.Import) else node.module
        for node in top_level
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in getattr(node, "names", [])
    ]
    assert not any(str(name).startswith("transformers") for name in imported), imported
