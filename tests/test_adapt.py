import pytest
import torch
import torch.nn.functional as F

from fmbook.adapt import FeatureBank, fit_linear_probe, mean_pooled_features, select_probe
from fmbook.data.plays import Passage, encode_passages, encoder_tokenizer
from fmbook.models.bert import BERTConfig, BERTForSequenceClassification

pytestmark = pytest.mark.usefixtures("one_thread")

TOKENIZER = encoder_tokenizer("abcdefgh \n")


def tiny_classifier(seed=0):
    torch.manual_seed(seed)
    cfg = BERTConfig(
        vocab_size=TOKENIZER.vocab_size, max_len=16, n_layer=2, n_head=2, d_model=16, n_segments=0
    )
    return BERTForSequenceClassification(cfg, 3, pooling="mean")


def passages(n=12):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        length = int(torch.randint(3, 15, (1,), generator=g))
        chars = torch.randint(0, 8, (length,), generator=g)
        out.append(Passage("".join("abcdefgh"[c] for c in chars), f"P{i % 3}", f"S{i % 2}", i))
    return out


def test_features_are_the_mean_pooling_of_the_classifier():
    model = tiny_classifier().train()
    ids = encode_passages(passages(), TOKENIZER, 16, cls=False)
    feats = mean_pooled_features(model, ids, batch_size=5)  # batches cut to their longest row
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        mask = ids != 0
        reference = model.pool(model.bert(ids, mask), mask)
    torch.testing.assert_close(feats, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mean_pooled_features(model.bert, ids, batch_size=1), feats)


def test_bad_ids_are_refused():
    model = tiny_classifier()
    with pytest.raises(ValueError, match="ids must be"):
        mean_pooled_features(model, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="padding only"):
        mean_pooled_features(model, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_size"):
        mean_pooled_features(model, torch.ones(2, 3, dtype=torch.long), batch_size=0)


def test_probe_is_the_regularised_optimum_and_separates_separable_data():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    labels = torch.arange(3).repeat(40)
    features = centres[labels] + 0.3 * torch.randn(len(labels), 4, generator=g)
    probe = fit_linear_probe(features, labels, l2=0.1)
    assert probe.weight.shape == (3, 4) and probe.accuracy(features, labels) == 1.0
    # the gradient of the objective vanishes at the fitted weights
    w = probe.weight.double().requires_grad_()
    b = probe.bias.double().requires_grad_()
    z = ((features - probe.mean) / probe.std).double()
    loss = F.cross_entropy(z @ w.T + b, labels) + 0.05 * w.square().sum()
    loss.backward()
    assert w.grad.abs().max() < 1e-3 and b.grad.abs().max() < 1e-3
    # more regularisation, smaller weights
    assert fit_linear_probe(features, labels, l2=10.0).weight.norm() < probe.weight.norm()


def test_probe_arguments_are_checked():
    x, y = torch.randn(6, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="labels must be a long"):
        fit_linear_probe(x, y.float())
    with pytest.raises(ValueError, match="n_classes"):
        fit_linear_probe(x, y, n_classes=1)
    with pytest.raises(ValueError, match="l2 must be"):
        fit_linear_probe(x, y, l2=-1.0)
    with pytest.raises(ValueError, match="features must have 2 columns"):
        fit_linear_probe(x, y).predict(torch.randn(3, 5))


def test_select_probe_keeps_the_best_validation_accuracy():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(2).repeat(30)
    features = labels[:, None].float() + torch.randn(60, 3, generator=g)
    probe, scores = select_probe((features[:40], labels[:40]), (features[40:], labels[40:]))
    assert set(scores) == {1e-3, 1e-2, 1e-1, 1.0}
    assert scores[probe.l2] == max(scores.values())


class FakeDataModule:
    def __init__(self, ps):
        self.passages = {"train": [(p, int(p.play[1])) for p in ps]}


def test_bank_computes_once_and_serves_rows_of_one_tensor():
    ps = passages()
    model = tiny_classifier()
    bank = FeatureBank(model, ps, TOKENIZER, max_len=16)
    dm = FakeDataModule(ps[3:9][::-1])
    x, y = bank.split(dm, "train")
    assert torch.equal(x, bank.features[bank.rows(ps[3:9][::-1])])
    assert torch.equal(x[-1], bank.features[3]) and y.tolist() == [
        int(p.play[1]) for p in ps[8:2:-1]
    ]
    with pytest.raises(ValueError, match="split must be"):
        bank.split(dm, "test")
    with pytest.raises(ValueError, match="not in the bank"):
        FeatureBank(model, ps[:2], TOKENIZER, max_len=16).split(dm, "train")
    with pytest.raises(ValueError, match="must not repeat"):
        FeatureBank(model, ps[:2] * 2, TOKENIZER, max_len=16)
