"""What the grader calls. If you organise your code differently, change only these."""

from __future__ import annotations

from . import transformer


def run_softmax(x, dim=-1):
    return transformer.softmax(x, dim=dim)


def run_causal_mask(t: int):
    return transformer.causal_mask(t)


def run_attention(q, k, v, mask=None):
    return transformer.scaled_dot_product_attention(q, k, v, mask)


def make_multi_head_attention(d_model: int, n_head: int):
    return transformer.MultiHeadAttention(d_model, n_head)


def run_multi_head_attention(module, x, mask=None):
    return module(x, mask)


def make_block(d_model: int, n_head: int):
    return transformer.Block(d_model, n_head)


def run_block(block, x, causal: bool = True):
    return block(x, causal=causal)
