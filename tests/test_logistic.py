import pytest
import torch
import torch.nn.functional as F

from fmbook.metrics import accuracy
from fmbook.models.logistic import LogisticRegression

pytestmark = pytest.mark.usefixtures("one_thread")


def linear_data(n=60, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    return X, (X @ torch.randn(d, k, generator=g)).argmax(-1)


def test_logistic_regression_reaches_the_optimum_of_its_objective():
    X, y = linear_data()
    model = LogisticRegression(3, l2=0.1, max_iter=300).fit(X, y)
    W, b = model.weight.clone().requires_grad_(), model.bias.clone().requires_grad_()
    loss = F.cross_entropy(X @ W + b, y) + 0.05 * W.pow(2).sum()
    loss.backward()
    assert W.grad.abs().max() < 1e-4 and b.grad.abs().max() < 1e-4  # a stationary point
    assert (model.predict(X) == y).float().mean() > 0.9
    torch.testing.assert_close(model.predict_proba(X).sum(-1), torch.ones(60))
    sparse = LogisticRegression(3, l2=0.1, max_iter=300).fit(X.to_sparse(), y)
    torch.testing.assert_close(sparse.weight, model.weight, atol=1e-3, rtol=1e-3)
    assert model.accuracy(X, y) == accuracy(model.predict(X), y)


def test_standardize_fits_the_standardised_features():
    X, y = linear_data(seed=1)
    X = 10 * X + 3  # a scale the standardisation removes
    model = LogisticRegression(3, l2=0.1, standardize=True).fit(X, y)
    torch.testing.assert_close(model.mean, X.mean(0))
    torch.testing.assert_close(model.std, X.std(0))
    plain = LogisticRegression(3, l2=0.1).fit((X - X.mean(0)) / X.std(0), y)
    torch.testing.assert_close(model.weight, plain.weight, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.logits(X), plain.logits((X - X.mean(0)) / X.std(0)))


def test_lbfgs_options_reach_the_optimizer():
    X, y = linear_data()
    short = LogisticRegression(3, l2=0.1, max_iter=2, history_size=1).fit(X, y)
    long = LogisticRegression(3, l2=0.1, max_iter=300).fit(X, y)
    assert short.loss(X, y) > long.loss(X, y)
    with pytest.raises(TypeError):
        LogisticRegression(3, not_an_lbfgs_option=1).fit(X, y)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: LogisticRegression(1), "n_classes must be"),
        (lambda: LogisticRegression(2, l2=-1.0), "l2 must be"),
        (lambda: LogisticRegression(2, max_iter=0), "max_iter must be"),
        (lambda: LogisticRegression(2).fit(torch.randn(3, 2), torch.tensor([0, 1])), "y must be"),
        (lambda: LogisticRegression(2).fit(torch.randn(2, 2), torch.tensor([0, 2])), "class ids"),
        (
            lambda: LogisticRegression(2).fit(torch.zeros(2, 2).long(), torch.tensor([0, 1])),
            "X must",
        ),
        (lambda: LogisticRegression(2).fit(torch.zeros(0, 2), torch.zeros(0).long()), "at least 1"),
        (
            lambda: LogisticRegression(2, standardize=True).fit(
                torch.eye(2).to_sparse(), torch.tensor([0, 1])
            ),
            "dense with standardize",
        ),
        (lambda: LogisticRegression(2).predict(torch.randn(1, 2)), "not fitted"),
        (
            lambda: (
                LogisticRegression(2)
                .fit(torch.randn(2, 2), torch.tensor([0, 1]))
                .predict(torch.randn(1, 3))
            ),
            r"X must be an \(N, 2\)",
        ),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
