import pytest
import torch
import torch.nn as nn

from fmbook.interpret import forward_hooks


def test_calls_before_and_after_each_forward_then_removes_the_hooks():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    calls = []

    def before(name, module, args, kwargs):
        calls.append(("before", name, tuple(args[0].shape)))

    def after(name, module, args, kwargs, output):
        calls.append(("after", name, tuple(output.shape)))

    with forward_hooks({"lin": net[0], "act": net[1]}, after, before):
        net(torch.ones(2, 3))
    net(torch.ones(2, 3))  # outside the block: no call
    assert calls == [
        ("before", "lin", (2, 3)),
        ("after", "lin", (2, 4)),
        ("before", "act", (2, 4)),
        ("after", "act", (2, 4)),
    ]
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_hooks_are_removed_after_an_error():
    lin = nn.Linear(3, 4)
    with pytest.raises(RuntimeError):
        with forward_hooks({"lin": lin}, lambda *call: None):
            lin(torch.ones(2, 5))
    assert not lin._forward_hooks
