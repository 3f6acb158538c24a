"""Decoding with a decoder-only LM (streaming, repetition penalty, cached beam search)
and the quality/diversity metrics of generated text."""

import math

import pytest
import torch

from fmbook.generation import (
    apply_repetition_penalty,
    beam_search,
    generate,
    greedy_search,
    lm_step,
    stream,
)
from fmbook.metrics import distinct_n, sample_nll, self_bleu
from fmbook.models import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_gpt(seed=0, max_len=24, vocab_size=11):
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=vocab_size, max_len=max_len, n_layer=2, n_head=2, d_model=32)
    return GPT(cfg).eval()


# ---------------------------------------------------------------------------- penalty


def test_repetition_penalty_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    previous = torch.tensor([[0, 1, 1]])  # token 1 twice: penalised once
    out = apply_repetition_penalty(logits, previous, 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 3.0]]  # positive / 2, negative * 2
    assert torch.equal(apply_repetition_penalty(logits, previous, 1.0), logits)
    assert logits.tolist() == [[2.0, -1.0, 0.5, 3.0]]  # the input is not modified


def test_repetition_penalty_matches_hugging_face():
    transformers = pytest.importorskip("transformers")
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 20, generator=g)
    previous = torch.randint(0, 20, (3, 7), generator=g)
    theirs = transformers.RepetitionPenaltyLogitsProcessor(1.3)(previous, logits.clone())
    torch.testing.assert_close(apply_repetition_penalty(logits, previous, 1.3), theirs)


@pytest.mark.parametrize(
    "previous, penalty, match",
    [
        (torch.tensor([[0, 1]]), 0.0, "penalty must be a number > 0"),
        (torch.tensor([[0, 1]]), True, "penalty must be a number > 0"),
        (torch.tensor([[0, 9]]), 1.2, "outside"),
        (torch.tensor([[0.0, 1.0]]), 1.2, "dtype torch.long"),
        (torch.tensor([[0], [1]]), 1.2, "N=1"),
    ],
)
def test_repetition_penalty_rejects_bad_input(previous, penalty, match):
    with pytest.raises(ValueError, match=match):
        apply_repetition_penalty(torch.zeros(1, 4), previous, penalty)


# ---------------------------------------------------------------------------- stream


def test_stream_yields_what_generate_returns_with_and_without_cache():
    model = tiny_gpt()
    prompt = torch.randint(0, 11, (3, 5))
    opts = dict(temperature=0.9, top_k=5, top_p=0.9, repetition_penalty=1.2)
    tokens = list(stream(model, prompt, 30, generator=torch.Generator().manual_seed(1), **opts))
    assert len(tokens) == 30 and all(t.shape == (3,) for t in tokens)
    streamed = torch.cat([prompt, torch.stack(tokens, dim=1)], dim=1)
    for use_cache in (True, False):  # 35 > max_len = 24: the window slides as well
        out = generate(
            model,
            prompt,
            30,
            generator=torch.Generator().manual_seed(1),
            use_cache=use_cache,
            **opts,
        )
        assert torch.equal(out, streamed)


def test_stream_is_lazy_and_restores_training_mode():
    model = tiny_gpt().train()
    tokens = stream(model, torch.zeros(1, 1, dtype=torch.long), 5, temperature=None)
    assert model.training  # nothing has run yet
    first = next(tokens)
    assert first.shape == (1,) and not model.training
    rest = list(tokens)
    assert len(rest) == 4 and model.training


def test_greedy_stream_equals_greedy_search_and_gpt_generate_top_1():
    model = tiny_gpt(1)
    prompt = torch.randint(0, 11, (2, 4))
    ours = generate(model, prompt, 15, temperature=None)
    step, _ = lm_step(model)
    assert torch.equal(ours, greedy_search(step, prompt, 15))
    assert torch.equal(ours, model.generate(prompt, 15, top_k=1))


def test_cached_beam_search_equals_uncached():
    model = tiny_gpt(2)
    prompt = torch.randint(0, 11, (2, 3))
    step, reorder = lm_step(model)
    cached = beam_search(step, prompt, 4, 12, length_penalty=0.0, reorder=reorder)
    plain = beam_search(
        lambda p: model(p)[0][:, -1].log_softmax(-1), prompt, 4, 12, length_penalty=0.0
    )
    assert torch.equal(cached[0], plain[0])
    torch.testing.assert_close(cached[1], plain[1])
    total_logp = -sample_nll(model, cached[0], 3) * 12  # (B,): the score is the log-prob
    torch.testing.assert_close(cached[1], total_logp, atol=1e-4, rtol=0)


def test_lm_step_refuses_prefixes_longer_than_the_model():
    model = tiny_gpt(max_len=8)
    step, _ = lm_step(model)
    with pytest.raises(ValueError, match="exceed the model's max_len=8"):
        greedy_search(step, torch.zeros(1, 4, dtype=torch.long), 6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=None, top_k=3), "greedy"),
        (dict(repetition_penalty=-1.0), "repetition_penalty"),
        (dict(max_new_tokens=-1), "max_new_tokens"),
        (dict(idx=torch.zeros(1, 0, dtype=torch.long)), "at least one token"),
        (dict(idx=torch.zeros(3, dtype=torch.long)), r"\(B, T\)"),
        (dict(model=torch.nn.Linear(2, 2)), "decoder-only"),
    ],
)
def test_stream_rejects_bad_arguments(kwargs, match):
    args = dict(model=tiny_gpt(), idx=torch.zeros(1, 2, dtype=torch.long), max_new_tokens=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        next(stream(args.pop("model"), args.pop("idx"), args.pop("max_new_tokens"), **args))


def test_hf_generate_gives_our_greedy_and_penalised_tokens():
    pytest.importorskip("transformers")
    from fmbook.models.hf_gpt2 import to_hf_gpt2

    model = tiny_gpt(3, max_len=32)
    hf = to_hf_gpt2(model).eval()
    prompt = torch.randint(0, 11, (2, 5))
    for penalty in (None, 1.5):
        ours = generate(model, prompt, 20, temperature=None, repetition_penalty=penalty)
        theirs = hf.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=False,
            max_new_tokens=20,
            min_new_tokens=20,
            pad_token_id=0,
            repetition_penalty=penalty or 1.0,
        )
        assert torch.equal(ours, theirs)


# ---------------------------------------------------------------------------- metrics


def test_distinct_n_by_hand():
    texts = ["a b a b", "a b c"]  # bigrams: ab ba ab | ab bc -> 3 distinct of 5
    assert distinct_n(texts, 1) == 3 / 7
    assert distinct_n(texts, 2) == 3 / 5
    assert distinct_n(["abab"], 2, tokenize=list) == 2 / 3  # characters: ab ba ab


@pytest.mark.parametrize(
    "texts, n, match",
    [
        ([], 1, "at least 1"),
        ("a b c", 1, "list of strings"),
        (["a b", 3], 1, "every sample must be a string"),
        (["a b"], 0, "n must be an int >= 1"),
        (["a", "b"], 2, "no 2-gram"),
    ],
)
def test_distinct_n_rejects_bad_input(texts, n, match):
    with pytest.raises(ValueError, match=match):
        distinct_n(texts, n)


def test_self_bleu_is_high_for_copies_and_low_for_different_texts():
    same = ["the king is dead , long live the king"] * 4
    assert self_bleu(same) == pytest.approx(100.0)
    different = [
        "the king is dead , long live the king",
        "my horse for a kingdom of lead",
        "to sleep perchance to dream of rain",
        "what light through yonder window breaks",
    ]
    assert self_bleu(different) < 20
    with pytest.raises(ValueError, match="at least 2"):
        self_bleu([])
    with pytest.raises(ValueError, match="at least 2"):
        self_bleu(["only one"])


def test_sample_nll_scores_only_the_generated_tokens():
    model = tiny_gpt(4)
    seqs = torch.randint(0, 11, (3, 10))
    nll = sample_nll(model, seqs, prompt_len=4, batch_size=2)
    logp = model(seqs[:, :-1])[0].log_softmax(-1)  # (3, 9, V)
    by_hand = -logp.gather(-1, seqs[:, 1:, None])[:, 3:, 0].mean(dim=1)  # tokens 4..9
    torch.testing.assert_close(nll, by_hand)
    assert nll.shape == (3,) and (nll > 0).all()
    assert abs(nll.mean().item() - math.log(11)) < 0.5  # untrained: near log V


@pytest.mark.parametrize(
    "seqs, prompt_len, match",
    [
        (torch.zeros(0, 5, dtype=torch.long), 2, "empty"),
        (torch.zeros(2, 5), 2, "dtype torch.long"),
        (torch.zeros(2, 5, dtype=torch.long), 5, "prompt_len must be in"),
        (torch.zeros(2, 5, dtype=torch.long), 0, "prompt_len must be in"),
        (torch.zeros(2, 30, dtype=torch.long), 2, "max_len=24"),
    ],
)
def test_sample_nll_rejects_bad_input(seqs, prompt_len, match):
    with pytest.raises(ValueError, match=match):
        sample_nll(tiny_gpt(), seqs, prompt_len)
