import time

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fmbook
from fmbook.adapt import add_lora, fine_tune_classifier, freeze_except_lora
from fmbook.models.bert import BERTConfig, BERTForSequenceClassification
from fmbook.tasks import SequenceClassification, make_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = BERTConfig(vocab_size=12, max_len=8, n_layer=1, n_head=2, d_model=8, n_segments=0)


def new_classifier():
    return BERTForSequenceClassification(CFG, 3, pooling="mean")  # draws from the global RNG


def loader():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 12, (24, 6), generator=g)
    return DataLoader(TensorDataset(ids, torch.arange(24) % 3), batch_size=8, shuffle=True)


def by_hand(make_model, train_loader, lr, steps, seed, weight_decay):
    """The routine the chapters wrote out before it moved into the library."""
    fmbook.seed_everything(seed)
    model = make_model()
    task = SequenceClassification(model, lr=lr, warmup_steps=max(1, steps // 10),
                                  max_steps=steps, weight_decay=weight_decay)  # fmt: skip
    trainer = make_trainer(max_steps=steps, val_every=steps, limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(task, train_dataloaders=train_loader)
    return model, time.perf_counter() - start


def test_same_model_as_the_routine_written_out_and_reproducible():
    model, seconds = fine_tune_classifier(new_classifier, loader(), lr=1e-2, steps=4, seed=3)
    reference, _ = by_hand(new_classifier, loader(), 1e-2, 4, 3, 0.1)
    again, _ = fine_tune_classifier(new_classifier, loader(), lr=1e-2, steps=4, seed=3)
    assert seconds > 0
    states = (
        model.state_dict().items(),
        reference.state_dict().values(),
        again.state_dict().values(),
    )
    for (name, p), q, r in zip(*states, strict=True):
        assert torch.equal(p, q) and torch.equal(p, r), name
    fresh = new_classifier()
    assert not torch.equal(model.classifier.weight, fresh.classifier.weight)  # it trained


def test_only_unfrozen_parameters_move_and_weight_decay_is_passed():
    def lora_classifier():
        model = new_classifier()
        add_lora(model, r=2, targets=("attn.qkv",))
        freeze_except_lora(model, train=("classifier",))
        return model

    torch.manual_seed(0)
    before = lora_classifier().state_dict()
    model, _ = fine_tune_classifier(lora_classifier, loader(), lr=1e-2, steps=3, seed=0)
    for name, value in model.state_dict().items():
        moved = not torch.equal(value, before[name])
        assert moved == ("lora_B" in name or "lora_A" in name or "classifier" in name), name
    decayed, _ = fine_tune_classifier(
        new_classifier, loader(), lr=1e-2, steps=3, seed=0, weight_decay=0.0
    )
    reference, _ = by_hand(new_classifier, loader(), 1e-2, 3, 0, 0.0)
    assert torch.equal(decayed.classifier.weight, reference.classifier.weight)


def test_relative_change_measures_the_distance_moved_and_merges_lora():
    from fmbook.adapt import relative_change

    torch.manual_seed(0)
    reference = new_classifier()
    moved = new_classifier()
    moved.load_state_dict(reference.state_dict())
    assert relative_change(moved, reference) == 0.0
    with torch.no_grad():
        for p in moved.parameters():
            p.mul_(1.5)  # every weight moves by half its size
    assert abs(relative_change(moved, reference) - 0.5) < 1e-6
    lora = new_classifier()
    lora.load_state_dict(reference.state_dict())
    add_lora(lora, r=2, targets=("attn.qkv",))
    assert relative_change(lora, reference) == 0.0  # B = 0: the merged model is the reference
    layer = lora.bert.blocks[0].attn.qkv
    with torch.no_grad():
        layer.lora_B.fill_(0.1)
        delta = layer.delta_weight().pow(2).sum()
    size = sum(p.pow(2).sum() for p in reference.parameters())
    assert abs(relative_change(lora, reference) - float((delta / size) ** 0.5)) < 1e-6
    assert any("lora_" in n for n, _ in lora.named_parameters())  # the model is not merged
    with pytest.raises(ValueError, match="different parameters"):
        relative_change(reference.bert, reference)
