import pytest
import torch
import torch.nn as nn

from fmbook.adapt import LoRALinear, add_lora, count_parameters, freeze_except_lora, merge_lora
from fmbook.models.bert import BERTConfig, BERTForSequenceClassification

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_classifier() -> BERTForSequenceClassification:
    torch.manual_seed(0)
    cfg = BERTConfig(vocab_size=20, max_len=16, n_layer=2, n_head=2, d_model=16, dropout=0.0)
    return BERTForSequenceClassification(cfg, n_classes=3, pooling="mean")


def test_starts_as_the_base_layer_and_merges_exactly():
    torch.manual_seed(0)
    base = nn.Linear(8, 6)
    x = torch.randn(4, 8)
    lora = LoRALinear(base, r=2, alpha=4)
    assert torch.equal(lora(x), base(x))  # B = 0 at the start
    with torch.no_grad():
        lora.lora_B.normal_()
    expected = base(x) + 2.0 * x @ lora.lora_A.T @ lora.lora_B.T  # alpha / r = 2
    torch.testing.assert_close(lora(x), expected)
    torch.testing.assert_close(lora.merged()(x), lora(x))
    assert torch.linalg.matrix_rank(lora.delta_weight()) == 2


def test_only_a_and_b_train_and_the_count_is_r_times_in_plus_out():
    model = tiny_classifier()
    total_before = count_parameters(model)[1]
    names = add_lora(model, r=4, targets=("attn.qkv", "attn.proj"))
    assert names == [f"bert.blocks.{i}.attn.{n}" for i in (0, 1) for n in ("qkv", "proj")]
    freeze_except_lora(model, train=("classifier",))
    trainable, total = count_parameters(model)
    lora = 2 * (4 * (16 + 48) + 4 * (16 + 16))  # two layers, qkv (16 -> 48) and proj (16 -> 16)
    head = 16 * 3 + 3
    assert trainable == lora + head
    assert total == total_before + lora


def test_training_changes_only_lora_and_head_and_merging_keeps_outputs():
    model = tiny_classifier()
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    add_lora(model, r=2)
    freeze_except_lora(model, train=("classifier",))
    ids = torch.randint(0, 20, (8, 10), generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % 3
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(5):
        opt.zero_grad()
        model(ids, labels)[1].backward()
        opt.step()
    for name, value in model.state_dict().items():
        if "lora_" in name or name.startswith("classifier"):
            continue
        torch.testing.assert_close(value, frozen[name.replace(".base.", ".")], rtol=0, atol=0)
    model.eval()
    before = model(ids)[0]
    assert merge_lora(model) == 4
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    torch.testing.assert_close(model(ids)[0], before, rtol=1e-5, atol=1e-6)
    assert set(model.state_dict()) == set(frozen)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="r=9 exceeds"):
        LoRALinear(nn.Linear(8, 8), r=9)
    with pytest.raises(ValueError, match="r must be"):
        LoRALinear(nn.Linear(8, 8), r=0)
    with pytest.raises(ValueError, match="base must be"):
        LoRALinear(nn.Conv1d(2, 2, 1))
    model = tiny_classifier()
    with pytest.raises(ValueError, match="no nn.Linear matches.*'qkv'"):
        add_lora(model, targets=("attn.query",))
    add_lora(model)
    with pytest.raises(ValueError, match="already has LoRA"):
        add_lora(model)
