"""Transformer building blocks, each small enough to read and checked against a reference.

* :mod:`.attention`: ``scaled_dot_product_attention`` (written out), ``sdpa`` (fast path),
  ``MultiHeadAttention`` with a ``KVCache``; masks are boolean with True = may attend.
* :mod:`.positional`: sinusoidal, learned and rotary (RoPE) position information.
* :mod:`.norms`: ``LayerNorm`` and ``RMSNorm``.
* :mod:`.mlp`: the GELU ``MLP`` (or ReLU², ``relu2``) and ``SwiGLU``.
* :mod:`.blocks`: the pre-norm ``TransformerBlock``.
"""

from .attention import (
    KVCache,
    MultiHeadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    sdpa,
)
from .blocks import TransformerBlock
from .mlp import MLP, SwiGLU, relu2, swiglu_hidden
from .norms import LayerNorm, RMSNorm
from .positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    sinusoidal_table,
)

__all__ = [
    "KVCache",
    "LayerNorm",
    "LearnedPositionalEmbedding",
    "MLP",
    "MultiHeadAttention",
    "RMSNorm",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "SwiGLU",
    "TransformerBlock",
    "apply_rotary",
    "causal_mask",
    "padding_mask",
    "scaled_dot_product_attention",
    "relu2",
    "sdpa",
    "sinusoidal_table",
    "swiglu_hidden",
]
