"""Autograder of assignment 4: ``python -m pytest assignments/a4_lora``.

Every test calls your code through ``adapters.py``. The last tests pretrain a small network
on one task, adapt it with your LoRA to a shifted version of the task, and check its
accuracy against a bar.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fmbook.adapt import lora as book_lora
from fmbook.models import GPT, GPTConfig

from .adapters import (
    get_lora_base,
    get_lora_factors,
    run_add_lora,
    run_lora_linear,
    run_merge,
    run_trainable_parameters,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linear(d_in: int = 12, d_out: int = 10, bias: bool = True, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d_in, d_out, bias=bias)


def randomise_b(layer: nn.Module, seed: int = 1) -> None:
    """Give B random values, as after some training (at init B = 0 hides every bug)."""
    _, B = get_lora_factors(layer)
    with torch.no_grad():
        B.copy_(torch.randn(B.shape, generator=gen(seed)))


def tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=13, max_len=8, n_layer=2, n_head=2, d_model=16))


# ----------------------------------------------------------------------------- LoRALinear


def test_lora_linear_shapes_init_and_frozen_base():
    base = linear()
    layer = run_lora_linear(base, r=3, alpha=6.0)
    A, B = get_lora_factors(layer)
    assert isinstance(A, nn.Parameter) and isinstance(B, nn.Parameter)
    assert A.shape == (3, 12) and B.shape == (10, 3), "A is (r, d_in), B is (d_out, r)"
    assert torch.count_nonzero(B) == 0, "B starts at zero"
    assert A.std() > 0.01, "A starts at random (if A and B were both zero, neither would learn)"
    assert A.requires_grad and B.requires_grad
    assert get_lora_base(layer) is base
    assert not base.weight.requires_grad and not base.bias.requires_grad, "freeze the base layer"


def test_lora_linear_starts_equal_to_the_base():
    base = linear()
    layer = run_lora_linear(base, r=4, alpha=8.0)
    x = torch.randn(5, 12, generator=gen())
    torch.testing.assert_close(layer(x), base(x))


@pytest.mark.parametrize("r, alpha", [(4, 8.0), (2, 8.0), (4, 1.0)])
def test_lora_linear_computes_the_formula(r, alpha):
    base = linear()
    layer = run_lora_linear(base, r=r, alpha=alpha)
    randomise_b(layer)
    A, B = get_lora_factors(layer)
    x = torch.randn(2, 5, 12, generator=gen())  # (..., d_in) with two leading dimensions
    with torch.no_grad():
        expected = x @ base.weight.T + base.bias + (alpha / r) * x @ A.T @ B.T  # (2, 5, 10)
        got = layer(x)
    assert got.shape == (2, 5, 10)
    torch.testing.assert_close(got, expected)  # y = x W^T + b + (alpha / r) x A^T B^T


def yours_and_the_books():
    """Your LoRA layer (B randomised) and the book's on the same base, A and B."""
    base = linear()
    layer = run_lora_linear(base, r=4, alpha=16.0)
    randomise_b(layer)
    A, B = get_lora_factors(layer)
    book = book_lora.LoRALinear(copy.deepcopy(base), r=4, alpha=16.0)
    with torch.no_grad():
        book.lora_A.copy_(A)
        book.lora_B.copy_(B)
    return layer, book


def test_lora_linear_matches_the_book_on_the_same_factors():
    layer, book = yours_and_the_books()
    with torch.no_grad():
        x = torch.randn(7, 12, generator=gen())
        torch.testing.assert_close(layer(x), book(x))


# ----------------------------------------------------------------------------- merge


@pytest.mark.parametrize("bias", [True, False])
def test_merge_gives_a_linear_layer_with_the_same_outputs(bias):
    base = linear(bias=bias)
    layer = run_lora_linear(base, r=4, alpha=8.0)
    randomise_b(layer)
    A, B = get_lora_factors(layer)
    W = base.weight.detach().clone()
    merged = run_merge(layer)
    assert type(merged) is nn.Linear, "merge returns a plain nn.Linear"
    assert (merged.bias is None) == (not bias)
    with torch.no_grad():
        torch.testing.assert_close(merged.weight, W + (8.0 / 4) * B @ A)  # W' = W + (a/r) B A
        x = torch.randn(6, 12, generator=gen())
        torch.testing.assert_close(merged(x), layer(x), rtol=1e-5, atol=1e-5)
    assert torch.equal(base.weight, W), "merge must not change the LoRA layer's base weight"


def test_merge_matches_the_book():
    layer, book = yours_and_the_books()
    torch.testing.assert_close(run_merge(layer).weight, book.merged().weight)
    torch.testing.assert_close(run_merge(layer).bias, book.merged().bias)


# ----------------------------------------------------------------------------- add_lora


def test_add_lora_wraps_the_targets_and_starts_equal_to_the_base():
    model = tiny_gpt()
    reference = copy.deepcopy(model)
    names = run_add_lora(model, ("attn.qkv", "attn.proj"), r=2, alpha=4.0)
    expected = [f"blocks.{i}.attn.{n}" for i in range(2) for n in ("qkv", "proj")]
    assert sorted(names) == sorted(expected)
    for name in names:
        A, _ = get_lora_factors(model.get_submodule(name))
        assert A.shape[0] == 2
    assert isinstance(model.get_submodule("blocks.0.mlp.proj"), nn.Linear), "only the targets"
    idx = torch.randint(13, (3, 8), generator=gen())
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], reference(idx)[0])


def test_add_lora_trains_only_a_and_b_with_r_times_d_in_plus_d_out_parameters():
    model = tiny_gpt()
    names = run_add_lora(model, ("attn.qkv", "mlp.fc"), r=2, alpha=4.0)
    params = run_trainable_parameters(model)
    factors = {id(p) for name in names for p in get_lora_factors(model.get_submodule(name))}
    assert {id(p) for p in params} == factors, "only the A and B of wrapped layers train"
    assert [p for p in model.parameters() if p.requires_grad and id(p) not in factors] == []
    # qkv: d_in 16 -> d_out 48; mlp.fc: 16 -> 64; two blocks; r (d_in + d_out) each
    assert sum(p.numel() for p in params) == 2 * (2 * (16 + 48) + 2 * (16 + 64))


@pytest.mark.parametrize("target", ["attn.qkvv", "kv"])
def test_add_lora_rejects_a_target_that_matches_nothing(target):
    with pytest.raises(ValueError):  # "kv" is not a whole name component of "attn.qkv"
        run_add_lora(tiny_gpt(), (target,), r=2, alpha=4.0)


def test_add_lora_matches_the_end_of_the_qualified_name():
    model = tiny_gpt()
    assert run_add_lora(model, ("1.attn.qkv",), r=2, alpha=4.0) == ["blocks.1.attn.qkv"]
    assert isinstance(model.get_submodule("blocks.0.attn.qkv"), nn.Linear)


def test_a_training_step_changes_only_the_lora_factors():
    model = tiny_gpt()
    names = run_add_lora(model, ("attn.qkv", "attn.proj"), r=2, alpha=4.0)
    factors = [get_lora_factors(model.get_submodule(name)) for name in names]
    factor_ids = {id(p) for pair in factors for p in pair}
    before = {id(p): p.detach().clone() for p in model.parameters()}
    optimizer = torch.optim.AdamW(run_trainable_parameters(model), lr=1e-2, weight_decay=0.1)
    idx = torch.randint(13, (4, 8), generator=gen())
    for _ in range(2):  # step 1 moves only B (dL/dA = 0 while B = 0); step 2 moves A too
        loss = model(idx[:, :-1], idx[:, 1:])[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, (A, B) in zip(names, factors, strict=True):
        assert not torch.equal(A, before[id(A)]) and not torch.equal(B, before[id(B)]), name
    moved = [p.shape for p in model.parameters() if not torch.equal(p, before[id(p)])]
    frozen_moved = [
        tuple(p.shape)
        for p in model.parameters()
        if id(p) not in factor_ids and not torch.equal(p, before[id(p)])
    ]
    assert frozen_moved == [], f"frozen weights changed: shapes {frozen_moved[:3]}"
    assert len(moved) == 2 * len(names)


# ----------------------------------------------------------------------------- the bar

# The task: inputs x ~ N(0, I_16), label = argmax(P x) over 8 classes for a random P (8, 16).
# A 3-layer MLP is pretrained on it (600 steps). The new task is the old one on rotated
# inputs: label = argmax(P R x), R a 90-degree rotation in the planes (x0, x1) and (x2, x3).
# Then fc1 W R = W + W (R - I) is a rank-4 change of the first layer: LoRA with r = 4 can
# represent the shift exactly, while the new head alone cannot recover what the 32-unit
# hidden layers threw away. Accuracy on 4,000 fresh inputs, seeds 0, 1, 2 (measured):
#   pretrained model on the old task        0.945, 0.958, 0.959
#   frozen pretrained model on the new task 0.410, 0.515, 0.579
#   new task, head only fine-tuned          0.615, 0.620, 0.623
#   new task, LoRA r=4 on fc1 and fc2       0.943, 0.941, 0.953 (the reference; merged: same)
# (a full fine-tune of all weights, lr 3e-3, reaches 0.92-0.93 in the same 300 steps).
BAR = 0.85
D, HIDDEN, CLASSES = 16, 32, 8
PRETRAIN_STEPS, FINETUNE_STEPS = 600, 300


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(D, HIDDEN), nn.Linear(HIDDEN, HIDDEN)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, D) -> logits (N, CLASSES)
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


def rotation() -> torch.Tensor:
    """R (D, D): a quarter turn in the planes (x0, x1) and (x2, x3), identity elsewhere."""
    R = torch.eye(D)
    for i in (0, 2):
        R[i : i + 2, i : i + 2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    return R


def task(n: int, P: torch.Tensor, R: torch.Tensor, g: torch.Generator):
    x = torch.randn(n, D, generator=g)  # (n, D)
    return x, (x @ R.T @ P.T).argmax(dim=-1)  # labels (n,)


def fit(model: nn.Module, params, P, R, steps: int, lr: float, seed: int) -> None:
    g = gen(seed)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    for _ in range(steps):
        x, y = task(128, P, R, g)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@torch.no_grad()
def accuracy(model: nn.Module, P, R) -> float:
    x, y = task(4000, P, R, gen(99))
    return (model(x).argmax(dim=-1) == y).float().mean().item()


def pretrained(seed: int) -> tuple[MLP, torch.Tensor]:
    P = torch.randn(CLASSES, D, generator=gen(1000 + seed))  # the task
    torch.manual_seed(seed)
    model = MLP()
    fit(model, model.parameters(), P, torch.eye(D), PRETRAIN_STEPS, 3e-3, seed)
    return model, P


def lora_finetune(seed: int) -> tuple[float, float, float]:
    """(frozen, LoRA, merged-LoRA) accuracies on the new task, with your LoRA."""
    model, P = pretrained(seed)
    R = rotation()
    frozen = accuracy(model, P, R)
    torch.manual_seed(seed)
    names = run_add_lora(model, ("fc1", "fc2"), r=4, alpha=8.0)
    fit(model, run_trainable_parameters(model), P, R, FINETUNE_STEPS, 1e-2, seed + 10)
    adapted = accuracy(model, P, R)
    for name in names:  # replace every LoRA layer by its merged nn.Linear
        setattr(model, name, run_merge(model.get_submodule(name)))
    return frozen, adapted, accuracy(model, P, R)


def test_lora_adapts_to_the_shifted_task_above_the_bar():
    frozen, adapted, merged = lora_finetune(seed=0)
    assert frozen < BAR, "the task shift must hurt the frozen model (a sanity check)"
    assert adapted > BAR, f"LoRA accuracy {adapted:.3f} is not above the bar {BAR}"
    assert merged == pytest.approx(adapted, abs=0.002), "the merged model must predict the same"
