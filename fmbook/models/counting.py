"""Closed-form parameter and FLOP counts for the book's Transformers.

Symbols: V vocabulary, T context (max_len), C channels (d_model), L layers.
Every count is exact for fmbook's models (the tests compare it with ``numel()`` and with
``torch.utils.flop_counter.FlopCounterMode``), not an approximation:

* a pre-norm block with a GELU MLP has ``12 C^2 + 13 C`` parameters with biases
  (``12 C^2 + 2 C`` without): attention ``4 C^2 + 4 C``, MLP ``8 C^2 + 5 C``, two
  LayerNorms ``4 C``; cross-attention adds ``4 C^2 + 4 C`` and a third LayerNorm;
* :class:`~fmbook.models.gpt.GPT` has ``V C + T C + L (12 C^2 + 13 C) + 2 C`` (tied head);
* one token costs ``2`` FLOPs per weight of a matrix multiply forward and ``4`` backward
  (gradients of input and weight), so training costs ``6 N`` per token (Kaplan et al.,
  2020) plus attention's ``12 L T C`` (scores and weighted sum, forward and backward).
"""

from __future__ import annotations

from .. import _checks
from ..nn import swiglu_hidden
from .bert import BERTConfig
from .gpt import GPTConfig
from .transformer import Seq2SeqConfig

_MLPS = ("gelu", "relu2", "swiglu")
_NORMS = ("layer", "rms")


def norm_params(d_model: int, *, norm: str = "layer", bias: bool = True) -> int:
    """LayerNorm: gain and bias (``2 C``, or ``C`` without bias); RMSNorm: gain only (``C``)."""
    _checks.positive_int("d_model", d_model)
    _checks.one_of("norm", norm, _NORMS)
    return 2 * d_model if norm == "layer" and bias else d_model


def attention_params(d_model: int, *, bias: bool = True) -> int:
    """Multi-head attention, self or cross: W_q, W_k, W_v, W_o are C x C each, so
    ``4 C^2`` (+ ``4 C`` biases). The number of heads does not matter."""
    _checks.positive_int("d_model", d_model)
    return 4 * d_model**2 + (4 * d_model if bias else 0)


def mlp_params(
    d_model: int, *, mlp: str = "gelu", hidden: int | None = None, bias: bool = True
) -> int:
    """GELU (or ReLU²) MLP: ``2 C h + h + C`` (h = 4C by default); SwiGLU:
    ``3 C h + 2 h + C`` (h = :func:`~fmbook.nn.swiglu_hidden` by default). Biases only with
    ``bias``."""
    _checks.positive_int("d_model", d_model)
    _checks.one_of("mlp", mlp, _MLPS)
    if hidden is None:
        hidden = swiglu_hidden(d_model) if mlp == "swiglu" else 4 * d_model
    _checks.positive_int("hidden", hidden)
    n_in = 2 if mlp == "swiglu" else 1  # input matrices: W_1 (and the gate's W_3)
    return (n_in + 1) * d_model * hidden + ((n_in * hidden + d_model) if bias else 0)


def block_params(
    d_model: int,
    *,
    mlp: str = "gelu",
    norm: str = "layer",
    bias: bool = True,
    cross_attention: bool = False,
    qk_norm_width: int = 0,
) -> int:
    """Parameters of one :class:`~fmbook.nn.TransformerBlock` with these arguments;
    ``qk_norm_width``: the head width D when the self-attention has QK-norm (two RMSNorm
    gains of D each), 0 without."""
    n_sublayers = 3 if cross_attention else 2
    return (
        n_sublayers * norm_params(d_model, norm=norm, bias=bias)
        + (n_sublayers - 1) * attention_params(d_model, bias=bias)
        + mlp_params(d_model, mlp=mlp, bias=bias)
        + 2 * qk_norm_width
    )


def _require(cfg, cls) -> None:
    if not isinstance(cfg, cls):
        raise ValueError(f"cfg must be a {cls.__name__}, got {type(cfg).__name__}")


def gpt_params(cfg: GPTConfig) -> int:
    """All parameters of :class:`~fmbook.models.gpt.GPT`: token embeddings ``V C`` (shared
    with a tied output head, so counted once; an untied head adds another ``V C``),
    learned positions ``T C`` (none with RoPE), the blocks, the final norm."""
    _require(cfg, GPTConfig)
    C = cfg.d_model
    block = block_params(
        C,
        mlp=cfg.mlp,
        norm=cfg.norm,
        bias=cfg.bias,
        qk_norm_width=C // cfg.n_head if cfg.qk_norm else 0,
    )
    return (
        cfg.vocab_size * C * (1 if cfg.tie_embeddings else 2)
        + (cfg.max_len * C if cfg.positions == "learned" else 0)
        + cfg.n_layer * block
        + norm_params(C, norm=cfg.norm, bias=cfg.bias)
    )


def gpt_non_embedding_params(cfg: GPTConfig) -> int:
    """Kaplan et al.'s (2020) N: :func:`gpt_params` without the token embeddings ``V C``
    and the learned positions ``T C`` (an untied output head stays: it is a matrix every
    token multiplies). With a small vocabulary and a tiny model the embeddings are a large
    share of all parameters, and leaving them out gave Kaplan et al. cleaner power laws."""
    _require(cfg, GPTConfig)
    C = cfg.d_model
    positions = cfg.max_len * C if cfg.positions == "learned" else 0
    return gpt_params(cfg) - cfg.vocab_size * C - positions


def seq2seq_params(cfg: Seq2SeqConfig) -> int:
    """All parameters of the encoder-decoder :class:`~fmbook.models.transformer.Transformer`:
    embeddings (source and target, or one shared matrix; the output head is tied to the
    target one), learned positions if any (sinusoidal ones are a fixed buffer), encoder
    blocks, decoder blocks with cross-attention, and one final norm per stack."""
    _require(cfg, Seq2SeqConfig)
    C = cfg.d_model
    embeddings = cfg.tgt_vocab_size * C + (0 if cfg.share_embeddings else cfg.src_vocab_size * C)
    positions = cfg.max_len * C if cfg.positions == "learned" else 0
    encoder = cfg.n_encoder_layers * block_params(C, bias=cfg.bias)
    decoder = cfg.n_decoder_layers * block_params(C, bias=cfg.bias, cross_attention=True)
    return embeddings + positions + encoder + decoder + 2 * norm_params(C, bias=cfg.bias)


def bert_params(cfg: BERTConfig, head: str | None = None) -> int:
    """Parameters of :class:`~fmbook.models.bert.BERT` (``head=None``) or of
    :class:`~fmbook.models.bert.BERTForMaskedLM` (``head="mlm"``: a C x C dense layer with
    bias, a norm, and an output bias of V; the output matrix is the tied embedding)."""
    _require(cfg, BERTConfig)
    if head not in (None, "mlm"):
        raise ValueError(f"head must be None or 'mlm', got {head!r}")
    C = cfg.d_model
    n = (cfg.vocab_size + cfg.max_len + cfg.n_segments) * C
    n += cfg.n_layer * block_params(C, bias=cfg.bias) + norm_params(C, bias=cfg.bias)
    if head == "mlm":
        n += C * C + C + norm_params(C, bias=cfg.bias) + cfg.vocab_size
    return n


def gpt_matmul_params(cfg: GPTConfig) -> int:
    """The weights each token meets in a matrix multiply: ``12 L C^2`` in the blocks (with
    a SwiGLU MLP its three matrices instead of ``8 C^2``) and ``V C`` in the output head.
    Embedding and position lookups, biases and norm gains cost no multiply-adds, so they
    are left out."""
    _require(cfg, GPTConfig)
    C = cfg.d_model
    mlp = mlp_params(C, mlp=cfg.mlp, bias=False)
    return cfg.n_layer * (attention_params(C, bias=False) + mlp) + cfg.vocab_size * C


def gpt_flops_per_token(cfg: GPTConfig, context: int, *, training: bool = True) -> int:
    """Matrix-multiply FLOPs per token of :class:`~fmbook.models.gpt.GPT` on sequences of
    ``context`` tokens: ``2 N_mm + 4 L T C`` forward; training (forward and backward)
    triples both terms: ``6 N_mm + 12 L T C``, with ``N_mm`` = :func:`gpt_matmul_params`.

    The attention term counts the full T x T score matrix (the causal mask does not save
    work in a plain implementation); a multiply-add is 2 FLOPs.
    """
    _require(cfg, GPTConfig)
    _checks.positive_int("context", context)
    if context > cfg.max_len:
        raise ValueError(f"context must be <= max_len={cfg.max_len}, got {context}")
    forward = 2 * gpt_matmul_params(cfg) + 4 * cfg.n_layer * context * cfg.d_model
    return 3 * forward if training else forward


def training_flops(n_params: float, n_tokens: float) -> float:
    """Kaplan et al.'s (2020) estimate of the compute to train on ``n_tokens`` tokens:
    ``6 N D`` (2 N per token forward, 4 N backward)."""
    for name, value in (("n_params", n_params), ("n_tokens", n_tokens)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return 6.0 * n_params * n_tokens
