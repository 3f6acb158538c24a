import math

import pytest
import torch

from fmbook.data.datamodules import ConsecutiveWindows, RandomWindows, TinyShakespeareDataModule
from fmbook.models import GPT, GPTConfig
from fmbook.tasks import CausalLM, History, evaluate, make_trainer


def test_random_windows_shift_targets_by_one():
    ids = torch.arange(20)
    ds = RandomWindows(ids, 5)
    assert len(ds) == 15
    x, y = ds[3]
    assert x.tolist() == [3, 4, 5, 6, 7] and y.tolist() == [4, 5, 6, 7, 8]
    x, y = ds[len(ds) - 1]
    assert y[-1] == 19


def test_consecutive_windows_predict_every_token_once():
    ids = torch.arange(23)
    ds = ConsecutiveWindows(ids, 5)
    targets = torch.cat([ds[i][1] for i in range(len(ds))])
    assert len(ds) == 4 and targets.tolist() == list(range(1, 21))


def test_windows_reject_short_sequences():
    with pytest.raises(ValueError, match="more than block_size=8"):
        RandomWindows(torch.arange(8), 8)


@pytest.fixture(scope="module")
def datamodule(data_mirror):
    with pytest.MonkeyPatch.context() as mp:  # Trainer.fit calls prepare_data, which fetches
        mp.setenv("FMBOOK_DATA_MIRROR", str(data_mirror))
        dm = TinyShakespeareDataModule(block_size=32, batch_size=16)
        dm.setup()
        yield dm


def test_datamodule_split_and_vocab(datamodule):
    assert datamodule.tokenizer.vocab_size == 65
    n_train, n_val = len(datamodule.train_ids), len(datamodule.val_ids)
    assert n_train == int(0.9 * (n_train + n_val)) == 1_003_854
    x, y = next(iter(datamodule.train_dataloader()))
    assert x.shape == y.shape == (16, 32) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])


@pytest.mark.slow
def test_training_lowers_val_loss_and_history_matches_evaluate(datamodule):
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=65, max_len=32, n_layer=1, n_head=2, d_model=32)
    task = CausalLM(GPT(config), lr=1e-2, warmup_steps=5, max_steps=60)
    before = evaluate(task, datamodule)
    assert abs(before - math.log(65)) < 0.2
    history = History(every=10)
    make_trainer(max_steps=60, val_every=30, callbacks=[history]).fit(task, datamodule)
    val = history.val()
    assert val.step.tolist() == [30, 60]
    assert val.loss.iloc[-1] < before - 0.8
    assert evaluate(task, datamodule) == pytest.approx(val.loss.iloc[-1], abs=1e-5)
    train = history.frame().query("split == 'train'")
    assert len(train) >= 5 and (train.seconds.diff().dropna() >= 0).all()


def test_causal_lm_learning_rate_schedule(datamodule):
    task = CausalLM(GPT(GPTConfig(65, 8, 1, 1, 8)), lr=1e-3, warmup_steps=10, max_steps=100)
    optimizers = task.configure_optimizers()
    opt, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)  # warm-up starts at lr / 10
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert all(p.dim() >= 2 for p in opt.param_groups[0]["params"]) and decayed
    assert all(p.dim() < 2 for p in opt.param_groups[1]["params"])
    for _ in range(100):
        opt.step()
        scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)  # min_lr_ratio 0.1


def test_causal_lm_rejects_bad_lr():
    with pytest.raises(ValueError, match="lr must be > 0"):
        CausalLM(GPT(GPTConfig(65, 8, 1, 1, 8)), lr=0)


def test_causal_lm_takes_a_model_not_a_config():
    with pytest.raises(ValueError, match="model must be a torch.nn.Module, got GPTConfig"):
        CausalLM(GPTConfig(65, 8, 1, 1, 8))


def test_make_trainer_validates_arguments():
    with pytest.raises(ValueError, match="max_steps"):
        make_trainer(max_steps=0, val_every=1)
