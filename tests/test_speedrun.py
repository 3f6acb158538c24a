"""fmbook.speedrun: recipes, schedules, optimisers, the step budget and a tiny run."""

import json

import pytest
import torch

from fmbook import speedrun
from fmbook.models import GPT
from fmbook.speedrun import BASELINE, RECIPE, VARIANTS, Recipe

TINY = Recipe(n_layer=1, n_head=2, d_model=16, block_size=16, batch_sizes=(4,))


def test_recipes_and_hash():
    assert BASELINE == Recipe() and VARIANTS["baseline"] == BASELINE
    assert VARIANTS["recipe"] == RECIPE
    assert BASELINE.hash() == Recipe().hash() != RECIPE.hash()
    assert len({r.hash() for r in VARIANTS.values()}) == len(VARIANTS)
    cfg = RECIPE.config(65)
    assert cfg.max_len == RECIPE.block_size and cfg.positions == RECIPE.positions


@pytest.mark.parametrize(
    "kw",
    [
        {"optimizer": "sgd"},
        {"schedule": "step"},
        {"batch_sizes": ()},
        {"warmup": 1.5},
        {"lr": 0.0},
        {"norm": "batch"},
    ],
)
def test_recipe_errors(kw):
    with pytest.raises(ValueError):
        Recipe(**kw)


def test_lr_schedules():
    cos = [speedrun.lr_multiplier(s, 100, BASELINE) for s in range(100)]
    assert cos[0] == pytest.approx(1 / 5) and cos[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(cos[5:], cos[6:], strict=False))
    assert cos[-1] == pytest.approx(0.1, abs=1e-3)
    wsd = Recipe(schedule="wsd", warmup=0.1, decay=0.3, min_lr_ratio=0.0)
    m = [speedrun.lr_multiplier(s, 100, wsd) for s in range(100)]
    assert m[9] == 1.0 and m[10:70] == [1.0] * 60  # stable
    assert m[70] < 1.0 and m[-1] == pytest.approx(0.0)  # linear decay to 0
    assert m[85] == pytest.approx(1 - 16 / 30)


def test_muon_takes_block_matrices_only():
    model = GPT(TINY.replace(optimizer="muon").config(11))
    muon, adamw = speedrun.make_optimizers(model, TINY.replace(optimizer="muon"))
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in in_muon) == (name.startswith("blocks.") and p.dim() == 2), name
    (only,) = speedrun.make_optimizers(model, TINY)
    assert isinstance(only, torch.optim.AdamW)


def test_step_budget():
    timing = {"step_seconds": {8: 0.1, 32: 0.4}, "compile_seconds": 2.0}
    ramp = TINY.replace(batch_sizes=(8, 32))
    assert speedrun.step_budget(ramp, 10.0, timing) == [40, 10]  # 4 s each after compiling
    assert speedrun.step_budget(TINY.replace(batch_sizes=(32,)), 1.0, timing) == [0]
    with pytest.raises(ValueError):
        speedrun.step_budget(TINY, 0, timing)


def test_evaluate_uniform_model():
    class Uniform(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(*x.shape, 7), None

    ids = torch.randint(0, 7, (100,))
    assert speedrun.evaluate(Uniform(), ids, 16) == pytest.approx(torch.log(torch.tensor(7.0)))


def test_calibrate_and_run_tiny():
    timing = speedrun.calibrate(TINY, repeats=2, steps=1)
    assert timing["step_seconds"][4] > 0 and timing["compile_seconds"] == 0.0
    timing = {"step_seconds": {4: 0.01}, "compile_seconds": 0.0}  # fixed: a known budget
    a = speedrun.run(TINY, 0.2, 0, timing=timing, val_tokens=500, log_every=5)
    assert a["steps"] == 20 and a["tokens"] == 20 * 4 * 16
    assert a["curve"][-1][1] == 20 and a["curve"][-1][0] == pytest.approx(0.2)
    assert a["val_loss"] < torch.log(torch.tensor(65.0)).item()  # it learned something
    b = speedrun.run(TINY, 0.2, 0, timing=timing, val_tokens=500)
    assert b["val_loss"] == pytest.approx(a["val_loss"])  # same seed, same result


@pytest.mark.slow
def test_main_writes_record(tmp_path, monkeypatch):
    monkeypatch.setitem(speedrun.VARIANTS, "tiny", TINY)
    out = tmp_path / "r.json"
    speedrun.main(
        [
            "--seconds",
            "0.5",
            "--seeds",
            "0",
            "1",
            "--variants",
            "tiny",
            "--val-tokens",
            "300",
            "--repeats",
            "1",
            "--out",
            str(out),
        ]
    )
    rec = json.loads(out.read_text())
    v = rec["variants"]["tiny"]
    assert v["hash"] == TINY.hash() and len(v["val_loss"]) == 2 and v["steps"] >= 1
    assert {"torch", "cpu", "threads", "date", "fmbook_commit"} <= set(rec["provenance"])


def test_cpu_seconds_counts_this_process_and_finished_children():
    import subprocess
    import sys

    before = speedrun.cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    assert speedrun.cpu_seconds() - before > 0.01  # the child's work is counted
