import pytest
import torch

from fmbook.interpret import (
    head_outputs,
    head_patching_table,
    module_outputs,
    normalised_effect,
    patch_heads,
    patch_outputs,
)
from fmbook.models import GPT, AttnOnlyConfig, AttnOnlyTransformer, GPTConfig


@pytest.fixture
def model():
    torch.manual_seed(0)
    cfg = AttnOnlyConfig(vocab_size=16, max_len=12, n_layer=2, n_head=4, d_model=16)
    return AttnOnlyTransformer(cfg).eval()


@pytest.fixture
def ids():
    g = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 16, (3, 10), generator=g)
    corrupt = torch.randint(0, 16, (3, 10), generator=g)
    return clean, corrupt


def test_head_outputs_shapes(model, ids):
    out = head_outputs(model, ids[0])
    assert list(out) == ["blocks.0.attn", "blocks.1.attn"]
    assert out["blocks.1.attn"].shape == (3, 10, 4, 4)


def test_patching_a_head_into_its_own_run_changes_nothing(model, ids):
    clean = ids[0]
    source = head_outputs(model, clean)
    with torch.no_grad():
        ref = model(clean)[0]
        with patch_heads(model, source, {"blocks.0.attn": [1], "blocks.1.attn": [0, 3]}):
            same = model(clean)[0]
    torch.testing.assert_close(same, ref, rtol=0, atol=1e-6)


def test_patching_a_head_changes_the_corrupted_run(model, ids):
    clean, corrupt = ids
    source = head_outputs(model, clean)
    with torch.no_grad():
        ref = model(corrupt)[0]
        with patch_heads(model, source, {"blocks.1.attn": [2]}):
            patched = model(corrupt)[0]
        # only at chosen positions: the earlier positions are untouched
        with patch_heads(model, source, {"blocks.1.attn": [2]}, positions=[7, 8]):
            part = model(corrupt)[0]
    assert not torch.allclose(patched, ref)
    torch.testing.assert_close(part[:, :7], ref[:, :7], rtol=0, atol=1e-6)
    assert not torch.allclose(part[:, 7:9], ref[:, 7:9])


def test_patching_the_whole_residual_stream_recovers_the_clean_output(model, ids):
    clean, corrupt = ids
    source = module_outputs(model, clean, ["blocks.1"])
    with torch.no_grad():
        ref = model(clean)[0]
        with patch_outputs(model, source):
            patched = model(corrupt)[0]
    torch.testing.assert_close(patched, ref, rtol=0, atol=0)


def test_patching_every_head_of_a_gpt_block_matches_its_attention_output():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=11, max_len=8, n_layer=2, n_head=2, d_model=8)).eval()
    a, b = torch.randint(0, 11, (2, 2, 8))
    source = head_outputs(gpt, a)
    attn = module_outputs(gpt, a, ["blocks.0.attn"])["blocks.0.attn"]
    got = {}
    with torch.no_grad(), patch_heads(gpt, source, {"blocks.0.attn": [0, 1]}):
        got = module_outputs(gpt, b, ["blocks.0.attn"])["blocks.0.attn"]
    torch.testing.assert_close(got, attn, rtol=0, atol=1e-6)


def test_normalised_effect():
    assert normalised_effect(3.0, corrupt=3.0, clean=1.0) == 0.0
    assert normalised_effect(1.0, corrupt=3.0, clean=1.0) == 1.0
    assert normalised_effect(2.5, corrupt=3.0, clean=1.0) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same metric"):
        normalised_effect(1.0, corrupt=2.0, clean=2.0)


def test_head_patching_table(model, ids):
    clean, corrupt = ids
    target = clean[:, -1]

    def metric(logits):
        return logits[:, -1].log_softmax(-1).gather(-1, target[:, None]).mean().item()

    table = head_patching_table(model, clean, corrupt, metric)
    assert len(table) == 8 and table.index[0] == "blocks.0.attn.0"
    attrs = table.attrs
    expected = (table.metric - attrs["corrupt"]) / (attrs["clean"] - attrs["corrupt"])
    torch.testing.assert_close(torch.tensor(table.effect.values), torch.tensor(expected.values))


def test_bad_input_is_refused(model, ids):
    clean, corrupt = ids
    source = head_outputs(model, clean)
    with pytest.raises(ValueError, match="not an attention layer"):
        with patch_heads(model, source, {"blocks.0": [0]}):
            pass
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        with patch_heads(model, source, {"blocks.0.attn": [4]}):
            pass
    with pytest.raises(ValueError, match="head outputs"):
        with patch_heads(model, {"blocks.0.attn": torch.zeros(3, 10, 16)}, {"blocks.0.attn": [0]}):
            pass
    with pytest.raises(ValueError, match="same shape"):
        with torch.no_grad(), patch_heads(model, source, {"blocks.0.attn": [0]}):
            model(corrupt[:2])
    with pytest.raises(ValueError, match="does not have"):
        module_outputs(model, clean, ["blocks.7"])
    with pytest.raises(ValueError, match="same shape"):
        head_patching_table(model, clean, corrupt[:, :5], lambda z: 0.0)
