"""The book's optimiser (AdamWCosineTask.configure_optimizers) decays only the matrices:
the weights of matmuls and embeddings; biases and normalisation weights are not decayed,
and every trainable parameter is in exactly one group."""

import pytest
from torch import nn

from fmbook.models.gpt import GPT, GPTConfig
from fmbook.tasks import AdamWCosineTask

pytestmark = pytest.mark.usefixtures("one_thread")

NORMS = (nn.LayerNorm, nn.RMSNorm, nn.BatchNorm1d, nn.GroupNorm)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.norm = nn.LayerNorm(8)
        self.proj = nn.Linear(8, 8)
        self.head = nn.Linear(8, 10, bias=False)
        self.head.weight = self.emb.weight  # tied: one parameter, two modules
        self.frozen = nn.Linear(8, 8)
        self.frozen.requires_grad_(False)


def expected_decay(model: nn.Module) -> dict[int, bool]:
    """Whether each trainable parameter should be decayed, judged by the module owning it."""
    decay = {}
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_matrix = name == "weight" and not isinstance(module, NORMS)
            assert decay.setdefault(id(p), is_matrix) == is_matrix, f"{name} judged twice"
    return decay


def groups_of(model: nn.Module, weight_decay=0.1):
    task = AdamWCosineTask(model, weight_decay=weight_decay)
    optimizer = task.configure_optimizers()["optimizer"]
    return optimizer.param_groups


@pytest.mark.parametrize(
    "make",
    [Toy, lambda: GPT(GPTConfig(50, 16))],
    ids=["toy", "gpt"],
)
def test_matrices_are_decayed_biases_and_norms_are_not(make):
    model = make()
    groups = groups_of(model, weight_decay=0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    decayed, plain = ({id(p) for p in g["params"]} for g in groups)
    expected = expected_decay(model)
    assert {i for i, d in expected.items() if d} == decayed
    assert {i for i, d in expected.items() if not d} == plain
    # every trainable parameter in exactly one group, no frozen one in any
    listed = [id(p) for g in groups for p in g["params"]]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert len(listed) == len(set(listed)) and set(listed) == trainable
    assert decayed and plain


def test_the_toy_groups_by_name():
    model = Toy()
    names = {id(p): n for n, p in model.named_parameters()}  # the tied weight listed once
    decayed, plain = ({names[id(p)] for p in g["params"]} for g in groups_of(model))
    assert decayed == {"emb.weight", "proj.weight"}
    assert plain == {"norm.weight", "norm.bias", "proj.bias"}
