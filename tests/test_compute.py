"""The cost calculator (fmbook.compute) against real models, FlopCounterMode and measured
bytes; int8 quantization and distillation (fmbook.efficiency, fmbook.tasks.distill)."""

import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fmbook import compute
from fmbook.efficiency import latency, quantize_int8, serialized_bytes
from fmbook.models import GPT, GPTConfig
from fmbook.models.counting import gpt_params
from fmbook.nn import KVCache
from fmbook.tasks import CausalLM, DistilledLM, distillation_loss

# The calculator must match FlopCounterMode to 0.1%: for the test model the attention
# term is ~19% of the total and the vocabulary head ~8%, so dropping either, or counting
# the backward as 1x instead of 2x the forward, fails by far more than the tolerance.
FLOP_TOLERANCE = 1e-3


def small(**kw):
    return GPTConfig(
        **{"vocab_size": 65, "max_len": 48, "n_layer": 2, "n_head": 4, "d_model": 32, **kw}
    )


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(mlp="swiglu", norm="rms", positions="rope", bias=False, tie_embeddings=False)],
)
def test_params_equal_numel(kw):
    cfg = small(**kw)
    assert compute.n_params(cfg) == sum(p.numel() for p in GPT(cfg).parameters())
    assert compute.n_params(GPT(cfg)) == compute.n_params(compute.shape(cfg))


def test_d_ff_matches_a_model_with_that_width():
    """A large_model with a non-default MLP width counts like the module it describes."""
    from fmbook.nn import SwiGLU

    s = compute.large_model(2, 32, 4, 65, 48, d_ff=40, mlp="swiglu", bias=False)
    default = compute.large_model(2, 32, 4, 65, 48, mlp="swiglu", bias=False)
    per_layer = sum(p.numel() for p in SwiGLU(32, hidden=40, bias=False).parameters()) - sum(
        p.numel() for p in SwiGLU(32, bias=False).parameters()
    )
    assert compute.n_params(s) - compute.n_params(default) == 2 * per_layer
    assert compute.flops_per_token(s) - compute.flops_per_token(default) == 6 * 2 * per_layer


def counted_training_flops(model, idx):
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("T", [16, 48])
def test_flops_against_flop_counter(T):
    cfg = small()
    model, B = GPT(cfg), 3
    idx = torch.randint(0, 65, (B, T), generator=torch.Generator().manual_seed(0))
    counted = counted_training_flops(model, idx)
    calc = B * T * compute.flops_per_token(cfg, T)
    assert abs(calc - counted) / counted < FLOP_TOLERANCE
    # the tolerance is tight enough to catch the two classic mistakes
    attention = B * T * 12 * cfg.n_layer * T * cfg.d_model
    assert abs(calc - attention - counted) / counted > 10 * FLOP_TOLERANCE
    assert abs(calc * 2 / 3 - counted) / counted > 10 * FLOP_TOLERANCE  # backward = 1x
    assert compute.train_flops(cfg, B * T, T) == calc


def test_measure_step_counts_attention():
    cfg = small()
    model = GPT(cfg)
    idx = torch.randint(0, 65, (2, 48), generator=torch.Generator().manual_seed(0))

    def step():
        _, loss = model(idx, idx)
        loss.backward()
        model.zero_grad(set_to_none=True)

    measured = compute.measure_step(step, repeats=2)
    calc = 2 * 48 * compute.flops_per_token(cfg)
    assert abs(measured["flops"] - calc) / calc < FLOP_TOLERANCE
    assert measured["seconds"] > 0 and measured["peak_bytes"] > 0
    assert measured["flop_per_s"] == pytest.approx(measured["flops"] / measured["seconds"])


def test_memory_against_measured_bytes():
    cfg = small()
    model = GPT(cfg)
    est = compute.training_memory_of(cfg, batch=4)
    assert est.params == compute.tensor_bytes(model) == 4 * gpt_params(cfg)
    assert est.optimizer == 2 * est.params  # AdamW: two fp32 moments
    opt = torch.optim.AdamW(model.parameters())
    idx = torch.randint(0, 65, (4, 48), generator=torch.Generator().manual_seed(0))
    _, loss = model(idx, idx)
    loss.backward()
    opt.step()
    state = sum(compute.tensor_bytes([s["exp_avg"], s["exp_avg_sq"]]) for s in opt.state.values())
    assert state == est.optimizer
    assert compute.tensor_bytes([p.grad for p in model.parameters()]) == est.grads
    checkpointed = compute.training_memory_of(cfg, batch=4, checkpointing=True)
    assert checkpointed.activations < est.activations


def test_kv_cache_bytes_equal_the_cache_tensors():
    cfg = small()
    model = GPT(cfg).eval()
    caches = [KVCache() for _ in model.blocks]
    with torch.no_grad():
        model(torch.zeros(3, 20, dtype=torch.long), caches=caches)
    assert compute.tensor_bytes(caches) == compute.kv_cache_bytes(cfg, 3, 20)


def test_large_models_match_the_papers():
    gpt3 = compute.large_model(96, 12288, 96, 50257, 2048)
    assert compute.n_params(gpt3) == pytest.approx(175e9, rel=0.01)
    # Brown et al. (2020): 3.14e23 FLOPs, i.e. 6 N D without attention
    flops = compute.train_flops(gpt3, 300e9)
    assert flops == pytest.approx(3.14e23, rel=0.04) and flops > 3.14e23
    llama = compute.large_model(
        80,
        8192,
        64,
        32000,
        2048,
        d_ff=22016,
        mlp="swiglu",
        norm="rms",
        positions="rope",
        bias=False,
        tie_embeddings=False,
    )
    assert compute.n_params(llama) == pytest.approx(65.2e9, rel=0.005)


def test_time_energy_co2():
    assert compute.training_seconds(1e18, 1e12, 0.5, n_devices=10) == pytest.approx(2e5)
    # Patterson et al. (2021), GPT-3: 3.55M V100-hours at 330 W, PUE 1.1, 429 g/kWh
    kwh = compute.energy_kwh(3.552e6, 330, 1.1)
    assert kwh / 1e3 == pytest.approx(1287, rel=0.01)
    assert compute.co2_tonnes(kwh, 429) == pytest.approx(552, rel=0.01)
    assert compute.measure_peak_flops((64, 128), repeats=2) > 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: compute.large_model(-1, 64, 4, 10, 8), "n_layer"),
        (lambda: compute.large_model(2, 64, 5, 10, 8), "divisible"),
        (lambda: compute.large_model(2, 64, 4, 0, 8), "vocab_size"),
        (lambda: compute.large_model(2, 64, 4, 10, 8, d_ff=-3), "d_ff"),
        (lambda: compute.training_seconds(1e18, 1e12, 0.0), r"\(0, 1\]"),
        (lambda: compute.training_seconds(1e18, 1e12, 1.5), r"\(0, 1\]"),
        (lambda: compute.training_seconds(-1.0, 1e12, 0.5), "flops"),
        (lambda: compute.train_flops(small(), -5), "n_tokens"),
        (lambda: compute.flops_per_token(small(), 49), "context"),
        (lambda: compute.energy_kwh(10, 300, 0.9), "pue"),
        (lambda: compute.kv_cache_bytes(small(), 0, 4), "batch"),
        (lambda: compute.shape("gpt3"), "GPTConfig"),
        (lambda: compute.measure_peak_flops((0,)), "sizes"),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_quantize_int8_smaller_and_close():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, max_len=32, n_layer=2, n_head=4, d_model=64)).eval()
    q = quantize_int8(model)
    assert type(model.blocks[0].attn.qkv) is torch.nn.Linear  # the original is unchanged
    assert type(q.lm_head) is torch.nn.Linear  # the tied head is skipped
    ratio = serialized_bytes(q) / serialized_bytes(model)
    assert 0.25 < ratio < 0.5
    idx = torch.randint(0, 65, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = model(idx, idx)[1], q(idx, idx)[1]
    assert abs(a - b) < 0.01
    with pytest.raises(ValueError, match="no nn.Linear"):
        quantize_int8(torch.nn.ReLU())
    assert latency(lambda: sum(range(100)), repeats=3).estimate > 0


def test_distillation_loss():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    y = torch.randint(0, 7, (2, 5), generator=g)
    ce = torch.nn.functional.cross_entropy(s.flatten(0, 1), y.flatten())
    assert distillation_loss(s, t, y, alpha=0.0) == pytest.approx(ce.item())
    assert distillation_loss(t, t, y, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)
    # alpha = 1: tau^2 KL; by hand at tau = 2
    p, q = torch.softmax(t / 2, -1), torch.softmax(s / 2, -1)
    kl = (p * (p.log() - q.log())).sum(-1).mean() * 4
    assert distillation_loss(s, t, y, 2.0, 1.0).item() == pytest.approx(kl.item(), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, y, temperature=0)
    with pytest.raises(ValueError, match="same vocabulary|one shape"):
        distillation_loss(s, t[..., :5], y)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
def test_distilled_lm_trains_towards_the_teacher():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=11, max_len=8, n_layer=1, n_head=2, d_model=16)
    teacher, student = GPT(cfg), GPT(cfg)
    task = DistilledLM(
        student, teacher, temperature=1.0, alpha=1.0, lr=1e-2, warmup_steps=1, max_steps=50
    )
    opt = task.configure_optimizers()["optimizer"]
    x = torch.randint(0, 11, (8, 8), generator=torch.Generator().manual_seed(1))
    losses = []
    for i in range(30):
        loss = task.training_step((x, x), i)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert not any(n.startswith("_teacher") for n in task.state_dict())
    assert all(not p.requires_grad for p in teacher.parameters())
    assert math.isfinite(losses[-1])
    # validation is CausalLM's: the student's plain cross-entropy, comparable across tasks
    assert isinstance(task, CausalLM)
    y = torch.roll(x, -1, dims=1)
    assert task.validation_step((x, y), 0).item() == pytest.approx(student(x, y)[1].item())
