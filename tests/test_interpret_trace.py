import pytest
import torch
import torch.nn as nn

from fmbook.interpret import record
from fmbook.models import GPT, GPTConfig
from fmbook.nn import KVCache

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gpt():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=17, max_len=12, n_layer=2, n_head=2, d_model=16)
    return GPT(cfg).eval()


def test_records_every_module_in_call_order_with_shapes(gpt):
    ids = torch.randint(0, 17, (3, 7))
    with record(gpt) as trace:
        logits, _ = gpt(ids)
    # a block finishes after its sub-layers; the model itself finishes last
    names = trace.names
    assert names.index("blocks.0.attn") < names.index("blocks.0") < names.index("blocks.1")
    assert names[-1] == ""
    assert names.index("ln_f") < names.index("lm_head")
    assert torch.equal(trace["lm_head"], logits)
    assert trace["tok_emb"].shape == (3, 7, 16) and trace["pos_emb"].shape == (7, 16)
    table = trace.table()
    assert len(table) == len(trace)
    row = table.set_index("module").loc["blocks.1.mlp"]
    assert row["shape"] == (3, 7, 16) and row["dtype"] == "float32"
    assert row["mean norm"] == pytest.approx(trace["blocks.1.mlp"].norm(dim=-1).mean().item())
    model_row = table.iloc[-1]
    assert model_row["module"] == "(model)" and model_row["shape"] == ((3, 7, 17), None)


def test_hooks_are_removed_and_outputs_are_copies(gpt):
    ids = torch.randint(0, 17, (1, 5))
    with record(gpt, ["ln_f"]) as trace:
        gpt(ids)
    gpt(ids)  # outside the block: not recorded
    assert len(trace) == 1 and trace.names == ["ln_f"]
    saved = trace["ln_f"].clone()
    trace["ln_f"].add_(1.0)  # the record is a copy: the model's tensors are unaffected
    assert not trace["ln_f"].requires_grad
    with record(gpt, ["ln_f"]) as again:
        gpt(ids)
    assert torch.allclose(again["ln_f"], saved)
    assert all(not m._forward_hooks for m in gpt.modules())


def test_hooks_are_removed_after_an_error(gpt):
    with pytest.raises(ValueError, match="max_len"):
        with record(gpt):
            gpt(torch.zeros(1, 13, dtype=torch.long))
    assert all(not m._forward_hooks for m in gpt.modules())


def test_one_record_per_call_when_decoding_with_a_cache(gpt):
    caches = [KVCache() for _ in gpt.blocks]
    with record(gpt, ["blocks.0.attn", "lm_head"]) as trace:
        gpt(torch.tensor([[1, 2, 3]]), caches=caches)
        for token in (4, 5):
            gpt(torch.tensor([[token]]), caches=caches)
    shapes = [tuple(t.shape) for t in trace.calls("lm_head")]
    assert shapes == [(1, 3, 17), (1, 1, 17), (1, 1, 17)]
    assert len(trace.calls("blocks.0.attn")) == 3 and len(caches[0]) == 5


def test_records_tuples_and_non_tensors():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x.argmax(-1), "tag"

    with record(Pair()) as trace:
        Pair()(torch.ones(2, 3))  # another instance: not hooked
    assert len(trace) == 0
    pair = Pair()
    with record(pair) as trace:
        pair(torch.ones(2, 3))
    row = trace.table().iloc[0]
    assert row["shape"] == ((2, 3), (2,), None) and row["dtype"] == ""
    assert row["mean norm"] != row["mean norm"]  # NaN: the output is not one float tensor


def test_bad_arguments_are_named(gpt):
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        with record("gpt"):
            pass
    with pytest.raises(ValueError, match=r"does not have: \['blocks.9'\]"):
        with record(gpt, ["ln_f", "blocks.9"]):
            pass
    with pytest.raises(ValueError, match="not the string"):
        with record(gpt, "ln_f"):
            pass
    with record(gpt, ["ln_f"]) as trace:
        pass
    with pytest.raises(KeyError, match="no module named 'lm_head'"):
        trace["lm_head"]
