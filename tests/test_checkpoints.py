"""Safe checkpoint loading (weights_only=True) and exact resumption of training."""

import copy

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from fmbook.checkpoints import CheckpointError, load_checkpoint, load_state, save_checkpoint
from fmbook.models import GPT, GPTConfig
from fmbook.models.bert import BERTConfig, BERTForMaskedLM, BERTForSequenceClassification
from fmbook.models.transformer import Seq2SeqConfig, Transformer
from fmbook.tasks import CausalLM, MaskedLM, Seq2Seq, SequenceClassification, make_trainer

MAX_STEPS = 10  # the full run; its schedule (warm-up, cosine) is set by the task's max_steps
BATCHES_PER_EPOCH = 4


pytestmark = pytest.mark.usefixtures("one_thread")


def make_data() -> DataLoader:
    """32 random sequences in a fixed order: 4 batches of 8 per epoch."""
    ids = torch.randint(0, 11, (32, 9), generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(ids[:, :-1], ids[:, 1:]), batch_size=8, shuffle=False)


def make_task() -> CausalLM:
    torch.manual_seed(1)
    return CausalLM(GPT(GPTConfig(11, 8, 1, 1, 8)), lr=1e-2, warmup_steps=2, max_steps=MAX_STEPS)


def fit(task, max_steps, *, callbacks=(), ckpt_path=None) -> L.Trainer:
    trainer = make_trainer(
        max_steps=max_steps,
        val_every=100,
        limit_val_batches=0,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        callbacks=callbacks,
    )
    trainer.fit(task, make_data(), ckpt_path=ckpt_path, weights_only=True)
    return trainer


def every(k, folder) -> ModelCheckpoint:
    return ModelCheckpoint(dirpath=folder, save_last=True, every_n_train_steps=k, save_top_k=-1)


class RecordResume(L.Callback):
    """What the Trainer holds when training (re)starts, before any new step."""

    def on_train_start(self, trainer, pl_module):
        self.global_step = trainer.global_step
        self.optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.scheduler = trainer.lr_scheduler_configs[0].scheduler.state_dict()


@pytest.fixture(scope="module")
def reference() -> CausalLM:
    """The uninterrupted run."""
    task = make_task()
    assert fit(task, MAX_STEPS).global_step == MAX_STEPS
    return task


# --- saving and loading ------------------------------------------------------------------


def test_lightning_checkpoint_of_causal_lm_loads_with_weights_only(tmp_path):
    task = make_task()
    fit(task, 3, callbacks=[every(1, tmp_path)])
    # plain torch.load with weights_only=True: nothing but tensors and plain containers
    raw = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    hparams = raw["hyper_parameters"]
    assert raw["global_step"] == 3 and hparams["config"]["vocab_size"] == 11
    assert hparams["model_class"] == "fmbook.models.gpt.GPT"
    assert hparams["config_class"] == "fmbook.models.gpt.GPTConfig"
    assert any("ModelCheckpoint" in key for key in raw["callbacks"])
    # fmbook allow-lists no extra type (torch registers its own internal ones)
    assert all(g.__module__.startswith("torch") for g in torch.serialization.get_safe_globals())
    loaded = load_checkpoint(tmp_path / "last.ckpt", CausalLM)
    assert isinstance(loaded, CausalLM) and loaded.hparams == task.hparams
    idx = torch.randint(0, 11, (2, 8))
    task.eval(), loaded.eval()
    assert torch.equal(loaded(idx)[0], task(idx)[0])
    assert load_state(tmp_path / "last.ckpt")["optimizer_states"][0]["state"]


def test_save_checkpoint_through_trainer_and_module(tmp_path):
    task = make_task()
    trainer = fit(task, 2)
    for source, name in ((trainer, "a/trainer.ckpt"), (task, "b/module.ckpt")):
        path = save_checkpoint(source, tmp_path / name)  # creates the parent folder
        state = load_state(path)
        assert state["global_step"] == 2 and "optimizer_states" in state  # attached: full
        assert torch.equal(state["state_dict"]["model.tok_emb.weight"], task.model.tok_emb.weight)


def test_save_checkpoint_of_untrained_module_keeps_weights_and_hparams(tmp_path):
    task = make_task()
    path = save_checkpoint(task, tmp_path / "fresh.ckpt")
    assert "optimizer_states" not in load_state(path)
    for loaded in (
        load_checkpoint(path, CausalLM),
        load_checkpoint(path, CausalLM, model=GPT(GPTConfig(11, 8, 1, 1, 8))),
        # Lightning's own loader, given a model (the saved model keys are recomputed)
        CausalLM.load_from_checkpoint(
            path, map_location="cpu", weights_only=True, model=GPT(GPTConfig(11, 8, 1, 1, 8))
        ),
    ):
        assert loaded.hparams == task.hparams
        for a, b in zip(loaded.parameters(), task.parameters(), strict=True):
            assert torch.equal(a, b)
    plain = save_checkpoint(torch.nn.Linear(2, 3), tmp_path / "linear.pt")
    assert load_state(plain)["state_dict"]["weight"].shape == (3, 2)


RAN = []


def _side_effect(message):
    RAN.append(message)
    return message


class Payload:
    """An object whose unpickling calls a function: what a malicious file would do."""

    def __reduce__(self):
        return (_side_effect, ("code ran while loading",))


def test_checkpoint_with_pickled_objects_is_refused_without_running_them(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": Payload()}, path)
    assert RAN == []
    for load in (load_state, lambda p: load_checkpoint(p, CausalLM)):
        with pytest.raises(CheckpointError, match=r"refusing to load .*evil\.ckpt") as info:
            load(path)
        assert "weights_only=True" in str(info.value) and "_side_effect" in str(info.value)
    assert RAN == []  # the payload never ran
    torch.save({"note": _side_effect}, tmp_path / "function.ckpt")  # a function is refused too
    with pytest.raises(CheckpointError, match="weights_only"):
        load_state(tmp_path / "function.ckpt")


def test_bad_files_and_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file at .*missing.ckpt"):
        load_state(tmp_path / "missing.ckpt")
    (tmp_path / "text.ckpt").write_text("hello world")
    with pytest.raises(CheckpointError, match="text.ckpt is not a readable torch checkpoint"):
        load_state(tmp_path / "text.ckpt")
    torch.save([1, 2], tmp_path / "list.ckpt")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_state(tmp_path / "list.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "weights.ckpt")
    with pytest.raises(CheckpointError, match=r"lacks \['hyper_parameters'\]"):
        load_checkpoint(tmp_path / "weights.ckpt", CausalLM)
    with pytest.raises(ValueError, match="task_class must be a LightningModule"):
        load_checkpoint(tmp_path / "weights.ckpt", torch.nn.Linear)
    with pytest.raises(ValueError, match="trainer_or_module must be"):
        save_checkpoint({"not": "a module"}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="no model attached"):
        save_checkpoint(L.Trainer(logger=False), tmp_path / "x.ckpt")


@pytest.mark.parametrize(
    "make",
    [
        lambda: MaskedLM(BERTForMaskedLM(BERTConfig(11, 8, 1, 1, 8)), mask_id=1, vocab_size=11),
        lambda: Seq2Seq(Transformer(Seq2SeqConfig(11, 12, 8, 1, 1, 1, 8)), pad_id=0, lr=1e-2),
    ],
)
def test_every_task_is_rebuilt_from_its_checkpoint(make, tmp_path):
    torch.manual_seed(0)
    task = make()
    path = save_checkpoint(task, tmp_path / "task.ckpt")
    loaded = load_checkpoint(path, type(task))
    assert type(loaded.model) is type(task.model) and loaded.hparams == task.hparams
    assert loaded.model.config == task.model.config
    for a, b in zip(loaded.state_dict().values(), task.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_load_checkpoint_rebuilds_only_fmbook_models_from_their_config(tmp_path):
    torch.manual_seed(0)
    model = BERTForSequenceClassification(BERTConfig(vocab_size=11, max_len=8, d_model=8), 3)
    task = SequenceClassification(model, lr=1e-2)
    path = save_checkpoint(task, tmp_path / "clf.ckpt")
    with pytest.raises(CheckpointError, match="cannot rebuild .*BERTForSequenceClassification"):
        load_checkpoint(path, SequenceClassification)  # its constructor needs n_classes
    fresh = BERTForSequenceClassification(BERTConfig(vocab_size=11, max_len=8, d_model=8), 3)
    loaded = load_checkpoint(path, SequenceClassification, model=fresh)
    assert loaded.hparams == task.hparams and loaded.model is fresh
    assert torch.equal(fresh.classifier.weight, model.classifier.weight)

    state = load_state(path)
    for key, value, message in (
        ("model_class", "subprocess.Popen", "not part of fmbook"),
        ("config_class", "os.system", "not part of fmbook"),
        ("model_class", "fmbook.models.gpt.NoSuchModel", "not found"),
        ("model_class", "fmbook.models.gpt.GPTConfig", "is not a module"),
        ("config", None, "does not record a model class and config"),
    ):
        bad = {**state, "hyper_parameters": {**state["hyper_parameters"], key: value}}
        torch.save(bad, tmp_path / "bad.ckpt")
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / "bad.ckpt", SequenceClassification)


# --- resuming ----------------------------------------------------------------------------


def test_resume_at_epoch_end_reproduces_the_uninterrupted_run(tmp_path, reference):
    """Checkpoint every 4 steps (one epoch), stop after 6, resume from step 4 to 10."""
    first = fit(make_task(), 6, callbacks=[every(BATCHES_PER_EPOCH, tmp_path)])
    assert first.global_step == 6
    last = tmp_path / "last.ckpt"
    assert load_state(last)["global_step"] == 4  # the last save before the "crash"
    resume = RecordResume()
    task = make_task()  # fresh weights: everything must come from the checkpoint
    trainer = fit(
        task, MAX_STEPS, callbacks=[resume, every(BATCHES_PER_EPOCH, tmp_path)], ckpt_path=last
    )
    assert resume.global_step == 4 and trainer.global_step == MAX_STEPS
    # the data order is fixed and the checkpoint falls on an epoch boundary: bit-identical
    for a, b in zip(task.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_mid_epoch_restores_steps_optimizer_and_scheduler(tmp_path):
    """Checkpoint every 3 steps, stop after 7, resume from step 6 (mid-epoch) to 10.

    The weights are not compared with the uninterrupted run: a plain DataLoader is not
    resumable, so Lightning (with a warning) starts the interrupted epoch's batches
    again from the first one, and the resumed run sees a different batch sequence. What
    must be exact is the state restored from the file, checked here.
    """
    fit(make_task(), 7, callbacks=[every(3, tmp_path)])
    saved = load_state(tmp_path / "last.ckpt")
    assert saved["global_step"] == 6
    resume = RecordResume()
    trainer = fit(
        make_task(),
        MAX_STEPS,
        callbacks=[resume, every(3, tmp_path)],
        ckpt_path=tmp_path / "last.ckpt",
    )
    assert resume.global_step == 6 and trainer.global_step == MAX_STEPS
    restored, stored = resume.optimizer["state"], saved["optimizer_states"][0]["state"]
    assert restored.keys() == stored.keys() and len(stored) > 0
    for index, moments in stored.items():
        assert set(moments) == {"step", "exp_avg", "exp_avg_sq"}
        for name, value in moments.items():
            assert torch.equal(restored[index][name], value), (index, name)
            if name == "step":
                assert value.item() == 6
    scheduler = saved["lr_schedulers"][0]
    assert resume.scheduler["last_epoch"] == scheduler["last_epoch"] == 6
    assert resume.scheduler["_last_lr"] == scheduler["_last_lr"]
