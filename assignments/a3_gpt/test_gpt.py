"""Autograder of assignment 3: ``python -m pytest assignments/a3_gpt``.

Every test calls your code through ``adapters.py``. The last test trains a small GPT on
Tiny Shakespeare with your ``train`` and checks its validation loss against a bar.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from fmbook.data import load_shakespeare, split_shakespeare
from fmbook.generation import generate
from fmbook.models import GPT, GPTConfig
from fmbook.tokenizers import CharTokenizer

from .adapters import run_get_batch, run_lm_loss, run_lr_at, run_sample, run_train


def tiny_gpt(seed: int = 0, vocab_size: int = 11, max_len: int = 8) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, max_len=max_len, n_layer=1, n_head=2, d_model=16))


def sharp_gpt(scale: float, seed: int = 0) -> GPT:
    """A tiny GPT whose logits are ``scale`` times larger: far from uniform, no near-ties."""
    model = tiny_gpt(seed)
    with torch.no_grad():
        model.ln_f.weight.mul_(scale)
    return model.eval()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- get_batch


def test_get_batch_returns_windows_and_targets_shifted_by_one():
    data = torch.arange(100)
    x, y = run_get_batch(data, 7, 5, gen())
    assert x.shape == y.shape == (7, 5), "x and y must both be (batch_size, context)"
    assert x.dtype == y.dtype == torch.long
    assert torch.equal(x[:, 1:], x[:, :-1] + 1), "each row of x must be a contiguous window"
    assert torch.equal(y, x + 1), "y must be x shifted by one token: y[b, t] = data[i + t + 1]"
    assert x.min() >= 0 and y.max() <= 99


def test_get_batch_draws_every_start_that_fits():
    data = torch.arange(8)  # context 5: the starts 0, 1, 2 fit (targets end at data[7])
    x, _ = run_get_batch(data, 600, 5, gen())
    assert set(x[:, 0].tolist()) == {0, 1, 2}, "starts must be uniform on 0..N-context-1"


def test_get_batch_is_reproducible_with_a_seeded_generator():
    data = torch.arange(1000)
    a = run_get_batch(data, 4, 16, gen(3))
    b = run_get_batch(data, 4, 16, gen(3))
    c = run_get_batch(data, 4, 16, gen(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), "use the generator you are given"
    assert not torch.equal(a[0], c[0])


# ----------------------------------------------------------------------------- lm_loss


def test_lm_loss_is_the_mean_next_token_cross_entropy():
    model = tiny_gpt()
    g = gen(1)
    x = torch.randint(11, (3, 8), generator=g)  # (B, T)
    y = torch.randint(11, (3, 8), generator=g)
    loss = run_lm_loss(model, x, y)
    logits = model(x)[0]  # (B, T, V)
    expected = F.cross_entropy(logits.reshape(-1, 11), y.reshape(-1))
    assert loss.dim() == 0, "the loss must be a scalar tensor"
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(loss, model(x, y)[1])
    loss.backward()  # the loss must stay connected to the parameters
    assert model.tok_emb.weight.grad is not None


# ----------------------------------------------------------------------------- lr_at


@pytest.mark.parametrize(
    "step, min_lr, expected",
    [
        (0, 0.0, 1e-4),  # warm-up: peak * 1 / 10
        (4, 0.0, 5e-4),
        (9, 0.0, 1e-3),  # end of warm-up
        (10, 0.0, 1e-3),  # start of the cosine
        (35, 0.0, 1e-3 * (1 + math.cos(math.pi / 4)) / 2),
        (60, 0.0, 5e-4),  # half-way down
        (110, 0.0, 0.0),  # the end
        (60, 1e-4, 1e-4 + 9e-4 / 2),
        (110, 1e-4, 1e-4),
    ],
)
def test_lr_at_known_steps(step, min_lr, expected):
    lr = run_lr_at(step, 110, 1e-3, 10, min_lr)
    assert isinstance(lr, float), "return a Python float"
    assert lr == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_lr_at_decays_monotonically_after_warmup():
    lrs = [run_lr_at(s, 200, 3e-3, 20) for s in range(200)]
    assert (torch.tensor(lrs[:20]).diff() > 0).all(), "the warm-up must increase"
    assert (torch.tensor(lrs[20:]).diff() <= 0).all(), "the cosine must decrease"


# ----------------------------------------------------------------------------- train


def one_step(**options) -> tuple[GPT, GPT]:
    """A tiny GPT before and after one training step of a 1-step run with warm-up 4."""
    model = tiny_gpt()
    before = copy.deepcopy(model)
    data = torch.randint(11, (500,), generator=gen(2))
    options = dict(batch_size=8, context=6, peak_lr=1e-2, warmup=4, generator=gen(0)) | options
    losses = run_train(model, data, 1, **options)
    assert len(losses) == 1 and isinstance(losses[0], float)
    return before, model


def max_change(before: GPT, after: GPT) -> float:
    pairs = zip(before.parameters(), after.parameters(), strict=True)
    return max((a - b).abs().max().item() for a, b in pairs)


def test_train_first_step_moves_weights_by_the_scheduled_lr():
    # Adam's first step moves every weight with a gradient by about lr (m / sqrt(v) = +-1)
    before, after = one_step(weight_decay=0.0)
    lr = run_lr_at(0, 1, 1e-2, 4)  # 2.5e-3: the warm-up's first rate, not the peak
    assert max_change(before, after) == pytest.approx(lr, rel=0.05), (
        "the first AdamW step must use lr_at(0, steps, peak_lr, warmup)"
    )


def test_train_clips_the_gradient_before_the_step():
    # gradients clipped to norm 1e-9 are below Adam's eps (1e-8): the step is ~10x smaller
    before, after = one_step(weight_decay=0.0, grad_clip=1e-9)
    assert max_change(before, after) < 0.2 * run_lr_at(0, 1, 1e-2, 4), (
        "clip the gradient norm to grad_clip after backward() and before optimizer.step()"
    )


def test_train_decays_weight_matrices_only():
    before, after = one_step(weight_decay=10.0)
    lr = run_lr_at(0, 1, 1e-2, 4)
    # positions 6 and 7 are never fed (context 6 < max_len 8): no gradient, only decay
    expected = before.pos_emb.weight[6:] * (1 - lr * 10.0)
    torch.testing.assert_close(after.pos_emb.weight[6:], expected)
    change = (after.ln_f.weight - before.ln_f.weight).abs().max().item()
    assert change <= 1.05 * lr, "no weight decay on norm gains and biases (p.dim() < 2)"


def test_train_returns_losses_and_fits_a_periodic_sequence():
    model = tiny_gpt()
    data = torch.arange(11).repeat(60)  # 0 1 2 ... 10 0 1 2 ...: easy to predict
    options = dict(batch_size=16, context=8, peak_lr=1e-2, warmup=5, generator=gen(0))
    losses = run_train(model, data, 60, **options)
    assert len(losses) == 60 and all(isinstance(v, float) for v in losses)
    assert losses[0] > 2.0, "the first loss is before any update (about log 11 = 2.4)"
    assert sum(losses[-5:]) / 5 < 0.2, "the loss must fall on a sequence this easy"
    again = run_train(tiny_gpt(), data, 60, **options | dict(generator=gen(0)))
    assert again == pytest.approx(losses, abs=1e-5), "same seed, same run"


# ----------------------------------------------------------------------------- sample


def test_sample_keeps_the_prompt_and_the_model_mode():
    model = tiny_gpt().train()
    idx = torch.randint(11, (2, 3), generator=gen(1))
    out = run_sample(model, idx, 4, generator=gen(0))
    assert out.shape == (2, 7) and out.dtype == torch.long
    assert torch.equal(out[:, :3], idx), "the output starts with the prompt"
    assert out.max() < 11
    assert model.training, "restore the model's mode after sampling"


@pytest.mark.parametrize("temperature", [0, 1e-3])
def test_sample_at_temperature_zero_is_greedy_past_the_context(temperature):
    model = sharp_gpt(30.0)
    idx = torch.randint(11, (3, 2), generator=gen(1))
    greedy = generate(model, idx, 12, temperature=None)  # 14 tokens > max_len 8
    out = run_sample(model, idx, 12, temperature=temperature, generator=gen(0))
    assert torch.equal(out, greedy), (
        "temperature 0 (and its limit) is greedy; feed only the last max_len tokens"
    )


def test_sample_never_leaves_the_top_k():
    model = sharp_gpt(3.0)
    idx = torch.randint(11, (1, 5), generator=gen(1)).repeat(600, 1)  # (600, 5), same rows
    allowed = set(model(idx[:1])[0][0, -1].topk(3).indices.tolist())
    out = run_sample(model, idx, 1, temperature=2.0, top_k=3, generator=gen(0))
    drawn = set(out[:, -1].tolist())
    assert drawn <= allowed, f"sampled {sorted(drawn - allowed)} outside the top 3"
    assert drawn == allowed, "top_k=3 must keep (and sample) the 3 most likely tokens"


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_sample_draws_from_the_tempered_softmax(temperature):
    model = sharp_gpt(8.0)
    idx = torch.randint(11, (1, 5), generator=gen(1))
    with torch.no_grad():
        logits = model(idx)[0][0, -1]  # (V,)
    probs = F.softmax(logits / temperature, dim=-1)
    assert (F.softmax(logits, -1) - F.softmax(logits / 2, -1)).abs().max() > 0.1  # a real test
    out = run_sample(model, idx.repeat(4000, 1), 1, temperature=temperature, generator=gen(0))
    freq = torch.bincount(out[:, -1], minlength=11).float() / 4000
    assert (freq - probs).abs().max() < 0.035, "sample from softmax(logits / temperature)"


def test_sample_is_reproducible_with_a_seeded_generator():
    model = tiny_gpt()
    idx = torch.zeros(2, 1, dtype=torch.long)
    a = run_sample(model, idx, 10, top_k=5, generator=gen(7))
    b = run_sample(model, idx, 10, top_k=5, generator=gen(7))
    assert torch.equal(a, b), "pass the generator to torch.multinomial"


# ----------------------------------------------------------------------------- the bar

# Tiny Shakespeare, characters; a 2-layer GPT (d_model 64, 4 heads, context 32), 300 steps
# of batch 32 with peak lr 1e-2, warm-up 30 and cosine decay to 0 (~10 s on one thread).
# Validation loss (nats/char) of the reference solution, seeds 0, 1, 2: 2.200, 2.242, 2.198.
# Weaker baselines: the bigram model (counts, on the same validation text) 2.48; the same
# GPT with a constant lr 1e-2 (no warm-up, no decay) 2.489, 2.468, 2.488, and with the
# schedule at a tenth of the peak lr (1e-3) 2.49; the unigram model 3.35.
BAR = 2.35
CONFIG = dict(n_layer=2, n_head=4, d_model=64, max_len=32)
RUN = dict(batch_size=32, context=32, peak_lr=1e-2, warmup=30, min_lr=0.0, weight_decay=0.1)
STEPS = 300


def validation_loss(model: GPT, val_ids: torch.Tensor, context: int, windows: int = 256) -> float:
    """Mean next-token loss on ``windows`` evenly spaced windows of the validation text."""
    starts = torch.linspace(0, len(val_ids) - context - 1, windows).long()  # (W,)
    index = starts[:, None] + torch.arange(context)  # (W, T)
    model.eval()
    with torch.no_grad():
        return model(val_ids[index], val_ids[index + 1])[1].item()


def pretrain(seed: int) -> tuple[float, list[float]]:
    """Train the bar's model with your ``train``; return (validation loss, training losses)."""
    text = load_shakespeare()
    train_text, val_text = split_shakespeare(text)
    tokenizer = CharTokenizer.train(text)
    train_ids = torch.tensor(tokenizer.encode(train_text))
    val_ids = torch.tensor(tokenizer.encode(val_text))
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **CONFIG))
    losses = run_train(model, train_ids, STEPS, generator=gen(seed), **RUN)
    return validation_loss(model, val_ids, RUN["context"]), losses


def test_pretraining_beats_the_bar():
    val, losses = pretrain(seed=0)
    assert len(losses) == STEPS
    assert val < BAR, f"validation loss {val:.3f} is not below the bar {BAR}"
