"""Argument checks shared by ``fmbook.nn`` and ``fmbook.models``: the one home of validation.

The code the book shows stays short: a module's ``forward`` makes at most one call here, and
configs call the scalar checks in ``__post_init__``. Every check raises a ValueError that
names the argument and says what it got (see :func:`describe`). Nothing here computes
anything a model uses, except :func:`pad_mask`, which returns the checked (or default) mask.

* scalars: :func:`positive_int`, :func:`positive_ints`, :func:`dropout`, :func:`divisible`,
  :func:`transformer_config`, :func:`token_id`, :func:`optional_id`, :func:`one_of`
* tensors: :func:`floats`, :func:`features`, :func:`ids`, :func:`bool_mask`, :func:`pad_mask`,
  :func:`lengths`, :func:`positions`
* attention: :func:`qkv`, :func:`rotary`, :func:`attention_call`, :func:`attention_mask`,
  :func:`block_call`, :func:`cache_append`
* models: :func:`caches`, :func:`memory`, :func:`decode_call` (Transformer),
  :func:`bert_call`, :func:`segments`, :func:`labels`, :func:`masking` (BERT),
  :func:`seq2seq_call`, :func:`right_padding`, :func:`class_ids` (LSTM), :func:`sampling`,
  :func:`decoding`
"""

from __future__ import annotations

import torch


def describe(x) -> str:
    """What an argument is, for error messages: dtype and shape of a tensor, else its type."""
    if torch.is_tensor(x):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


# ---------------------------------------------------------------------------- scalars


def positive_int(name: str, value, even: bool = False) -> None:
    """``value`` must be an int >= 1 (and even, with ``even=True``)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (even and value % 2):
        kind = "a positive even int" if even else "a positive int"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def positive_ints(**values) -> None:
    """Each keyword argument must be an int >= 1: ``positive_ints(d_model=d_model, ...)``."""
    for name, value in values.items():
        positive_int(name, value)


def dropout(p, name: str = "dropout") -> None:
    """A dropout probability must lie in [0, 1)."""
    if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p!r}")


def divisible(width: int, heads: int, width_name: str = "d_model", heads_name="n_head") -> None:
    """The model width must split evenly across the attention heads."""
    if width % heads:
        raise ValueError(f"{width_name} ({width}) must be divisible by {heads_name} ({heads})")


def transformer_config(cfg, *sizes: str) -> None:
    """The checks every Transformer config shares: the named ``sizes`` are positive ints,
    ``d_model`` splits evenly across ``n_head``, and ``dropout`` lies in [0, 1)."""
    positive_ints(**{name: getattr(cfg, name) for name in sizes})
    divisible(cfg.d_model, cfg.n_head)
    dropout(cfg.dropout)


def optional_id(name: str, value, size: int, size_name: str) -> None:
    """``value`` is None or a token id in [0, size)."""
    if value is not None:
        token_id(name, value, size, size_name, optional=True)


def token_id(name: str, value, size: int, size_name: str, optional: bool = False) -> None:
    """``value`` is an int id in [0, size)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        what = "None or an id" if optional else "an id"
        raise ValueError(f"{name} must be {what} in [0, {size_name}={size}), got {value!r}")


def one_of(name: str, value, choices) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


# ---------------------------------------------------------------------------- tensors


def _integer_tensor(x) -> bool:
    return torch.is_tensor(x) and not (
        x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool
    )


def floats(name: str, x, min_dim: int = 2) -> None:
    """``x`` must be a floating-point tensor with at least ``min_dim`` dims."""
    if not torch.is_tensor(x) or not x.dtype.is_floating_point or x.dim() < min_dim:
        raise ValueError(
            f"{name} must be a floating-point tensor with at least {min_dim} dims, "
            f"got {describe(x)}"
        )


def features(x, d_model: int, name: str = "x") -> None:
    """``x`` must be a floating-point tensor (..., d_model)."""
    if not torch.is_tensor(x) or not x.dtype.is_floating_point or x.shape[-1:] != (d_model,):
        raise ValueError(
            f"{name} must be a floating-point (..., d_model={d_model}) tensor, got {describe(x)}"
        )


def ids(
    x,
    vocab_size: int,
    name: str = "ids",
    max_len: int | None = None,
    past: int = 0,
    targets=None,
    *,
    any_int: bool = False,
) -> None:
    """Token ids: a (B, T) tensor of dtype torch.long (any integer dtype with ``any_int``)
    with values in [0, vocab_size); ``past + T <= max_len`` (``past``: positions already
    cached); ``targets``, if given, of the shape of ``x``."""
    if any_int:
        ok = _integer_tensor(x) and x.dim() == 2 and x.shape[1] >= 1
        kind = "(B, T >= 1) tensor of an integer dtype"
    else:
        ok = torch.is_tensor(x) and x.dtype == torch.long and x.dim() == 2
        kind = "(B, T) tensor of dtype torch.long"
    if not ok:
        raise ValueError(f"{name} must be a {kind}, got {describe(x)}")
    if max_len is not None and past + x.shape[1] > max_len:
        cached = f" ({past} cached)" if past else ""
        raise ValueError(
            f"{name} has {past + x.shape[1]} tokens{cached}, more than max_len={max_len}"
        )
    if x.numel() and (x.min() < 0 or x.max() >= vocab_size):
        raise ValueError(f"{name} holds token ids outside [0, vocab_size={vocab_size})")
    if targets is not None and (not torch.is_tensor(targets) or targets.shape != x.shape):
        raise ValueError(
            f"targets must have the shape of {name} {tuple(x.shape)}, got {describe(targets)}"
        )


def bool_mask(mask, shape: tuple[int, ...], name: str = "mask") -> None:
    """``mask`` must be a boolean tensor that broadcasts to ``shape``."""
    if not torch.is_tensor(mask) or mask.dtype != torch.bool:
        raise ValueError(
            f"{name} must be a boolean tensor (True = may attend), got {describe(mask)}"
        )
    try:
        fits = torch.broadcast_shapes(mask.shape, shape) == torch.Size(shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not broadcast to the attention scores' "
            f"shape (..., Tq, Tk) = {tuple(shape)}"
        )


def pad_mask(
    ids: torch.Tensor, mask, pad_id: int | None, name: str = "pad_mask", of: str = "ids"
) -> torch.Tensor | None:
    """A key padding mask for ``ids`` (B, T): ``mask`` if given (checked: boolean, the shape
    of ids, True = real token), else ``ids != pad_id``, else None (no padding)."""
    if mask is None:
        return None if pad_id is None else ids != pad_id
    if not torch.is_tensor(mask) or mask.dtype != torch.bool or mask.shape != ids.shape:
        raise ValueError(
            f"{name} must be a boolean tensor of the shape of {of} {tuple(ids.shape)} "
            f"(True = real token), got {describe(mask)}"
        )
    return mask


def lengths(lengths: torch.Tensor, max_len: int | None = None) -> None:
    """Sequence lengths: a 1-D integer tensor with values in [0, max_len]."""
    if lengths.dim() != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be a 1-D integer sequence, got {lengths!r}")
    if max_len is not None and lengths.numel() and (lengths.min() < 0 or lengths.max() > max_len):
        raise ValueError(f"lengths must lie in [0, max_len={max_len}], got {lengths.tolist()}")
    if max_len is None and lengths.numel() and lengths.min() < 0:
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")


def positions(pos, max_len: int | None = None) -> None:
    """``pos`` must be an integer tensor with values in [0, max_len)."""
    if not _integer_tensor(pos):
        got = f"{pos.dtype} tensor" if torch.is_tensor(pos) else type(pos).__name__
        raise ValueError(f"positions must be an integer tensor, got {got}")
    if pos.numel() == 0:
        return
    if pos.min() < 0:
        raise ValueError(f"positions must be >= 0, got {int(pos.min())}")
    if max_len is not None and pos.max() >= max_len:
        length = int(pos.max()) + 1
        raise ValueError(
            f"sequence of length {length} is longer than max_len={max_len} "
            f"(position {length - 1} has no encoding)"
        )


# ---------------------------------------------------------------------------- attention


def qkv(q, k, v, mask=None, causal=False, dropout_p=0.0) -> None:
    """q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) of one float dtype, a boolean mask
    broadcastable to (..., Tq, Tk), a bool ``causal`` and ``dropout_p`` in [0, 1)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        floats(name, t)
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"k must have the last dim d_k={q.shape[-1]} of q, got k of shape {tuple(k.shape)}"
        )
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"v must have as many rows as k (Tk={k.shape[-2]}), got v of shape {tuple(v.shape)}"
        )
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(
            "q, k, v must share their leading (batch, head) dims, got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not isinstance(causal, bool):
        raise ValueError(f"causal must be a bool, got {causal!r}")
    dropout(dropout_p, "dropout_p")
    if mask is not None:
        bool_mask(mask, (*q.shape[:-1], k.shape[-2]))


def rotary(q, k, pos, d_head: int | None = None, max_len: int | None = None) -> None:
    """q, k (..., T, D) with an even D (= ``d_head`` if given) and 1-D integer positions of
    length T in [0, max_len)."""
    for name, t in (("q", q), ("k", k)):
        if not torch.is_tensor(t) or not t.dtype.is_floating_point or t.dim() < 2:
            raise ValueError(
                f"{name} must be a floating-point (..., T, D) tensor, got {describe(t)}"
            )
        if t.shape[-1] % 2:
            raise ValueError(f"{name} needs an even last dim D for rotary pairs, got {t.shape[-1]}")
    if q.shape[-2:] != k.shape[-2:]:
        raise ValueError(
            f"q and k must share (T, D) for rotary embedding, got {tuple(q.shape)} and "
            f"{tuple(k.shape)}"
        )
    if not torch.is_tensor(pos) or pos.dim() != 1 or pos.numel() != q.shape[-2]:
        raise ValueError(
            f"positions must be a 1-D integer tensor of length T={q.shape[-2]}, got {pos!r}"
        )
    if d_head is not None and q.shape[-1] != d_head:
        raise ValueError(f"q and k must have last dim d_head={d_head}, got {q.shape[-1]}")
    positions(pos, max_len)


def attention_call(attn, x, context, mask, cache) -> None:
    """The arguments of ``MultiHeadAttention.forward`` (see there), before the cache grows:
    x (B, Tq, C); context (B, Tk, C) iff cross-attention; a KVCache only for self-attention;
    mask a key padding mask (B, Tk) or broadcastable to (B, H, Tq, Tk), Tk counting the
    cached positions."""
    from .nn.attention import KVCache

    C = attn.d_model
    floats("x", x, min_dim=3)
    if x.dim() != 3 or x.shape[-1] != C:
        raise ValueError(f"x must have shape (B, T, d_model={C}), got {describe(x)}")
    B, Tq = x.shape[:2]
    if attn.cross:
        if context is None:
            raise ValueError("context (B, Tk, d_model) is required for cross-attention")
        floats("context", context, min_dim=3)
        if context.dim() != 3 or context.shape[0] != B or context.shape[-1] != C:
            raise ValueError(
                f"context must have shape (B={B}, Tk, d_model={C}), got {describe(context)}"
            )
        if cache is not None:
            raise ValueError("cache is for self-attention; cross-attention takes cache=None")
    elif context is not None:
        raise ValueError("context must be None for self-attention (build with cross=True)")
    if cache is not None and not isinstance(cache, KVCache):
        raise ValueError(f"cache must be a KVCache or None, got {type(cache).__name__}")
    Tk = (0 if cache is None else len(cache)) + (context.shape[1] if attn.cross else Tq)
    attention_mask(mask, B, attn.n_head, Tq, Tk)


def attention_mask(mask, B: int, H: int, Tq: int, Tk: int) -> None:
    """None, a key padding mask (B, Tk), or a boolean 4-D mask broadcastable to (B, H, Tq, Tk)."""
    if mask is None:
        return
    if torch.is_tensor(mask) and mask.dim() == 2:
        if mask.shape != (B, Tk):
            raise ValueError(
                f"a 2-D mask is a key padding mask of shape (B, Tk) = {(B, Tk)}, "
                f"got {tuple(mask.shape)}"
            )
        mask = mask[:, None, None, :]
    elif not torch.is_tensor(mask) or mask.dim() != 4:
        raise ValueError(
            "mask must be a key padding mask (B, Tk) or broadcastable to (B, H, Tq, Tk) = "
            f"{(B, H, Tq, Tk)}, got {describe(mask)}"
        )
    bool_mask(mask, (B, H, Tq, Tk))


def block_call(block, memory, memory_mask) -> None:
    """A TransformerBlock gets a memory iff it has cross-attention."""
    if block.cross_attention and memory is None:
        raise ValueError("memory (B, S, d_model) is required: the block has cross-attention")
    if not block.cross_attention and (memory is not None or memory_mask is not None):
        raise ValueError("memory and memory_mask need a block built with cross_attention=True")


def cache_append(cache, k) -> None:
    """New keys k (B, H, T, D) must match the (batch, heads) a KVCache already holds."""
    if cache.k is not None and k.shape[:2] != cache.k.shape[:2]:
        raise ValueError(
            f"cache holds (batch, heads) = {tuple(cache.k.shape[:2])}, "
            f"got new keys for {tuple(k.shape[:2])}; start a fresh KVCache"
        )


# ---------------------------------------------------------------------------- models


def caches(cache, n_layers: int, name: str = "caches") -> int:
    """None, or a list of one KVCache per layer; returns the number of cached positions."""
    from .nn.attention import KVCache

    if cache is None:
        return 0
    if (
        not isinstance(cache, list)
        or len(cache) != n_layers
        or not all(isinstance(c, KVCache) for c in cache)
    ):
        raise ValueError(
            f"{name} must be a list of one KVCache per layer ({n_layers}), "
            f"got {type(cache).__name__}"
        )
    return len(cache[0])


def memory(memory, memory_pad_mask, batch: int) -> None:
    """An encoder output (B, S, C) and its optional boolean padding mask (B, S)."""
    if not torch.is_tensor(memory) or memory.dim() != 3 or memory.shape[0] != batch:
        raise ValueError(f"memory must be a (B={batch}, S, d_model) tensor, got {describe(memory)}")
    if memory_pad_mask is not None and (
        not torch.is_tensor(memory_pad_mask)
        or memory_pad_mask.dtype != torch.bool
        or memory_pad_mask.shape != memory.shape[:2]
    ):
        raise ValueError(
            f"memory_pad_mask must be a boolean (B, S) = {tuple(memory.shape[:2])} tensor, "
            f"got {describe(memory_pad_mask)}"
        )


def bert_call(model, ids_, segment_ids) -> None:
    """The arguments of ``BERT.forward``: token ids (B, T) and optional segment ids."""
    ids(ids_, model.config.vocab_size, "ids", model.config.max_len)
    if segment_ids is not None:
        segments(segment_ids, ids_, model.config.n_segments)


def segments(segment_ids, ids, n_segments: int) -> None:
    """Segment ids: a long tensor of the shape of ``ids`` with values in [0, n_segments)."""
    if not n_segments:
        raise ValueError("segment_ids need a config with n_segments >= 1")
    if (
        not torch.is_tensor(segment_ids)
        or segment_ids.dtype != torch.long
        or segment_ids.shape != ids.shape
    ):
        raise ValueError(
            f"segment_ids must be a long tensor of the shape of ids {tuple(ids.shape)}, "
            f"got {describe(segment_ids)}"
        )
    if segment_ids.numel() and (segment_ids.min() < 0 or segment_ids.max() >= n_segments):
        raise ValueError(f"segment_ids must lie in [0, n_segments={n_segments})")


def labels(labels, n_classes: int, shape) -> None:
    """Class labels: a long tensor of ``shape``, each -100 (ignored) or in [0, n_classes)."""
    if not torch.is_tensor(labels) or labels.dtype != torch.long or labels.shape != shape:
        raise ValueError(
            f"labels must be a long tensor of shape {tuple(shape)}, got {describe(labels)}"
        )
    valid = labels[labels != -100]
    if valid.numel() and (valid.min() < 0 or valid.max() >= n_classes):
        raise ValueError(f"labels must be -100 (ignored) or lie in [0, {n_classes})")


def masking(ids, mask_id, vocab_size, special_ids, p) -> torch.Tensor:
    """The arguments of ``mask_tokens``; returns the special ids (with mask_id) as a tensor."""
    if not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
    if not torch.is_tensor(ids) or ids.dtype != torch.long:
        raise ValueError(f"ids must be a tensor of dtype torch.long, got {describe(ids)}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, vocab_size={vocab_size})")
    token_id("mask_id", mask_id, vocab_size, "vocab_size")
    special = sorted({int(i) for i in special_ids} | {mask_id})
    if special[0] < 0 or special[-1] >= vocab_size:
        raise ValueError(f"special_ids must lie in [0, vocab_size={vocab_size}), got {special}")
    if len(special) >= vocab_size:
        raise ValueError("special_ids leave no ordinary token to draw random replacements from")
    if not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p!r}")
    return torch.tensor(special, device=ids.device)


def decode_call(model, tgt_in, memory_, memory_pad_mask, cache) -> int:
    """The arguments of ``Transformer.decode``; returns the number of cached positions."""
    cfg = model.config
    past = caches(cache, len(model.decoder), "cache")
    ids(tgt_in, cfg.tgt_vocab_size, "tgt_in", cfg.max_len, past)
    memory(memory_, memory_pad_mask, tgt_in.shape[0])
    return past


def seq2seq_call(model, src, tgt_in) -> None:
    """Source and target ids (any integer dtype) of one batch size, for an LSTMSeq2Seq."""
    ids(src, model.src_vocab_size, "src", any_int=True)
    ids(tgt_in, model.tgt_vocab_size, "tgt_in", any_int=True)
    if src.shape[0] != tgt_in.shape[0]:
        raise ValueError(
            f"src and tgt_in must share the batch size, got {src.shape[0]} and {tgt_in.shape[0]}"
        )


def right_padding(src, src_pad_mask, pad_id: int) -> torch.Tensor:
    """A right-padding mask of src (B, T): the given one (checked) or ``src != pad_id``;
    True for real tokens, every row starting with one."""
    mask = src != pad_id if src_pad_mask is None else src_pad_mask
    if not torch.is_tensor(mask) or mask.dtype != torch.bool or mask.shape != src.shape:
        raise ValueError(
            f"src_pad_mask must be a bool tensor of the shape of src {tuple(src.shape)}, "
            f"True for real tokens, got {describe(mask)}"
        )
    if not mask[:, 0].all():  # right padding: every row starts with a real token
        raise ValueError(
            "every source needs at least one real token; src_pad_mask must be True for real "
            "tokens (the fmbook.nn convention), not for padding"
        )
    positions = torch.arange(src.shape[1], device=src.device)
    if not torch.equal(mask, positions < mask.sum(1)[:, None]):
        raise ValueError("sources must be right-padded: src_pad_mask must be True, then False")
    return mask


def class_ids(logits, targets, name: str = "targets") -> None:
    """Logits (B, T, V) and integer class ids (B, T) (not one-hot or float targets)."""
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(
            f"logits must be (B, T, V) and {name} (B, T), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer class ids (not one-hot/float targets), got {targets.dtype}"
        )


def sampling(max_new_tokens, temperature, top_k, idx=None, vocab_size: int = 0) -> None:
    """Arguments of sampling: ``max_new_tokens`` >= 0, ``temperature`` > 0, ``top_k`` >= 1,
    and (if given) the prompt ``idx`` (B, T) of ids in [0, vocab_size) (of any length)."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if top_k is not None and not (isinstance(top_k, int) and top_k >= 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    if idx is not None:
        ids(idx, vocab_size, "idx")


def decoding(
    max_len, bos_id, eos_id, vocab_size: int, beam_size=1, longest: int | None = None
) -> None:
    """Arguments of a ``translate``: ``max_len`` in [1, longest], BOS and EOS ids in
    [0, vocab_size), ``beam_size`` >= 1."""
    if not isinstance(max_len, int) or not 1 <= max_len <= (longest or max_len):
        bound = "an int >= 1" if longest is None else f"an int in [1, {longest}]"
        raise ValueError(f"max_len must be {bound}, got {max_len!r}")
    token_id("bos_id", bos_id, vocab_size, "tgt_vocab_size")
    token_id("eos_id", eos_id, vocab_size, "tgt_vocab_size")
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be an int >= 1, got {beam_size!r}")


def span_logits(start_logits, end_logits, max_answer_len) -> None:
    """Start and end scores of a span head: two float tensors (B, T) of one shape."""
    floats("start_logits", start_logits)
    floats("end_logits", end_logits)
    if start_logits.dim() != 2 or start_logits.shape != end_logits.shape:
        raise ValueError(
            "start_logits and end_logits must both be (B, T), got "
            f"{tuple(start_logits.shape)} and {tuple(end_logits.shape)}"
        )
    if not isinstance(max_answer_len, int) or max_answer_len < 1:
        raise ValueError(f"max_answer_len must be an int >= 1, got {max_answer_len!r}")
