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


def test_exported_folder_loads_in_transformers_and_generates_the_same_greedy_tokens(tmp_path):
    from transformers import GPT2LMHeadModel

    from fmbook.generation import generate
    from fmbook.models.hf_gpt2 import load_hf_gpt2, save_hf_gpt2
    from fmbook.tokenizers import CharTokenizer

    torch.manual_seed(2)
    text = "to be or not to be, that is the question:\n"
    tok = CharTokenizer.train(text)
    cfg = GPTConfig(vocab_size=tok.vocab_size, max_len=24, n_layer=2, n_head=2, d_model=32)
    gpt = GPT(cfg)
    ids = torch.tensor([tok.encode(text)[:25]])
    opt = torch.optim.AdamW(gpt.parameters(), lr=1e-2)
    for _ in range(40):  # learn the line a little, so that greedy decoding is not constant
        opt.zero_grad()
        gpt(ids[:, :-1], ids[:, 1:])[1].backward()
        opt.step()
    gpt.eval()
    folder = save_hf_gpt2(gpt, tmp_path / "shakespeare-gpt", tokenizer=tok)
    assert (folder / "config.json").is_file()

    hf = GPT2LMHeadModel.from_pretrained(folder).eval()  # plain transformers, no fmbook
    prompt = torch.tensor([tok.encode("to be")])
    with torch.no_grad():
        ours = generate(gpt, prompt, 16, temperature=None)  # greedy
        theirs = hf.generate(prompt, max_new_tokens=16, do_sample=False)
    assert ours[0, 5:].unique().numel() > 1  # a non-trivial continuation
    assert torch.equal(ours, theirs)

    hf2, tok2 = load_hf_gpt2(folder)
    assert tok2.decode(ours[0].tolist()) == tok.decode(theirs[0].tolist())
    assert torch.equal(hf2.generate(prompt, max_new_tokens=16, do_sample=False), theirs)


def test_export_refuses_bad_input(tmp_path):
    from fmbook.models.hf_gpt2 import load_hf_gpt2, save_hf_gpt2

    gpt = GPT(GPTConfig(vocab_size=11, max_len=8, n_layer=1, n_head=1))
    with pytest.raises(ValueError, match="tokenizer must be a CharTokenizer, got dict"):
        save_hf_gpt2(gpt, tmp_path / "a", tokenizer={"chars": "ab"})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        save_hf_gpt2(gpt, tmp_path / "file")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_hf_gpt2(tmp_path)
