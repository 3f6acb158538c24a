"""Autograder of assignment 2: run with ``python -m pytest assignments/a2_transformer``.

Your functions are compared with ``torch``'s fused attention and with the book's modules
(``fmbook.nn``), whose weights are loaded into yours. When an answer is wrong, the checks of
``fmbook.check`` say which usual mistake it looks like.
"""

import contextlib

import pytest
import torch
import torch.nn.functional as F

from fmbook import check
from fmbook.nn import MultiHeadAttention, TransformerBlock, causal_mask
from fmbook.nn.attention import scaled_dot_product_attention as book_attention

from .adapters import (
    make_block,
    make_multi_head_attention,
    run_attention,
    run_block,
    run_causal_mask,
    run_multi_head_attention,
    run_softmax,
)


@contextlib.contextmanager
def from_scratch():
    """Switch off torch's softmax and fused attention while the student's code runs."""

    def forbidden(*args, **kwargs):
        raise RuntimeError("write this yourself: torch's softmax and attention are switched off")

    with pytest.MonkeyPatch.context() as mp:
        for owner, name in [
            (torch, "softmax"),
            (torch.Tensor, "softmax"),
            (F, "softmax"),
            (F, "scaled_dot_product_attention"),
            (torch.nn, "MultiheadAttention"),
        ]:
            mp.setattr(owner, name, forbidden)
        yield


def scratch(fn):
    def wrapped(*args):
        with from_scratch():
            return fn(*args)

    return wrapped


def test_softmax():
    verdict = check.softmax(scratch(run_softmax))
    assert verdict, verdict.message
    x = torch.randn(3, 4, 5)
    with from_scratch():
        middle = run_softmax(x, dim=1)
    torch.testing.assert_close(middle, x.softmax(dim=1))


def test_causal_mask():
    assert torch.equal(run_causal_mask(5), causal_mask(5, 5))


def test_attention_agrees_with_torch_sdpa():
    verdict = check.attention(scratch(run_attention))
    assert verdict, verdict.message


def test_causal_attention_agrees_with_torch_sdpa():
    verdict = check.causal_attention(
        scratch(lambda q, k, v: run_attention(q, k, v, causal_mask(q.shape[-2], k.shape[-2])))
    )
    assert verdict, verdict.message


def test_padding_mask_agrees_with_the_book():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 6, 8, generator=g) for _ in range(3))  # (B, H, T, D)
    keep = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    mask = keep[:, None, None, :]  # (B, 1, 1, Tk): padded keys hidden from every query
    with from_scratch():
        yours = run_attention(q, k, v, mask)
    torch.testing.assert_close(yours, book_attention(q, k, v, mask)[0])


def load_into(yours, book):
    try:
        yours.load_state_dict(book.state_dict())
    except RuntimeError as err:
        pytest.fail(f"the parameter names or shapes differ from the book's: {err}")


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_agrees_with_the_book(causal):
    torch.manual_seed(0)
    book = MultiHeadAttention(32, 4).eval()
    yours = make_multi_head_attention(32, 4)
    load_into(yours, book)
    x = torch.randn(2, 7, 32)
    mask = causal_mask(7, 7) if causal else None
    with from_scratch(), torch.no_grad():
        out = run_multi_head_attention(yours, x, mask)
    torch.testing.assert_close(out, book(x, causal=causal), atol=1e-5, rtol=1e-5)


def test_heads_are_independent():
    """Changing head 0's query weights must change head 0's output channels only."""
    torch.manual_seed(1)
    mha = make_multi_head_attention(16, 4)
    x = torch.randn(1, 5, 16)
    mha.proj.weight.data = torch.eye(16)
    mha.proj.bias.data.zero_()
    with from_scratch(), torch.no_grad():
        before = run_multi_head_attention(mha, x)
        mha.qkv.weight.data[:4] *= 3.0  # W_q of head 0: output rows 0..3
        after = run_multi_head_attention(mha, x)
    changed = (after - before).abs().amax(dim=(0, 1)) > 1e-6  # per channel
    assert changed[:4].any() and not changed[4:].any()


def test_block_agrees_with_the_book_and_is_causal():
    torch.manual_seed(2)
    book = TransformerBlock(32, 4).eval()
    with torch.no_grad():  # non-trivial LayerNorms, so that a missing one would show
        for ln in (book.ln_1, book.ln_2):
            ln.weight.add_(0.3 * torch.randn_like(ln.weight))
            ln.bias.add_(0.3 * torch.randn_like(ln.bias))
    yours = make_block(32, 4)
    load_into(yours, book)
    x = torch.randn(2, 9, 32)
    with from_scratch(), torch.no_grad():
        out = run_block(yours, x, causal=True)
        bidirectional = run_block(yours, x, causal=False)
        prefix = run_block(yours, x[:, :4], causal=True)
    torch.testing.assert_close(out, book(x, causal=True), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bidirectional, book(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(prefix, out[:, :4], atol=1e-5, rtol=1e-5)  # no peeking


def test_block_trains():
    torch.manual_seed(3)
    block = make_block(16, 2)
    x = torch.randn(4, 6, 16)
    with from_scratch():
        run_block(block, x).pow(2).mean().backward()
    grads = {n: p.grad for n, p in block.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), [
        n for n, g in grads.items() if g is None or g.abs().sum() == 0
    ]
