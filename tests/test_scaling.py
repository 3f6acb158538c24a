"""fmbook.scaling: the memory model, its measurement, gradient records, checkpointing."""

import pytest
import torch

from fmbook import scaling as S
from fmbook.models.gpt import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = dict(vocab_size=65, max_len=32, n_layer=2, n_head=2, d_model=32)


def model(checkpointing=False):
    torch.manual_seed(0)
    m = GPT(GPTConfig(**CFG))
    return S.checkpoint_blocks(m) if checkpointing else m


def test_training_memory_is_16_bytes_per_parameter_with_adam_in_fp32():
    est = S.training_memory(1000, activations=500)
    assert (est.params, est.grads, est.optimizer, est.activations) == (4000, 4000, 8000, 500)
    assert est.total == 16 * 1000 + 500
    assert S.training_memory(10, optimizer_states=0).total == 80  # plain SGD
    with pytest.raises(ValueError, match="n_params"):
        S.training_memory(0)


def test_sharding_divides_the_right_terms():
    est = S.training_memory(1200, activations=100)
    assert S.sharded_memory(est, 4, 0) == est
    z1, z2, z3 = (S.sharded_memory(est, 4, s) for s in (1, 2, 3))
    assert (z1.params, z1.grads, z1.optimizer) == (4800, 4800, 2400)
    assert (z2.params, z2.grads, z2.optimizer) == (4800, 1200, 2400)
    assert (z3.params, z3.grads, z3.optimizer) == (1200, 1200, 2400)
    assert z3.activations == 100  # data parallelism never shards activations
    with pytest.raises(ValueError, match="stage"):
        S.sharded_memory(est, 2, 4)


def test_activation_model_counts_a_gpt_within_ten_percent():
    """The formula against the bytes a GPT really saves for backward (saved-tensor hook)."""
    m, B, T = model(), 4, 32
    x = torch.randint(0, 65, (B, T))
    params = {p.untyped_storage().data_ptr() for p in m.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params and t.is_floating_point():
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _, loss = m(x, x)
    args = (B, T, CFG["d_model"], CFG["n_layer"], CFG["n_head"], CFG["vocab_size"])
    predicted = S.gpt_activation_bytes(*args)
    assert sum(saved.values()) == pytest.approx(predicted, rel=0.1)
    # with checkpointing: L block inputs plus one block recomputed, instead of L blocks
    n, d, L_ = B * T, CFG["d_model"], CFG["n_layer"]
    block = 17 * n * d + (4 + CFG["n_head"]) * n
    saving = 4 * ((L_ - 1) * block - L_ * n * d)
    assert predicted - S.gpt_activation_bytes(*args, checkpointing=True) == saving


def test_checkpointed_blocks_give_the_same_gradients_with_less_memory():
    x = torch.randint(0, 65, (8, 32))
    results = []
    for ck in (False, True):
        m = model(ck)

        def step(m=m):
            _, loss = m(x, x)
            loss.backward()

        peak = S.measure_memory(step)
        results.append((peak, {n.replace("block.", ""): p.grad for n, p in m.named_parameters()}))
    (plain, g1), (ck, g2) = results
    assert g1.keys() == g2.keys()
    assert all(torch.allclose(g1[k], g2[k], atol=1e-6) for k in g1)
    assert ck["peak"] < plain["peak"]
    assert plain["activations"] > 0 and plain["params"] > 0


def test_recorder_and_accumulation_match_the_large_batch(tmp_path):
    from fmbook.tasks import CausalLM, make_trainer

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(*torch.randint(0, 65, (2, 16, 32)))
    task = CausalLM(model(), warmup_steps=1, max_steps=1)
    trainer = make_trainer(
        max_steps=1,
        val_every=1,
        accelerator="cpu",
        limit_val_batches=0,
        accumulate_grad_batches=2,
        callbacks=[S.GradientRecorder(tmp_path)],
    )
    trainer.fit(task, torch.utils.data.DataLoader(data, batch_size=4))
    (record,) = S.load_recorded(tmp_path)
    assert len(record["batches"]) == 2
    ref = model()
    ref.load_state_dict({k.removeprefix("model."): v for k, v in record["weights"].items()})
    x, y = (torch.cat(t) for t in zip(*record["batches"], strict=True))
    ref(x, y)[1].backward()
    for name, p in ref.named_parameters():
        torch.testing.assert_close(record["grads"]["model." + name], p.grad, atol=1e-6, rtol=0)


def test_resumable_sampler_continues_where_it_stopped():
    whole = list(S.ResumableSampler(10, seed=3, start=0))
    assert sorted(whole) == list(range(10))
    assert list(S.ResumableSampler(10, seed=3, start=4)) == whole[4:]
    next_epoch = list(S.ResumableSampler(10, seed=3, start=10))
    assert sorted(next_epoch) == list(range(10)) and next_epoch != whole


def test_profile_table_lists_the_top_operators():
    m, x = model(), torch.randint(0, 65, (2, 32))
    table = S.profile_table(lambda: m(x, x)[1].backward(), top=5)
    assert list(table.columns) == ["op", "calls", "self_ms", "share"]
    assert len(table) == 5 and table["self_ms"].is_monotonic_decreasing


@pytest.mark.slow
def test_fsdp_on_cpu_shards_parameters_and_matches_one_process():
    batch = tuple(torch.randint(0, 65, (2, 4, 32)))
    ranks = S.run_fsdp_cpu(model, batch, n_processes=2, port=29541)
    total = ranks[0]["params_total"]
    assert sum(r["params_local"] for r in ranks) == total
    m = model()
    m(*batch)[1].backward()
    for name, p in m.named_parameters():
        torch.testing.assert_close(ranks[0]["grads"][name], p.grad, atol=1e-6, rtol=0)
