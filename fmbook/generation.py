"""Decoding: choosing the next token from logits, and searching for whole sequences.

Shapes in comments: B batch, K beams, N rows fed to the model (B or B * K), t tokens so
far, V vocabulary.

* :func:`greedy_next` and :func:`sample_next` pick one token per row of logits (..., V);
  :func:`top_k_filter` and :func:`top_p_filter` are the truncations ``sample_next`` uses.
* :func:`greedy_search` and :func:`beam_search` decode whole sequences from a *step
  function* ``step_fn(prefixes (N, t)) -> log-probs (N, V)`` of the next token. The step
  function hides the model, so one search serves both kinds of Transformer:

  - decoder-only (GPT): ``lambda p: model(p)[0][:, -1].log_softmax(-1)``;
  - encoder-decoder: encode the source once and close over the memory, e.g.
    ``lambda p: model.decode(p, memory, mask)[:, -1].log_softmax(-1)``; for beam search,
    repeat the memory ``beam_size`` times per source (``repeat_interleave``), because row
    ``b * beam_size + k`` of the prefixes is beam ``k`` of source ``b``.

  A step function that keeps state between calls (a key/value cache) must know that beam
  search reorders the rows: pass ``reorder(index (N,))``, called after each step with the
  row of the previous step that each new row continues (``state = state[index]``).
  :meth:`fmbook.models.transformer.Transformer.translate` does exactly this.
  :func:`lm_step` builds such a cached step function and its ``reorder`` for a
  decoder-only model (:class:`fmbook.models.GPT`).
* :func:`apply_repetition_penalty` is CTRL's penalty on tokens already in the sequence
  (Keskar et al., 2019), in the form Hugging Face's ``generate`` applies it.
* :func:`stream` generates with a decoder-only model one token at a time, with a
  key/value cache, and *yields* each new token as it comes (for streaming output);
  :func:`generate` collects what it yields.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .nn.attention import KVCache

StepFn = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------- checks


def _check_logits(logits) -> None:
    if not torch.is_tensor(logits) or not logits.dtype.is_floating_point or logits.dim() < 1:
        got = (
            f"{logits.dtype} tensor of shape {tuple(logits.shape)}"
            if torch.is_tensor(logits)
            else type(logits).__name__
        )
        raise ValueError(f"logits must be a floating-point (..., V) tensor, got {got}")
    if logits.shape[-1] < 1:
        raise ValueError("logits must have a vocabulary dim V >= 1")


def _check_positive_int(name: str, value, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


# ---------------------------------------------------------------------------- one token


def greedy_next(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token of each row: logits (..., V) -> ids (...) (dtype long)."""
    _check_logits(logits)
    return logits.argmax(dim=-1)


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Set all but the ``top_k`` largest logits of each row to ``-inf`` (ties at the k-th
    value are all kept)."""
    _check_logits(logits)
    _check_positive_int("top_k", top_k)
    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering (Holtzman et al., 2020): keep, in each row, the smallest set of most
    likely tokens whose total probability is at least ``top_p``; set the others to ``-inf``.

    Sorting the probabilities in decreasing order, token ``i`` is kept iff the mass of the
    tokens before it is still below ``top_p``; so the most likely token is always kept, and
    ``top_p=1`` keeps every token of nonzero probability.
    """
    _check_logits(logits)
    if not isinstance(top_p, (int, float)) or not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    probs, order = F.softmax(logits.float(), dim=-1).sort(dim=-1, descending=True)  # (..., V)
    mass_before = probs.cumsum(dim=-1) - probs  # (..., V)
    keep_sorted = mass_before < top_p
    keep_sorted[..., 0] = True  # guards against rounding when top_p is tiny
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to vocab order
    return logits.masked_fill(~keep, float("-inf"))


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample one token per row: logits (..., V) -> ids (...) (dtype long).

    The logits are divided by ``temperature`` (> 0; below 1 sharpens, above 1 flattens),
    then truncated to the ``top_k`` most likely tokens and/or the nucleus of mass ``top_p``
    (:func:`top_k_filter`, :func:`top_p_filter`, applied in that order), then sampled.
    """
    _check_logits(logits)
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use greedy_next for 0), got {temperature!r}")
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = F.softmax(logits.float(), dim=-1).reshape(-1, logits.shape[-1])  # (rows, V)
    ids = torch.multinomial(probs, num_samples=1, generator=generator)  # (rows, 1)
    return ids.view(logits.shape[:-1])


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float):
    """CTRL's repetition penalty (Keskar et al., 2019): logits (N, V), previous (N, t) ->
    logits (N, V) in which every token that occurs in ``previous`` is made less likely.

    CTRL divides such a token's logit by ``penalty`` (> 1 penalises; 1 changes nothing).
    A negative logit divided by ``penalty`` would *rise*, so, as in Hugging Face's
    ``RepetitionPenaltyLogitsProcessor``, negative logits are multiplied instead. A token
    is penalised once, however often it occurred.
    """
    _check_penalty(logits, previous, penalty)
    # <show repetition_penalty>
    seen = logits.gather(-1, previous)  # (N, t): the logit of each earlier token
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, previous, seen)  # (N, V)
    # </show repetition_penalty>


def _check_penalty(logits, previous, penalty) -> None:
    _check_logits(logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, V), got shape {tuple(logits.shape)}")
    if (
        not torch.is_tensor(previous)
        or previous.dtype != torch.long
        or previous.dim() != 2
        or previous.shape[0] != logits.shape[0]
    ):
        raise ValueError(
            f"previous must be a (N={logits.shape[0]}, t) tensor of dtype torch.long, got "
            + (
                f"{previous.dtype} of shape {tuple(previous.shape)}"
                if torch.is_tensor(previous)
                else type(previous).__name__
            )
        )
    if previous.numel() and not (0 <= previous.min() and previous.max() < logits.shape[-1]):
        raise ValueError(f"previous holds ids outside [0, V={logits.shape[-1]})")
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty > 0:
        raise ValueError(f"penalty must be a number > 0 (1 = no penalty), got {penalty!r}")


# ---------------------------------------------------------------------------- streaming


def _check_stream_args(model, idx, max_new_tokens, temperature, top_k, top_p, penalty):
    config = getattr(model, "config", None)
    if not hasattr(config, "max_len") or not hasattr(model, "blocks"):
        raise ValueError(
            f"model must be a decoder-only fmbook model (a GPT), got {type(model).__name__}"
        )
    if not torch.is_tensor(idx) or idx.dtype != torch.long or idx.dim() != 2:
        raise ValueError("idx must be a (B, T) prompt tensor of dtype torch.long")
    if idx.shape[1] < 1:
        raise ValueError("idx must hold at least one token per row (the prompt)")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if temperature is not None and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be > 0, or None for greedy, got {temperature!r}")
    if temperature is None and (top_k is not None or top_p is not None):
        raise ValueError("greedy decoding (temperature=None) takes no top_k or top_p")
    if penalty is not None and (isinstance(penalty, bool) or not penalty > 0):
        raise ValueError(f"repetition_penalty must be None or > 0, got {penalty!r}")


@torch.no_grad()
def stream(
    model,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float | None = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
):
    """Generate with a decoder-only ``model`` (:class:`fmbook.models.GPT`) and yield each
    new token as soon as it is chosen: ids (B,) per step, ``max_new_tokens`` times.

    idx (B, T): the prompt. ``temperature=None`` decodes greedily; otherwise the next token
    is sampled by :func:`sample_next` (temperature, then ``top_k``, then ``top_p``). A
    ``repetition_penalty`` is applied first, to every token of the sequence so far, prompt
    included (as in Hugging Face's ``generate``). With ``use_cache`` each step feeds only
    the new token through the key/value caches, until the sequence outgrows the model's
    ``max_len``; from then on every step recomputes the last ``max_len`` tokens (learned
    absolute positions move as the window slides, see :class:`fmbook.models.GPT`).
    The model is in eval mode while the generator runs.
    """
    _check_stream_args(model, idx, max_new_tokens, temperature, top_k, top_p, repetition_penalty)
    L, was_training = model.config.max_len, model.training
    model.eval()
    try:
        # <show stream>
        caches, fed = None, 0  # fed: how many tokens of idx the caches hold
        for _ in range(max_new_tokens):
            if use_cache and idx.size(1) <= L:
                if caches is None:
                    caches = [KVCache() for _ in model.blocks]
                logits = model(idx[:, fed:], caches=caches)[0][:, -1]  # (B, V): new only
                fed = idx.size(1)
            else:  # no cache, or the window slides: recompute the last L tokens
                logits = model(idx[:, -L:])[0][:, -1]  # (B, V)
            if repetition_penalty is not None:
                logits = apply_repetition_penalty(logits, idx, repetition_penalty)
            if temperature is None:
                next_id = greedy_next(logits)  # (B,)
            else:
                next_id = sample_next(logits, temperature, top_k, top_p, generator)
            idx = torch.cat((idx, next_id[:, None]), dim=1)  # (B, T + 1)
            yield next_id
        # </show stream>
    finally:
        model.train(was_training)


def generate(model, idx: torch.Tensor, max_new_tokens: int, **options) -> torch.Tensor:
    """idx (B, T) -> (B, T + max_new_tokens): the prompt and everything :func:`stream`
    yields with these ``options``."""
    new = [token[:, None] for token in stream(model, idx, max_new_tokens, **options)]
    return torch.cat([idx, *new], dim=1)


def lm_step(model) -> tuple[StepFn, Callable[[torch.Tensor], None]]:
    """A cached step function for :func:`greedy_search` and :func:`beam_search` with a
    decoder-only ``model``, and its ``reorder`` hook: ``step(prefixes (N, t))`` feeds only
    the tokens not yet in the caches and returns next-token log-probs (N, V). Use a fresh
    pair for every search, keep ``t0 + max_len`` within the model's ``max_len``, and put
    the model in eval mode first."""
    if not hasattr(getattr(model, "config", None), "max_len") or not hasattr(model, "blocks"):
        raise ValueError(f"model must be a decoder-only fmbook model, got {type(model).__name__}")
    caches = [KVCache() for _ in model.blocks]

    def step(prefixes: torch.Tensor) -> torch.Tensor:
        if prefixes.shape[1] > model.config.max_len:
            raise ValueError(
                f"prefixes of {prefixes.shape[1]} tokens exceed the model's max_len="
                f"{model.config.max_len}: shorten the prompt or max_len of the search"
            )
        logits = model(prefixes[:, len(caches[0]) :], caches=caches)[0][:, -1]  # (N, V)
        return logits.log_softmax(dim=-1)

    def reorder(index: torch.Tensor) -> None:
        for cache in caches:
            cache.reorder(index)

    return step, reorder


# ---------------------------------------------------------------------------- sequences


def _check_search_args(start, max_len: int, eos_id) -> None:
    if not torch.is_tensor(start) or start.dtype != torch.long or start.dim() != 2:
        got = (
            f"{start.dtype} tensor of shape {tuple(start.shape)}"
            if torch.is_tensor(start)
            else (type(start).__name__)
        )
        raise ValueError(f"start must be a (B, t) tensor of dtype torch.long, got {got}")
    if start.shape[1] < 1:
        raise ValueError("start must hold at least one token per row (e.g. BOS)")
    _check_positive_int("max_len", max_len)
    if eos_id is not None and (not isinstance(eos_id, int) or eos_id < 0):
        raise ValueError(f"eos_id must be None or an int >= 0, got {eos_id!r}")


def _step(step_fn: StepFn, prefixes: torch.Tensor) -> torch.Tensor:
    """Call the step function and check that it returns log-probs (N, V)."""
    logp = step_fn(prefixes)
    if (
        not torch.is_tensor(logp)
        or not logp.dtype.is_floating_point
        or logp.dim() != 2
        or logp.shape[0] != prefixes.shape[0]
    ):
        got = f"shape {tuple(logp.shape)}" if torch.is_tensor(logp) else type(logp).__name__
        raise ValueError(
            f"step_fn must return float log-probs of shape (N={prefixes.shape[0]}, V), got {got}"
        )
    return logp.float()


@torch.no_grad()
def greedy_search(
    step_fn: StepFn, start: torch.Tensor, max_len: int, eos_id: int | None = None
) -> torch.Tensor:
    """Append the most likely token, up to ``max_len`` times: start (B, t0) -> (B, t0 + L).

    A row that has produced ``eos_id`` is finished: it is padded with ``eos_id`` from then on.
    Decoding stops early (``L < max_len``) once every row is finished.
    """
    _check_search_args(start, max_len, eos_id)
    seqs = start
    done = torch.zeros(start.shape[0], dtype=torch.bool, device=start.device)  # (B,)
    for _ in range(max_len):
        token = greedy_next(_step(step_fn, seqs))  # (B,)
        if eos_id is not None:
            token = token.masked_fill(done, eos_id)
            done = done | (token == eos_id)
        seqs = torch.cat((seqs, token[:, None]), dim=1)
        if done.all():
            break
    return seqs


def length_normalise(scores: torch.Tensor, lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT length penalty (Wu et al., 2016): ``score / ((5 + length) / 6) ** alpha``.

    ``alpha=0`` keeps the raw log-probability (which favours short outputs); larger alphas
    favour longer ones. Vaswani et al. (2017) decode with ``alpha=0.6``.
    """
    return scores / ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    step_fn: StepFn,
    start: torch.Tensor,
    beam_size: int,
    max_len: int,
    eos_id: int | None = None,
    length_penalty: float = 0.6,
    reorder: Callable[[torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search: keep the ``beam_size`` most likely prefixes of each row at every step.

    start (B, t0): the prefix of every row (e.g. BOS). ``step_fn(prefixes (B*K, t))``
    returns the next-token log-probs (B*K, V); row ``b * K + k`` is beam ``k`` of row ``b``
    (K = ``beam_size``). ``reorder(index (B*K,))``, if given, is called after every step with
    the previous row that each new row extends (for step functions with a cache).

    A beam that emits ``eos_id`` is finished: it stays in the beam with its score frozen and
    is padded with ``eos_id``, competing on its raw log-probability with the open beams.
    The search stops after ``max_len`` new tokens or when all beams are finished; the best
    beam of each row is then chosen by :func:`length_normalise` with ``alpha=length_penalty``
    (length = new tokens up to and including the first EOS).

    Returns (sequences (B, t0 + L), scores (B,)): the best beam of each row, padded with
    ``eos_id``, and its total log-probability (not length-normalised). With ``beam_size=1``
    this is :func:`greedy_search`; with a beam as wide as the number of prefixes, it is
    exhaustive search.
    """
    _check_search_args(start, max_len, eos_id)
    _check_positive_int("beam_size", beam_size)
    if not isinstance(length_penalty, (int, float)) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a number >= 0, got {length_penalty!r}")
    B, K, device = start.shape[0], beam_size, start.device
    seqs = start.repeat_interleave(K, dim=0)  # (B*K, t0)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start equal: keep one so the first step has no duplicates
    done = torch.zeros(B * K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B * K, dtype=torch.long, device=device)
    if reorder is not None:
        reorder(torch.arange(B, device=device).repeat_interleave(K))
    for _ in range(max_len):
        logp = _step(step_fn, seqs)  # (B*K, V)
        V = logp.shape[1]
        if eos_id is not None:
            if eos_id >= V:
                raise ValueError(f"eos_id={eos_id} is not below the vocabulary size V={V}")
            frozen = torch.full_like(logp, float("-inf"))
            frozen[:, eos_id] = 0.0  # a finished beam continues with EOS at no cost
            logp = torch.where(done[:, None], frozen, logp)
        candidates = (scores.view(B * K, 1) + logp).view(B, K * V)
        scores, flat = candidates.topk(K, dim=1)  # (B, K) each, best first
        parent = (flat // V + K * torch.arange(B, device=device)[:, None]).view(-1)  # (B*K,)
        token = (flat % V).view(-1)  # (B*K,)
        seqs = torch.cat((seqs[parent], token[:, None]), dim=1)
        lengths = lengths[parent] + (~done[parent]).long()
        done = done[parent] | (token == eos_id if eos_id is not None else False)
        if reorder is not None:
            reorder(parent)
        if done.all():
            break
    ranked = length_normalise(scores, lengths.view(B, K), length_penalty)  # (B, K)
    best = ranked.argmax(dim=1) + K * torch.arange(B, device=device)  # (B,)
    return seqs[best], scores.view(-1)[best]
