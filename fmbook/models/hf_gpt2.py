"""Hugging Face GPT-2 twins of :class:`fmbook.models.GPT`: same architecture, same weights.

``transformers`` is imported only when a function here is called (importing fmbook never
imports it); it is a test, benchmark and chapter dependency (requirements.txt), not one
of fmbook's core dependencies.

What makes a ``GPT2LMHeadModel`` compute the same function as ``GPT(cfg)``:

* **exact GELU**: fmbook's MLP uses ``F.gelu`` (the erf form), so the twin uses
  ``activation_function="gelu"``; GPT-2 itself uses the tanh approximation ``gelu_new``.
* **LayerNorm epsilon** 1e-5, the default of ``nn.LayerNorm`` (GPT-2 uses the same).
* **Conv1D transposes**: GPT-2 keeps its linear maps in ``Conv1D`` modules that store
  ``(in, out)`` matrices, while ``nn.Linear`` stores ``(out, in)``; every matrix is copied
  transposed. The fused q, k, v projection stacks the three in the same order in both.
* **tied head**: both models tie the output layer to the token embedding, so copying the
  token embedding also sets the head.
"""

from __future__ import annotations

import torch

from .gpt import GPT, GPTConfig

_MISSING = (
    "the Hugging Face GPT-2 twin needs the 'transformers' package "
    "(pip install transformers, or pip install -r requirements.txt)"
)


def _transformers():
    try:
        import transformers
    except ImportError as err:
        raise ImportError(_MISSING) from err
    return transformers


def gpt2_config(cfg: GPTConfig, attn_implementation: str | None = None):
    """A ``transformers.GPT2Config`` with the architecture of ``GPT(cfg)``.

    ``attn_implementation``: ``"eager"``, ``"sdpa"``, ... or None for transformers' default.
    GPT-2 always has biases, so ``cfg.bias`` must be True.
    """
    if not isinstance(cfg, GPTConfig):
        raise ValueError(f"cfg must be a GPTConfig, got {type(cfg).__name__}")
    if not cfg.bias:
        raise ValueError("cfg.bias must be True: GPT-2 has biases in every linear layer and norm")
    config = _transformers().GPT2Config(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.max_len,
        n_embd=cfg.d_model,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        activation_function="gelu",  # exact (erf) GELU, as F.gelu; GPT-2 itself uses gelu_new
        layer_norm_epsilon=1e-5,  # nn.LayerNorm's default
        resid_pdrop=cfg.dropout,  # fmbook drops on residual branches,
        embd_pdrop=cfg.dropout,  # on the embeddings
        attn_pdrop=cfg.dropout,  # and on the attention weights, all with one probability
        tie_word_embeddings=True,
        bos_token_id=None,  # GPT-2's 50256 lies outside a small vocabulary
        eos_token_id=None,  # and no end token: generate() makes every new token asked for
    )
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    return config


@torch.no_grad()
def copy_gpt_to_hf(gpt: GPT, hf) -> None:
    """Copy every weight of ``gpt`` into the ``GPT2LMHeadModel`` ``hf`` of the same size."""
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
            conv.weight.copy_(linear.weight.T)  # Conv1D (in, out) <- nn.Linear (out, in)
            conv.bias.copy_(linear.bias)
    for theirs, ours in pairs:  # LayerNorms
        theirs.weight.copy_(ours.weight)
        theirs.bias.copy_(ours.bias)


def to_hf_gpt2(gpt: GPT, attn_implementation: str | None = None):
    """A ``transformers.GPT2LMHeadModel`` that computes the same function as ``gpt``.

    The twin has ``gpt``'s architecture (:func:`gpt2_config`) and a copy of its weights
    (:func:`copy_gpt_to_hf`); it is in training mode, as a freshly built module is.
    """
    if not isinstance(gpt, GPT):
        raise ValueError(f"gpt must be an fmbook.models.GPT, got {type(gpt).__name__}")
    hf = _transformers().GPT2LMHeadModel(gpt2_config(gpt.config, attn_implementation))
    copy_gpt_to_hf(gpt, hf)
    return hf


TOKENIZER_FILE = "fmbook_tokenizer.json"


def save_hf_gpt2(gpt: GPT, directory, tokenizer=None):
    """Export ``gpt`` as a Hugging Face model directory; returns its path.

    The directory holds what ``transformers.GPT2LMHeadModel.from_pretrained(directory)``
    loads (``config.json`` and the weights, written by ``save_pretrained``) and, when a
    ``tokenizer`` with ``to_dict()`` is given (the book's character tokenizers), its
    vocabulary in ``fmbook_tokenizer.json``, read back by :func:`load_hf_gpt2`.
    """
    import json
    from pathlib import Path

    from ..tokenizers.char import CharTokenizer

    directory = Path(directory)
    if tokenizer is not None and not isinstance(tokenizer, CharTokenizer):
        raise ValueError(f"tokenizer must be a CharTokenizer, got {type(tokenizer).__name__}")
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} exists and is not a folder: choose a folder name")
    hf = to_hf_gpt2(gpt).eval()
    hf.save_pretrained(directory)
    if tokenizer is not None:
        (directory / TOKENIZER_FILE).write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False))
    return directory


def load_hf_gpt2(directory):
    """``(model, tokenizer)`` from a folder written by :func:`save_hf_gpt2`: the
    ``GPT2LMHeadModel`` in eval mode, and the book's tokenizer (``None`` if none was saved)."""
    import json
    from pathlib import Path

    from ..tokenizers.char import CharTokenizer

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"{directory} has no config.json: not a saved model folder")
    hf = _transformers().GPT2LMHeadModel.from_pretrained(directory).eval()
    vocab = directory / TOKENIZER_FILE
    tokenizer = CharTokenizer.from_dict(json.loads(vocab.read_text())) if vocab.is_file() else None
    return hf, tokenizer
