import pytest
import torch

from fmbook import pretrained
from fmbook.data import load_shakespeare
from fmbook.metrics import accuracy
from fmbook.tasks import predict

pytestmark = pytest.mark.usefixtures("one_thread")


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
