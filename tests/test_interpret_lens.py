import pytest
import torch
import torch.nn.functional as F

from fmbook.interpret import lens_table, logit_lens, residual_stream
from fmbook.models import GPT, AttnOnlyConfig, AttnOnlyTransformer, GPTConfig


def models():
    torch.manual_seed(0)
    yield GPT(GPTConfig(vocab_size=13, max_len=9, n_layer=3, n_head=2, d_model=8)).eval()
    cfg = AttnOnlyConfig(vocab_size=13, max_len=9, n_layer=2, n_head=2, d_model=8)
    yield AttnOnlyTransformer(cfg).eval()


@pytest.mark.parametrize("model", list(models()), ids=["gpt", "attn_only"])
def test_lens_at_the_last_layer_is_the_models_logits(model):
    ids = torch.randint(0, 13, (2, 9))
    stream = residual_stream(model, ids)
    assert stream.shape == (len(model.blocks) + 1, 2, 9, 8)
    with torch.no_grad():
        logits = model(ids)[0]
        torch.testing.assert_close(logit_lens(model, stream[-1]), logits, rtol=0, atol=0)
        torch.testing.assert_close(
            stream[0],
            model.tok_emb(ids) + (0 if model.pos_emb is None else model.pos_emb(torch.arange(9))),
        )


def test_lens_table_against_a_hand_computation():
    model = next(models())
    ids = torch.randint(0, 13, (2, 9))
    targets = torch.randint(0, 13, (2, 9))
    targets[0, :3] = -100
    table = lens_table(model, ids, targets)
    assert list(table.index) == [0, 1, 2, 3]
    with torch.no_grad():
        logits = model(ids)[0]
    keep = targets != -100
    loss = F.cross_entropy(logits[keep], targets[keep]).item()
    acc = (logits[keep].argmax(-1) == targets[keep]).float().mean().item()
    assert table.loc[3, "loss"] == pytest.approx(loss, abs=1e-6)
    assert table.loc[3, "accuracy"] == pytest.approx(acc)


def test_bad_input_is_refused():
    model = next(models())
    with pytest.raises(ValueError, match="blocks, ln_f and lm_head"):
        residual_stream(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="targets must have the shape"):
        lens_table(model, torch.zeros(2, 9, dtype=torch.long), torch.zeros(2, 8))
