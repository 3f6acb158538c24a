import pytest
import torch

from fmbook.models.bert import BERTConfig, BERTForSequenceClassification
from fmbook.nn.pooling import mean_pool

pytestmark = pytest.mark.usefixtures("one_thread")


def test_mean_pool_averages_only_kept_positions():
    h = torch.arange(12.0).view(1, 4, 3)
    keep = torch.tensor([[True, True, False, False]])
    torch.testing.assert_close(mean_pool(h, keep), h[0, :2].mean(0, keepdim=True))
    assert torch.equal(mean_pool(h, torch.zeros(1, 4, dtype=torch.bool)), torch.zeros(1, 3))


def test_bert_mean_pooling_is_mean_pool():
    torch.manual_seed(0)
    cfg = BERTConfig(vocab_size=10, max_len=8, n_layer=1, n_head=2, d_model=8, n_segments=0)
    model = BERTForSequenceClassification(cfg, 2, pooling="mean")
    h, keep = torch.randn(2, 5, 8), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()
    assert torch.equal(model.pool(h, keep), mean_pool(h, keep))
    assert torch.equal(model.pool(h, None), h.mean(dim=1))


@pytest.mark.parametrize(
    "hidden, keep, message",
    [
        (torch.zeros(4, 3), torch.ones(4, dtype=torch.bool), "hidden must be a"),
        (torch.zeros(1, 4, 3), torch.ones(1, 4).long(), "keep must be a bool tensor"),
        (torch.zeros(1, 4, 3), torch.ones(1, 5, dtype=torch.bool), r"shape \(1, 4\)"),
    ],
)
def test_bad_input_is_refused(hidden, keep, message):
    with pytest.raises(ValueError, match=message):
        mean_pool(hidden, keep)
