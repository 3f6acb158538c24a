"""The pre-norm Transformer block, configurable from GPT-2 style to LLaMA style.

Shapes in comments: B batch, T time, S memory length, C channels (d_model).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import _checks
from .attention import KVCache, MultiHeadAttention
from .mlp import MLP, SwiGLU
from .norms import LayerNorm, RMSNorm
from .positional import RotaryEmbedding

_MLPS = ("gelu", "relu2", "swiglu")
_NORMS = ("layer", "rms")


class TransformerBlock(nn.Module):
    """Pre-norm block (GPT-2; Xiong et al., 2020):

    ``x = x + attn(ln_1(x))``, then (with ``cross_attention=True``)
    ``x = x + cross_attn(ln_cross(x), memory)``, then ``x = x + mlp(ln_2(x))``.

    ``mlp``: "gelu" (:class:`MLP`, C -> 4C -> C), "relu2" (the same with ReLU²) or
    "swiglu" (:class:`SwiGLU`);
    ``norm``: "layer" (:class:`LayerNorm`, with ``bias``) or "rms" (:class:`RMSNorm`);
    ``rotary``: an optional :class:`RotaryEmbedding` for the self-attention;
    ``qk_norm``: RMS-normalise each head's queries and keys (see :class:`MultiHeadAttention`).
    With ``mlp="gelu", norm="layer"`` and ``causal=True`` this is GPT-2's block, the one
    :class:`fmbook.models.gpt.GPT` stacks (parameter names ``ln_1``, ``attn.qkv``,
    ``attn.proj``, ``ln_2``, ``mlp.fc``, ``mlp.proj``).
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        mlp: str = "gelu",
        norm: str = "layer",
        dropout: float = 0.0,
        bias: bool = True,
        cross_attention: bool = False,
        rotary: RotaryEmbedding | None = None,
        qk_norm: bool = False,
    ):
        super().__init__()
        _checks.one_of("mlp", mlp, _MLPS)
        _checks.one_of("norm", norm, _NORMS)
        self.cross_attention = cross_attention
        self.ln_1 = self._norm(norm, d_model, bias)
        self.attn = MultiHeadAttention(
            d_model, n_head, dropout, bias, rotary=rotary, qk_norm=qk_norm
        )
        if cross_attention:
            self.ln_cross = self._norm(norm, d_model, bias)
            self.cross_attn = MultiHeadAttention(d_model, n_head, dropout, bias, cross=True)
        self.ln_2 = self._norm(norm, d_model, bias)
        if mlp == "swiglu":
            self.mlp = SwiGLU(d_model, dropout=dropout, bias=bias)
        else:
            self.mlp = MLP(d_model, dropout=dropout, bias=bias, activation=mlp)

    @staticmethod
    def _norm(kind: str, d_model: int, bias: bool) -> nn.Module:
        return LayerNorm(d_model, bias=bias) if kind == "layer" else RMSNorm(d_model)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); memory (B, S, C) feeds the cross-attention.

        mask, memory_mask: boolean (True = may attend) for self- and cross-attention.
        causal: each position sees only itself and the past (decoders).
        cache: a :class:`KVCache` of the self-attention (incremental decoding).
        """
        _checks.block_call(self, memory, memory_mask)
        x = x + self.attn(self.ln_1(x), mask=mask, causal=causal, cache=cache)
        if self.cross_attention:
            x = x + self.cross_attn(self.ln_cross(x), context=memory, mask=memory_mask)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)
