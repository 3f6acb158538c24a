import pytest
import torch

from fmbook.models import GPT, GPTConfig
from fmbook.models.bert import BERT, BERTConfig
from fmbook.probes import (
    fit_linear_probe,
    mean_pool,
    module_output,
    pooled_features,
    probe_objective,
    select_probe,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(n=60, c=5, k=3, spread=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(k, c, generator=g)
    y = torch.arange(n) % k
    return centres[y] + spread * torch.randn(n, c, generator=g), y


def test_mean_pool_averages_only_kept_positions():
    h = torch.arange(12.0).view(1, 4, 3)
    keep = torch.tensor([[True, True, False, False]])
    torch.testing.assert_close(mean_pool(h, keep), h[0, :2].mean(0, keepdim=True))
    assert torch.equal(mean_pool(h, torch.zeros(1, 4, dtype=torch.bool)), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="keep must be a bool tensor"):
        mean_pool(h, keep.long())


def test_bert_features_ignore_padding():
    torch.manual_seed(0)
    bert = BERT(BERTConfig(vocab_size=10, max_len=8, n_layer=1, n_head=2, d_model=8, n_segments=0))
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0]])
    bert.train()
    torch.testing.assert_close(pooled_features(bert, short), pooled_features(bert, padded))
    assert bert.training  # restored after the call


def test_module_output_captures_gpt_final_states():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=10, max_len=8, n_layer=1, n_head=2, d_model=8))
    encode = module_output(gpt, gpt.ln_f)
    ids = torch.randint(1, 10, (2, 6))
    states = encode(ids)
    assert states.shape == (2, 6, 8)
    torch.testing.assert_close(gpt.lm_head(states), gpt(ids)[0])
    feats = pooled_features(encode, ids, batch_size=1)
    torch.testing.assert_close(feats, states.mean(1).detach())
    with pytest.raises(ValueError, match="submodule"):
        module_output(gpt, torch.nn.Linear(2, 2))


def test_probe_separates_blobs_and_is_optimal():
    x, y = blobs()
    probe = fit_linear_probe(x, y, l2=1e-2)
    assert probe.accuracy(x, y) == 1.0
    xt, yt = blobs(seed=0, n=30)
    assert probe.accuracy(xt, yt) == 1.0
    # at the optimum of the convex objective the gradient vanishes
    w = probe.weight.clone().requires_grad_(True)
    b = probe.bias.clone().requires_grad_(True)
    moved = type(probe)(probe.mean, probe.std, w, b, probe.l2)
    probe_objective(moved, x, y).backward()
    assert w.grad.abs().max() < 1e-4 and b.grad.abs().max() < 1e-4


def test_stronger_penalty_gives_smaller_weights_and_select_picks_best():
    x, y = blobs(spread=3.0, seed=1)
    weak, strong = (fit_linear_probe(x, y, l2=l2) for l2 in (1e-3, 1.0))
    assert strong.weight.norm() < weak.weight.norm()
    best, scores = select_probe((x, y), blobs(spread=3.0, seed=2), l2s=(1e-3, 1.0))
    assert set(scores) == {1e-3, 1.0} and best.l2 in scores
    assert scores[best.l2] == max(scores.values())


def test_bad_input_is_refused():
    x, y = blobs()
    with pytest.raises(ValueError, match="labels must lie"):
        fit_linear_probe(x, y, n_classes=2)
    with pytest.raises(ValueError, match="labels must be a long tensor"):
        fit_linear_probe(x, y[:-1])
    with pytest.raises(ValueError, match="l2 must be"):
        fit_linear_probe(x, y, l2=-1.0)
    with pytest.raises(ValueError, match="x must be an"):
        fit_linear_probe(x[:, 0], y)
    probe = fit_linear_probe(x, y)
    with pytest.raises(ValueError, match=r"x must be an \(N, 5\)"):
        probe.predict(x[:, :3])
    with pytest.raises(ValueError, match="ids must be"):
        pooled_features(lambda ids: ids, torch.zeros(3, 4))
