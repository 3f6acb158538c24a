import copy
import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fmbook.models import GPT, GPTConfig
from fmbook.tasks import make_trainer
from fmbook.tasks.dpo import DPOTask, EvalEvery, dpo_loss, sample_log_ratios, sequence_logprob
from fmbook.utils import seed_everything

P = 4  # prompt tokens in the test batches


def tiny_gpt(seed=0):
    seed_everything(seed)
    return GPT(GPTConfig(vocab_size=11, max_len=16, n_layer=1, n_head=2, d_model=16))


def pair_batch(B=3, T=10, seed=0):
    """(chosen, rejected) (B, T) that share their first P tokens."""
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randint(0, 11, (B, T), generator=g)
    rejected = torch.randint(0, 11, (B, T), generator=g)
    rejected[:, :P] = chosen[:, :P]
    return chosen, rejected


def test_dpo_loss_matches_a_hand_computation():
    # pair 1: policy raised y_w by 0.5 nats and lowered y_l by 0.5 relative to the
    # reference; beta = 0.5 -> rewards +0.25 and -0.25, margin 0.5
    # pair 2: policy == reference on both -> margin 0, loss log 2
    loss, chosen, rejected = dpo_loss(
        torch.tensor([-1.0, -3.0]),
        torch.tensor([-2.0, -4.0]),
        torch.tensor([-1.5, -3.0]),
        torch.tensor([-1.5, -4.0]),
        beta=0.5,
    )
    assert chosen.tolist() == [0.25, 0.0] and rejected.tolist() == [-0.25, 0.0]
    by_hand = (math.log(1 + math.exp(-0.5)) + math.log(2)) / 2
    assert loss.item() == pytest.approx(by_hand, abs=1e-6)


def test_dpo_loss_needs_the_reference_terms():
    # the same policy log-probs with another reference give another loss: the reference
    # is not a constant that cancels
    pc, pr = torch.tensor([-1.0]), torch.tensor([-2.0])
    a = dpo_loss(pc, pr, torch.tensor([-1.0]), torch.tensor([-2.0]), beta=1.0)[0]
    b = dpo_loss(pc, pr, torch.tensor([-3.0]), torch.tensor([-1.0]), beta=1.0)[0]
    assert a.item() == pytest.approx(math.log(2))
    assert b.item() == pytest.approx(math.log(1 + math.exp(-3)), abs=1e-6)


def test_sequence_logprob_sums_the_reply_tokens():
    model = tiny_gpt().eval()
    seqs, _ = pair_batch()
    with torch.no_grad():
        got = sequence_logprob(model, seqs, P)
        logp = model(seqs[:, :-1])[0].log_softmax(-1)  # (B, T-1, V)
        want = sum(
            logp[:, t - 1].gather(-1, seqs[:, t : t + 1]).squeeze(-1)
            for t in range(P, seqs.shape[1])
        )
    assert got.shape == (3,)
    torch.testing.assert_close(got, want)
    # the prompt's own tokens are not scored: changing them changes only the context
    assert (got < 0).all()


def test_loss_is_log2_when_policy_equals_reference():
    task = DPOTask(tiny_gpt(), beta=0.3, prompt_len=P, max_steps=10, warmup_steps=1)
    loss, chosen, rejected = dpo_loss(*task.pair_logps(pair_batch()), beta=0.3)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    assert torch.all(chosen == 0) and torch.all(rejected == 0)


def test_no_gradient_reaches_the_reference():
    task = DPOTask(tiny_gpt(), beta=0.1, prompt_len=P, max_steps=10, warmup_steps=1)
    task.train()
    with torch.no_grad():  # move the policy away from the reference, so that grads are nonzero
        for p in task.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    loss = task.training_step(pair_batch(), 0)
    assert task.model.training and not task.reference.training  # the reference: eval mode
    loss.backward()
    assert all(p.grad is None for p in task.reference.parameters())
    assert all(not p.requires_grad for p in task.reference.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.model.parameters())
    optimised = {
        id(p) for g in task.configure_optimizers()["optimizer"].param_groups for p in g["params"]
    }
    assert optimised.isdisjoint(id(p) for p in task.reference.parameters())


def test_training_raises_the_chosen_reply_and_leaves_the_reference():
    chosen, rejected = pair_batch(B=8, seed=1)
    task = DPOTask(tiny_gpt(), beta=0.5, prompt_len=P, lr=1e-2, max_steps=20, warmup_steps=1)
    before = copy.deepcopy(task.reference.state_dict())
    loader = DataLoader(TensorDataset(chosen, rejected), batch_size=8)
    make_trainer(max_steps=20, val_every=20, limit_val_batches=0).fit(
        task, train_dataloaders=loader
    )
    loss, c, r = dpo_loss(*task.pair_logps((chosen, rejected)), beta=0.5)
    assert loss.item() < 0.5 * math.log(2) and (c > r).all()
    after = task.reference.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_sample_log_ratios_are_zero_for_identical_models():
    model = tiny_gpt()
    prompts = torch.randint(0, 11, (5, P), generator=torch.Generator().manual_seed(0))
    seqs, ratio = sample_log_ratios(
        model, copy.deepcopy(model), prompts, 6, generator=torch.Generator().manual_seed(1)
    )
    assert seqs.shape == (5, P + 6) and torch.equal(seqs[:, :P], prompts)
    torch.testing.assert_close(ratio, torch.zeros(5), atol=1e-5, rtol=0)


def test_eval_every_records_the_start_and_every_k_steps():
    chosen, rejected = pair_batch(B=4)
    task = DPOTask(tiny_gpt(), beta=0.1, prompt_len=P, max_steps=5, warmup_steps=1)
    monitor = EvalEvery(lambda model: {"training": model.training}, every=2)
    make_trainer(max_steps=5, val_every=5, limit_val_batches=0, callbacks=[monitor]).fit(
        task, train_dataloaders=DataLoader(TensorDataset(chosen, rejected), batch_size=2)
    )
    frame = monitor.frame()
    assert frame.step.tolist() == [0, 2, 4, 5] and not frame.training.any()


@pytest.mark.parametrize("beta", [0, -0.1, float("nan"), float("inf"), True])
def test_bad_beta_is_refused(beta):
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        dpo_loss(x, x, x, x, beta=beta)
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        DPOTask(tiny_gpt(), beta=beta, prompt_len=P)


def test_mismatched_shapes_are_refused():
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="same shape"):
        dpo_loss(x, x, x, torch.zeros(3), beta=0.1)
    with pytest.raises(ValueError, match="1-D float tensor"):
        dpo_loss(x, x, x, torch.zeros(2, 1), beta=0.1)
    task = DPOTask(tiny_gpt(), beta=0.1, prompt_len=P)
    chosen, rejected = pair_batch()
    with pytest.raises(ValueError, match="chosen and rejected must have the same shape"):
        task.pair_logps((chosen, rejected[:, :-1]))
    other = rejected.clone()
    other[:, 0] = (chosen[:, 0] + 1) % 11
    with pytest.raises(ValueError, match="share their first prompt_len=4 tokens"):
        task.pair_logps((chosen, other))
    with pytest.raises(ValueError, match="prompt_len must be in"):
        sequence_logprob(tiny_gpt(), chosen, chosen.shape[1])
    with pytest.raises(ValueError, match="torch.long"):
        sequence_logprob(tiny_gpt(), chosen.float(), P)


def test_the_reference_must_be_a_copy():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="separate copy"):
        DPOTask(model, prompt_len=P, reference=model)
