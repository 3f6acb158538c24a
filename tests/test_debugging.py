import math

import pytest
import torch
import torch.nn as nn

from fmbook.debugging import (
    ForgetEval,
    GradNormHistory,
    WindowSplit,
    grad_norms,
    initial_loss,
    layer_of,
    lr_range_test,
    max_weight_diff,
    no_causal_mask,
    overfit_batch,
    same_weights,
    shape_table,
    suggest_lr,
    window_coverage,
)
from fmbook.models import GPT, GPTConfig


def tiny_gpt(seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, max_len=8, n_layer=2, n_head=2, d_model=16, **kw))


def batch(seed=1, B=4, T=8):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 11, (B, T + 1), generator=g)
    return ids[:, :-1], ids[:, 1:]


def test_initial_loss_is_log_vocab_for_the_gpt_and_far_from_it_with_large_logits():
    model = tiny_gpt()
    loss, log_v = initial_loss(model, *batch())
    assert log_v == pytest.approx(math.log(11))
    assert abs(loss - log_v) < 0.05
    with torch.no_grad():  # a badly initialised output layer: large, confident logits
        model.tok_emb.weight.mul_(50)
    bad, _ = initial_loss(model, *batch())
    assert bad > log_v + 1


def test_overfit_batch_drives_the_loss_of_one_batch_down():
    losses = overfit_batch(tiny_gpt(), *batch(), steps=60, lr=1e-2)
    assert losses[-1] < 0.2 * losses[0]
    with pytest.raises(ValueError):
        overfit_batch(tiny_gpt(), *batch(), steps=0)


def test_lr_range_test_sweeps_exponentially_leaves_the_model_alone_and_stops_on_divergence():
    model = tiny_gpt()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [batch(s) for s in range(5)]
    frame = lr_range_test(model, batches, lr_min=1e-4, lr_max=10.0, steps=60)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    ratios = frame["lr"].iloc[1:].to_numpy() / frame["lr"].iloc[:-1].to_numpy()
    assert ratios == pytest.approx([ratios[0]] * len(ratios))
    assert frame["lr"].iloc[0] == pytest.approx(1e-4)
    assert len(frame) < 60  # lr 10 blows the loss up, the sweep stops early
    lr = suggest_lr(frame)
    assert frame["lr"].min() / 10 <= lr <= frame["lr"].max() / 10
    with pytest.raises(ValueError):
        lr_range_test(model, batches, lr_min=1.0, lr_max=0.1)


def test_layer_of_and_grad_norms_per_layer_match_a_direct_computation():
    assert layer_of("blocks.3.attn.qkv.weight") == "blocks.3"
    assert layer_of("tok_emb.weight") == "tok_emb"
    assert layer_of("bias") == "bias"
    model = tiny_gpt()
    _, loss = model(*batch())
    loss.backward()
    norms = grad_norms(model)
    assert set(norms) == {"tok_emb", "pos_emb", "blocks.0", "blocks.1", "ln_f"}
    direct = torch.cat([p.grad.flatten() for p in model.blocks[1].parameters()]).norm()
    assert norms["blocks.1"] == pytest.approx(direct.item(), rel=1e-5)
    with pytest.raises(ValueError):
        grad_norms(tiny_gpt())


def test_shape_table_lists_every_module_with_its_output_shape():
    model = tiny_gpt()
    x, _ = batch(B=3, T=5)
    table = shape_table(model, x)
    row = table.set_index("module").loc["blocks.0"]
    assert row["shape"] == (3, 5, 16)
    assert table["module"].iloc[-1] == "(model)"
    assert table.set_index("module").loc["lm_head", "shape"] == (3, 5, 11)
    short = shape_table(model, x, depth=1)
    assert "blocks.0.attn.qkv" not in set(short["module"]) and "blocks.1" in set(short["module"])


def test_no_causal_mask_lets_the_past_see_the_future_and_restores_the_mask():
    model = tiny_gpt().eval()
    x, _ = batch()
    x2 = x.clone()
    x2[:, -1] = (x[:, -1] + 1) % 11  # change only the last token
    masked = model(x)[0][:, 0] - model(x2)[0][:, 0]  # first position's logits
    assert masked.abs().max() == 0  # the first position cannot see the last
    with no_causal_mask(model):
        leaked = model(x)[0][:, 0] - model(x2)[0][:, 0]
    assert leaked.abs().max() > 1e-4
    restored = model(x)[0][:, 0] - model(x2)[0][:, 0]
    assert restored.abs().max() == 0
    with pytest.raises(ValueError):
        with no_causal_mask(nn.Linear(2, 2)):
            pass


def test_window_coverage_marks_the_covered_positions():
    cov = window_coverage(10, [0, 6], block_size=2)  # windows of 3 positions
    assert cov.tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1, 0]


def test_leaky_split_overlaps_training_text_and_the_correct_one_does_not(monkeypatch):
    text = "".join(chr(97 + (i * 7) % 26) for i in range(5000))
    monkeypatch.setattr("fmbook.data.shakespeare.load_text", lambda **kw: text)
    leaky = WindowSplit(block_size=16, batch_size=4, train_chars=1000, leaky=True)
    clean = WindowSplit(block_size=16, batch_size=4, train_chars=1000, leaky=False)
    leaky.setup()
    clean.setup()
    assert leaky.val_overlap() > 0.9
    assert clean.val_overlap() == 0.0
    assert len(leaky.train_set) + len(leaky.val_set) == 1000 - 16
    assert not set(leaky.train_set.indices) & set(leaky.val_set.indices)  # windows differ
    x, _ = next(iter(clean.val_dataloader()))
    assert torch.equal(x[0], clean.val_ids[:16])  # held-out text


def test_forget_eval_keeps_dropout_on_during_validation():
    from fmbook.tasks import CausalLM, make_trainer

    seen = []

    class Spy(CausalLM):
        def validation_step(self, batch, batch_idx):
            seen.append(self.model.training)
            return super().validation_step(batch, batch_idx)

    data = [batch(s) for s in range(2)]
    loader = torch.utils.data.DataLoader(
        [(x[i], y[i]) for x, y in data for i in range(len(x))], batch_size=4
    )
    for callbacks, expected in (([], False), ([ForgetEval()], True)):
        seen.clear()
        task = Spy(tiny_gpt(dropout=0.5), warmup_steps=1, max_steps=2)
        trainer = make_trainer(max_steps=2, val_every=2, callbacks=callbacks, accelerator="cpu")
        trainer.fit(task, loader, loader)
        assert seen and all(s is expected for s in seen)


def test_grad_norm_history_records_every_layer():
    from fmbook.tasks import CausalLM, make_trainer

    x, y = batch(B=8)
    loader = torch.utils.data.DataLoader(list(zip(x, y, strict=True)), batch_size=4)
    history = GradNormHistory(every=1)
    task = CausalLM(tiny_gpt(), warmup_steps=1, max_steps=3)
    make_trainer(
        max_steps=3, val_every=3, callbacks=[history], limit_val_batches=0, accelerator="cpu"
    ).fit(task, loader)
    frame = history.frame()
    assert sorted(frame["step"].unique()) == [0, 1, 2]
    assert (frame["grad_norm"] > 0).all() and frame["layer"].nunique() == 5


def test_same_weights_and_max_weight_diff():
    a, b = tiny_gpt(0), tiny_gpt(0)
    assert same_weights(a, b) and max_weight_diff(a, b) == 0
    with torch.no_grad():
        b.ln_f.weight[0] += 1e-3
    assert not same_weights(a, b)
    assert max_weight_diff(a, b) == pytest.approx(1e-3, rel=1e-2)


def test_validation_loss_is_deterministic_in_eval_mode_and_noisy_without_it():
    from fmbook.debugging import validation_loss
    from fmbook.tasks import CausalLM

    x, y = batch(B=8)
    loader = torch.utils.data.DataLoader(list(zip(x, y, strict=True)), batch_size=4)
    task = CausalLM(tiny_gpt(dropout=0.5))
    with torch.no_grad():
        direct = task.model.eval()(x, y)[1].item()
    a, b = validation_loss(task, loader), validation_loss(task, loader)
    assert a == b and a == pytest.approx(direct, rel=1e-5)
    torch.manual_seed(0)
    c = validation_loss(task, loader, [ForgetEval()])
    d = validation_loss(task, loader, [ForgetEval()])
    assert c != d and c != a
