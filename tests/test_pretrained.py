import hashlib

import pytest
import torch
from local_server import LocalServer

from fmbook import pretrained
from fmbook.data import ChecksumError, load_shakespeare
from fmbook.data import registry as reg
from fmbook.metrics import accuracy
from fmbook.tasks import predict

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """The release URL points at a closed local port, and no environment choice leaks in."""
    monkeypatch.setenv(reg.RELEASE_URL_ENV, "http://127.0.0.1:9/releases")
    monkeypatch.delenv(pretrained.TRAIN_ENV, raising=False)
    monkeypatch.setattr(reg, "BACKOFF_SECONDS", 0.01)


@pytest.mark.slow
def test_smoke_model_trains_caches_and_reloads(tmp_path, data_mirror, monkeypatch):
    monkeypatch.setenv("FMBOOK_DATA_MIRROR", str(data_mirror))
    text = load_shakespeare(mirror=data_mirror)
    first = pretrained.load_pretrained_bert("smoke", cache=tmp_path, text=text)
    assert first.path.exists() and first.path.parent == tmp_path / "models"
    assert not list(tmp_path.glob("models/*.part"))
    val = first.history.query("split == 'val'").loss
    assert len(val) == 1 and val.iloc[0] < 0.9 * torch.log(torch.tensor(68.0)).item()
    again = pretrained.load_pretrained_bert("smoke", cache=tmp_path, text=text)
    for (k, a), b in zip(
        first.model.state_dict().items(), again.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    assert first.special_ids == {"pad": 0, "mask": 1, "cls": 2}
    assert again.history.equals(first.history)
    clf = again.classifier(4)
    scratch = again.classifier(4, pretrained=False)
    ref = again.model.bert.tok_emb.weight
    assert torch.equal(clf.bert.tok_emb.weight, ref) and not torch.equal(
        scratch.bert.tok_emb.weight, ref
    )
    torch.testing.assert_close(clf.classifier.weight, scratch.classifier.weight)  # same seed
    loader = [(torch.randint(3, 68, (5, 12)), torch.tensor([0, 1, 2, 3, 0]))] * 2
    preds, labels = predict(clf, loader)
    assert preds.shape == labels.shape == (10,) and clf.training
    assert accuracy(preds, labels) == pytest.approx((preds == labels).float().mean().item())


def test_recipes_have_distinct_cache_names():
    paths = {pretrained.cache_path(r, cache="/c") for r in pretrained.RECIPES.values()}
    assert len(paths) == len(pretrained.RECIPES)
    with pytest.raises(ValueError, match="profile must be"):
        pretrained.recipe_for("medium")


def test_registered_weights_match_the_recipes():
    """A recipe change gives a new file name, which the registry must follow (new asset)."""
    for name, record in pretrained.WEIGHTS.items():
        file = pretrained.file_name(pretrained.RECIPES[name])
        assert record.path == f"models/{file}"
        assert record.asset == f"{pretrained.WEIGHTS_TAG}/{file}"
        assert record.size > 0 and record.sha256 != "0" * 64


def test_full_profile_without_any_source_says_how_to_get_it(tmp_path, data_mirror):
    text = load_shakespeare(mirror=data_mirror)
    with pytest.raises(pretrained.PretrainedWeightsError) as info:
        pretrained.load_pretrained_bert("full", cache=tmp_path, text=text, retries=0)
    message = str(info.value)
    assert "train=True" in message and pretrained.TRAIN_ENV in message
    assert "http://127.0.0.1:9/releases/weights-v1/shakespeare-bert-" in message
    assert str(pretrained.cache_path(pretrained.RECIPES["full"], cache=tmp_path)) in message
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing trained or left
    assert pretrained._may_train(None, "smoke") and not pretrained._may_train(None, "full")


@pytest.mark.slow
def test_smoke_build_is_deterministic_and_served_like_data(tmp_path, data_mirror):
    """`make weights-release` in the smoke profile gives the registered bytes (the release
    build was made on another day, in another process: the build is deterministic); the file
    is then fetched from an HTTP mirror (checked against its record), and wrong bytes are an
    error, not a reason to train."""
    text = load_shakespeare(mirror=data_mirror)
    threads = torch.get_num_threads()
    a = pretrained.build_weights("smoke", tmp_path / "a" / "weights-v1", text=text)
    assert torch.get_num_threads() == threads  # the build restores the settings
    assert not torch.are_deterministic_algorithms_enabled()
    digest = hashlib.sha256(a.read_bytes()).hexdigest()
    assert digest == pretrained.WEIGHTS["smoke"].sha256, (
        f"this machine's smoke build has sha256 {digest}, not the registered one: the CPU "
        "rounds differently from the release build's, or the recipe changed without a new "
        "weights release (make weights-release)"
    )
    assert a.name == pretrained.file_name(pretrained.RECIPES["smoke"])
    with LocalServer(tmp_path / "a") as server:
        pre = pretrained.load_pretrained_bert(
            "smoke", cache=tmp_path / "cache", text=text, mirror=server.url, train=False
        )
        assert server.requests[-1] == f"/weights-v1/{a.name}"
        assert pre.path == tmp_path / "cache" / "models" / a.name
        assert pre.path.read_bytes() == a.read_bytes()
        assert pre.history.seconds.isna().all() and pre.train_seconds != pre.train_seconds
        server.faults[f"/weights-v1/{a.name}"] = "wrong"
        with pytest.raises(ChecksumError):
            pretrained.load_pretrained_bert(
                "smoke", cache=tmp_path / "other", text=text, mirror=server.url, retries=0
            )
    assert not (tmp_path / "other" / "models" / a.name).exists()
