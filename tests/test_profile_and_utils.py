import pytest
import torch

import fmbook
import fmbook.book
from fmbook import profile
from fmbook.book import show_source, source
from fmbook.tasks import warmup_cosine


def test_profile_default_is_full(monkeypatch):
    monkeypatch.delenv("FMBOOK_PROFILE", raising=False)
    assert profile.name() == "full"


@pytest.mark.parametrize("value", ["smoke", "full", " SMOKE "])
def test_profile_reads_env(monkeypatch, value):
    monkeypatch.setenv("FMBOOK_PROFILE", value)
    assert profile.name() == value.strip().lower()


def test_profile_rejects_unknown_value(monkeypatch):
    monkeypatch.setenv("FMBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="FMBOOK_PROFILE='fast'.*smoke"):
        profile.name()


def test_budget_picks_active_profile(monkeypatch):
    monkeypatch.setenv("FMBOOK_PROFILE", "smoke")
    b = profile.budget(smoke={"steps": 10}, full={"steps": 5000})
    assert b.steps == 10 and b.profile == "smoke" and b["steps"] == 10
    monkeypatch.setenv("FMBOOK_PROFILE", "full")
    assert profile.budget(smoke={"steps": 10}, full={"steps": 5000}).steps == 5000


def test_budget_requires_same_keys():
    with pytest.raises(ValueError, match="only in full: \\['lr'\\]"):
        profile.budget(smoke={"steps": 1}, full={"steps": 2, "lr": 0.1})


def test_budget_unknown_key_names_known_keys():
    b = profile.budget(smoke={"steps": 1}, full={"steps": 2})
    with pytest.raises(AttributeError, match="no entry 'stpes'.*steps"):
        b.stpes  # noqa: B018


def test_seed_everything_is_reproducible():
    fmbook.seed_everything(7)
    a = torch.randn(3)
    fmbook.seed_everything(7)
    assert torch.equal(a, torch.randn(3))
    with pytest.raises(ValueError, match="seed"):
        fmbook.seed_everything(-1)


def test_show_source_displays_real_code():
    md = show_source(warmup_cosine)
    assert md.data.startswith("```python\n# fmbook.tasks.schedules.warmup_cosine")
    assert "def warmup_cosine(" in md.data and md.data.rstrip().endswith("```")
    assert source(warmup_cosine) in md.data
    with pytest.raises(ValueError, match="cannot show the source"):
        source(42)


def test_warmup_cosine_shape():
    kw = dict(warmup_steps=10, max_steps=110, min_ratio=0.1)
    assert warmup_cosine(0, **kw) == pytest.approx(0.1)
    assert warmup_cosine(9, **kw) == pytest.approx(1.0)
    assert warmup_cosine(60, **kw) == pytest.approx(0.55)  # half-way down the cosine
    assert warmup_cosine(110, **kw) == pytest.approx(0.1)
    assert warmup_cosine(500, **kw) == pytest.approx(0.1)
    values = [warmup_cosine(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(0, warmup_steps=20, max_steps=10)


def test_environment_report_names_profile(monkeypatch):
    monkeypatch.setenv("FMBOOK_PROFILE", "smoke")
    fmbook.setup(3, quiet=True)
    env = fmbook.book.environment()
    assert env["profile"] == "smoke" and env["fmbook"] == fmbook.__version__
    assert env["device"].startswith(("cpu", "cuda"))
