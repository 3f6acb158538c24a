import pytest
import torch
import torch.nn.functional as F

from fmbook.interpret import (
    SparseAutoencoder,
    edit_feature,
    sae_loss,
    sae_stats,
    splice_sae,
    train_sae,
)
from fmbook.models import AttnOnlyConfig, AttnOnlyTransformer


def test_loss_against_a_hand_computation():
    torch.manual_seed(0)
    sae = SparseAutoencoder(3, 5, scale=2.0)
    x = torch.randn(4, 3)
    W, b = sae.enc.weight.detach(), sae.enc.bias.detach()
    f = torch.clamp((x / 2.0 - sae.b_dec.detach()) @ W.T + b, min=0)  # (4, 5)
    x_hat = 2.0 * (f @ sae.W_dec.detach() + sae.b_dec.detach())
    mse = sum(((x_hat[i, j] - x[i, j]) / 2.0) ** 2 for i in range(4) for j in range(3)) / 12
    l1 = sum(abs(f[i, k]) for i in range(4) for k in range(5)) / 4
    loss, got_mse, got_f = sae_loss(sae, x, l1=0.1)
    assert got_mse.item() == pytest.approx(float(mse), rel=1e-5)
    assert loss.item() == pytest.approx(float(mse + 0.1 * l1), rel=1e-5)
    torch.testing.assert_close(got_f, f)
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(5))


def test_training_reconstructs_sparse_data_and_stats():
    g = torch.Generator().manual_seed(0)
    dirs = F.normalize(torch.randn(8, 6, generator=g), dim=-1)  # 8 true features
    codes = torch.rand(4000, 8, generator=g) * (torch.rand(4000, 8, generator=g) < 0.15)
    acts = codes @ dirs  # (N, 6): sparse combinations
    sae = train_sae(acts, d_hidden=16, l1=1e-3, steps=600, batch_size=256, lr=1e-2)
    stats = sae_stats(sae, acts)
    assert stats["fvu"] < 0.1
    assert 0 < stats["l0"] < 16 and 0 <= stats["dead"] < 1
    assert stats["freq"].shape == (16,)
    with torch.no_grad():
        x_hat, _ = sae(acts)
    mse = ((x_hat - acts) / sae.scale).pow(2).mean().item()
    assert stats["mse"] == pytest.approx(mse, rel=1e-4)


def test_splice_and_edit_feature():
    torch.manual_seed(0)
    cfg = AttnOnlyConfig(vocab_size=10, max_len=8, n_layer=2, n_head=2, d_model=8)
    model = AttnOnlyTransformer(cfg).eval()
    ids = torch.randint(0, 10, (2, 8))
    sae = SparseAutoencoder(8, 12)
    with torch.no_grad():
        from fmbook.interpret import module_outputs

        x = module_outputs(model, ids, ["blocks.0"])["blocks.0"]  # (2, 8, 8)
        x_hat, f = sae(x)
        expected = model.lm_head(model.ln_f(model.blocks[1](x_hat)))
        with splice_sae(model, "blocks.0", sae):
            got = model(ids)[0]
        torch.testing.assert_close(got, expected)
        # setting a feature to its own value changes nothing; ablating it moves x along W_dec
        k = int(f.flatten(0, 1).sum(0).argmax())
        after = {}
        with edit_feature(model, "blocks.0", sae, k, value=0.0):
            after = module_outputs(model, ids, ["blocks.0"])["blocks.0"]
        moved = x - f[..., k : k + 1] * sae.scale * sae.W_dec[k]
        torch.testing.assert_close(after, moved)
        assert sae.encode(after)[..., k].abs().max() < sae.encode(x)[..., k].abs().max()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="acts must be"):
        train_sae(torch.zeros(5), d_hidden=4, l1=0.1, steps=1)
    with pytest.raises(ValueError, match="l1 must be"):
        train_sae(torch.zeros(5, 2), d_hidden=4, l1=-1, steps=1)
    with pytest.raises(ValueError, match="d_hidden"):
        SparseAutoencoder(3, 0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="feature must be"):
        with edit_feature(model, "0", SparseAutoencoder(3, 4), 4):
            pass
    with pytest.raises(ValueError, match="does not have"):
        with splice_sae(model, "1", SparseAutoencoder(3, 4)):
            pass
