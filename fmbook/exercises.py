"""The checks of the book's exercises whose answers can be checked: a number, a few
numbers, or a function. Each exercise's text says how to call its check, e.g.

    from fmbook import check
    check.exercise("ex-gpt-units", bits=..., perplexity=...)

Every reference below is computed from the exercise's data (or by the book's library), not
typed in, and the messages never show it (see :mod:`fmbook.check`).
"""

from __future__ import annotations

import math

import torch

from .check import Verdict, function, number, register


def all_of(*verdicts: Verdict) -> Verdict:
    """One verdict for a multi-part answer: the first wrong part's message, or all right."""
    for verdict in verdicts:
        if not verdict:
            return verdict
    return Verdict(True, "every part agrees with the book's answer.")


# ------------------------------------------------------------------ Part 2: concepts


@register("ex-tokens-embeddings-params")
def _embedding_share(share_gpt2=...):
    from .models import GPTConfig
    from .models.counting import gpt_params

    cfg = GPTConfig(vocab_size=50_257, max_len=1024, n_layer=12, n_head=12, d_model=768)
    share = 50_257 * 768 / gpt_params(cfg)
    # "about 124 million" in the text: 124e6 or the exact count are both right
    return number(share_gpt2, share, rtol=0.01, what="(a) The share of GPT-2 small")


@register("ex-end-to-end-cache-memory")
def _cache_bytes(gpt2_bytes=...):
    n_layer, t, d, bytes_per_number = 12, 1024, 768, 4
    reference = 2 * n_layer * t * d * bytes_per_number  # a key and a value per layer
    return number(gpt2_bytes, reference, rtol=1e-3, what="The cache of GPT-2 small in bytes")


# ------------------------------------------------------------------ Part 3: algorithms


@register("ex-gpt-units")
def _units(bits=..., perplexity=...):
    loss = 1.50  # nats per character
    return all_of(
        number(bits, loss / math.log(2), rtol=2e-3, what="Bits per character"),
        number(perplexity, math.exp(loss), rtol=2e-3, what="The perplexity"),
    )


@register("ex-mlm-budget")
def _mlm_budget(bert_chars_per_step=..., gpt_steps=..., gpt_steps_15=...):
    from .pretrained import RECIPES

    r = RECIPES["full"]
    per_step = r.p_mask * r.batch_size * r.block_size  # characters BERT is scored on
    gpt_per_step = r.batch_size * r.block_size
    return all_of(
        number(bert_chars_per_step, per_step, what="BERT's supervised characters per step"),
        number(gpt_steps, r.max_steps * per_step / gpt_per_step, what="The GPT steps"),
        number(
            gpt_steps_15,
            r.max_steps * 0.15 * r.batch_size * r.block_size / gpt_per_step,
            what="The GPT steps at 15%",
        ),
    )


# ------------------------------------------------------------------ Part 4: mathematics


@register("ex-transformer-equations-gpt2")
def _gpt2_params(n_params=..., token_share=..., untied_extra=...):
    from .models import GPTConfig
    from .models.counting import gpt_params

    cfg = GPTConfig(vocab_size=50_257, max_len=1024, n_layer=12, n_head=12, d_model=768)
    total, table = gpt_params(cfg), 50_257 * 768
    return all_of(
        number(n_params, total, rtol=0, what="The parameter count"),
        number(token_share, table / total, rtol=2e-3, what="The token matrix's share"),
        number(untied_extra, table, rtol=0, what="What an untied head adds"),
    )


@register("ex-transformer-equations-compute")
def _compute(flops_6nd=..., chinchilla_flops=..., chinchilla_years=...):
    d, n_layer, steps, batch, context = 128, 4, 2250, 32, 128
    n_kaplan = 12 * n_layer * d**2  # non-embedding; biases and norms add under 1%
    chinchilla = 6 * 70e9 * 1.4e12
    year = 365.25 * 24 * 3600
    return all_of(
        number(flops_6nd, 6 * n_kaplan * steps * batch * context, rtol=0.02, what="(a) 6ND"),
        number(chinchilla_flops, chinchilla, rtol=0.02, what="(b) Chinchilla's compute"),
        number(chinchilla_years, chinchilla / 1e15 / year, rtol=0.02, what="(b) The years"),
    )


def _softmax_jacobian(z: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jacobian(lambda x: x.softmax(-1), z)  # (n, n)


@register("ex-attention-jacobian")
def _jacobian(jacobian_fn=...):
    """``jacobian_fn(z)``: z (n,) -> the (n, n) Jacobian of softmax(z), from the formula."""
    if not callable(jacobian_fn):
        return Verdict(False, "Pass your function (z -> J), not its result.")
    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(n, generator=g, dtype=torch.float64),) for n in (3, 5, 8)]

    def diagonal_only(z):
        return torch.diag(z.softmax(-1))

    def outer_only(z):
        p = z.softmax(-1)
        return -torch.outer(p, p)

    return function(
        jacobian_fn,
        _softmax_jacobian,
        cases,
        mistakes=[
            ("misses the -p_i p_j term off (and on) the diagonal.", diagonal_only),
            ("misses the delta_ij p_i term on the diagonal.", outer_only),
        ],
        what="Your Jacobian",
    )


@register("ex-word2vec-sigmoid")
def _log_sigmoid(grad_fn=...):
    """``grad_fn(x)``: the derivative of log sigma(-x), elementwise."""
    if not callable(grad_fn):
        return Verdict(False, "Pass your function (x -> d/dx log sigma(-x)), not its result.")
    cases = [(torch.linspace(-4, 4, 9, dtype=torch.float64),)]
    return function(
        grad_fn,
        lambda x: -torch.sigmoid(x),
        cases,
        mistakes=[("has the wrong sign: the inner derivative of -x is -1.", torch.sigmoid)],
        what="Your derivative",
    )


# ------------------------------------------------------------------ Part 5: practice


@register("ex-dbg-init-loss")
def _init_loss(loss_512=..., loss_gpt2=...):
    return all_of(
        number(loss_512, math.log(512), rtol=1e-3, what="The initial loss for 512 tokens"),
        number(loss_gpt2, math.log(50_257), rtol=1e-3, what="The initial loss for GPT-2"),
    )


@register("ex-scale-bytes")
def _scale_bytes(bytes_per_param=..., gib=..., min_gpus=...):
    per_param = 2 + 2 + 4 + 4 + 4  # bf16 weights, bf16 grads, fp32 master, Adam m and v
    total = 7e9 * per_param
    gpus = math.ceil(total / 80e9)
    return all_of(
        number(bytes_per_param, per_param, rtol=0, what="Bytes per parameter"),
        number(gib, total / 2**30, rtol=0.01, what="The memory in GiB"),
        number(min_gpus, gpus, rtol=0, what="The number of GPUs"),
    )


@register("ex-scale-sampler")
def _sampler(per_rank=...):
    return number(per_rank, math.ceil(10 / 4), rtol=0, what="Items per rank")


# ------------------------------------------------------------------ Part 6: applications


@register("ex-qa-f1")
def _qa_f1(em=..., f1=...):
    from .metrics import squad_scores

    s = squad_scores(["the Second Citizen"], [["First Citizen", "Citizen"]])
    return all_of(
        number(em, s["em"], atol=0.1, what="EM (in percent)"),
        number(f1, s["f1"], rtol=2e-3, what="F1 (in percent)"),
    )


@register("ex-qa-precision")
def _qa_precision(max_precision=...):
    return number(max_precision, 1 / 5, rtol=1e-6, what="The largest precision@5")


@register("ex-speech-ctc-greedy")
def _ctc(p_empty=..., p_a=...):
    from . import ctc

    toy = torch.tensor([[0.55, 0.45]] * 3).log()  # (T, V): blank, a
    return all_of(
        number(p_empty, math.exp(ctc.labelling_log_prob(toy, [])), rtol=1e-3, what="p(empty)"),
        number(p_a, math.exp(ctc.labelling_log_prob(toy, [1])), rtol=1e-3, what="p(a)"),
    )


@register("ex-translation-length-penalty")
def _length_penalty(length_alpha0=..., length_alpha1=...):
    from .generation import length_normalise

    n = torch.arange(0, 20)  # tokens before the end token
    logp = -0.2 * n - 1.5
    best = [int(n[length_normalise(logp, n + 1, a).argmax()]) + 1 for a in (0.0, 1.0)]
    return all_of(
        number(length_alpha0, best[0], rtol=0, what="The length at alpha = 0"),
        number(length_alpha1, best[1], rtol=0, what="The length at alpha = 1"),
    )


# ------------------------------------------------------------------ Part 7: trends


@register("ex-mm-init-loss")
def _infonce_init(loss_b10=...):
    return number(loss_b10, math.log(10), rtol=1e-3, what="The initial loss for B = 10")


@register("ex-mm-temperature")
def _infonce_floor(min_loss=...):
    b = 10  # the best arrangement: a regular simplex, every other cosine -1/(B - 1)
    best = math.log(1 + (b - 1) * math.exp(-(1 + 1 / (b - 1))))
    return number(min_loss, best, rtol=2e-3, what="The smallest loss at tau = 1")


@register("ex-compute-chinchilla")
def _chinchilla_split(n_params=..., n_tokens=...):
    c = 3.14e23
    n = math.sqrt(c / (6 * 20))  # C = 6 N D with D = 20 N
    return all_of(
        number(n_params, n, rtol=0.01, what="The compute-optimal parameters"),
        number(n_tokens, 20 * n, rtol=0.01, what="The compute-optimal tokens"),
    )


@register("ex-compute-gqa")
def _gqa_cache(gqa_bytes=..., mha_bytes=...):
    layers, kv_heads, heads, d_head, context, fp16 = 80, 8, 64, 128, 4096, 2
    per_head = 2 * layers * d_head * context * fp16  # a key and a value in every layer
    return all_of(
        number(gqa_bytes, kv_heads * per_head, rtol=1e-3, what="The cache with 8 KV heads"),
        number(mha_bytes, heads * per_head, rtol=1e-3, what="The cache with 64 KV heads"),
    )
