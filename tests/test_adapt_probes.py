import pytest
import torch

from fmbook.adapt import fit_linear_probe, module_output, pooled_features, select_probe
from fmbook.models import GPT, GPTConfig
from fmbook.models.bert import BERT, BERTConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(n=60, c=5, k=3, spread=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(k, c, generator=g)
    y = torch.arange(n) % k
    return centres[y] + spread * torch.randn(n, c, generator=g), y


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
    probe.weight.requires_grad_(True)
    probe.bias.requires_grad_(True)
    probe.loss(x, y).backward()
    assert probe.weight.grad.abs().max() < 1e-4 and probe.bias.grad.abs().max() < 1e-4


def test_stronger_penalty_gives_smaller_weights_and_select_picks_best():
    x, y = blobs(spread=3.0, seed=1)
    weak, strong = (fit_linear_probe(x, y, l2=l2) for l2 in (1e-3, 1.0))
    assert strong.weight.norm() < weak.weight.norm()
    best, scores = select_probe((x, y), blobs(spread=3.0, seed=2), l2s=(1e-3, 1.0))
    assert set(scores) == {1e-3, 1.0} and best.l2 in scores
    assert scores[best.l2] == max(scores.values())


def test_module_output_refuses_a_module_run_twice():
    twice = torch.nn.Linear(3, 3)
    model = torch.nn.Sequential(twice, twice)
    with pytest.raises(ValueError, match="ran 2 times"):
        module_output(model, twice)(torch.ones(1, 3))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, y: fit_linear_probe(x, y, n_classes=2), "y must hold class ids"),
        (lambda x, y: fit_linear_probe(x, y[:-1]), "y must be a long tensor"),
        (lambda x, y: fit_linear_probe(x, y, l2=-1.0), "l2 must be"),
        (lambda x, y: fit_linear_probe(x[:, 0], y), "X must be an"),
        (lambda x, y: fit_linear_probe(x[:1], y[:1] * 0 + 1), "at least 2 examples"),
        (lambda x, y: fit_linear_probe(x, y * 0), "n_classes must be"),
        (lambda x, y: fit_linear_probe(x, y).predict(x[:, :3]), r"X must be an \(N, 5\)"),
        (lambda x, y: pooled_features(lambda ids: ids, torch.zeros(3, 4)), "ids must be"),
        (lambda x, y: pooled_features(lambda ids: ids, y[None], batch_size=0), "batch_size"),
        (lambda x, y: select_probe((x, y), (x, y), l2s=()), "l2s must name"),
    ],
)
def test_bad_input_is_refused(call, message):
    x, y = blobs()
    with pytest.raises(ValueError, match=message):
        call(x, y)


def test_control_labels_are_a_function_of_the_type_and_keep_the_distribution():
    from fmbook.adapt import control_labels

    g = torch.Generator().manual_seed(0)
    types = torch.randint(0, 3000, (20_000,), generator=g)
    labels = torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), 20_000, True, generator=g)
    control = control_labels(types, labels, seed=1)
    assert control.shape == labels.shape and control.dtype == torch.long
    for t in types[:50].tolist():  # one label per type
        assert control[types == t].unique().numel() == 1
    freq = torch.bincount(control, minlength=3).float() / len(control)
    target = torch.bincount(labels, minlength=3).float() / len(labels)
    assert (freq - target).abs().max() < 0.03
    assert not torch.equal(control, labels)
    assert torch.equal(control, control_labels(types, labels, seed=1))  # seeded
    assert not torch.equal(control, control_labels(types, labels, seed=2))


def test_control_labels_refuse_bad_input():
    from fmbook.adapt import control_labels

    with pytest.raises(ValueError, match="same length"):
        control_labels(torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be a non-empty"):
        control_labels(torch.zeros(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(ValueError, match=">= 0"):
        control_labels(torch.zeros(2, dtype=torch.long), torch.tensor([0, -1]))
