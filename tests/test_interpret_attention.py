"""fmbook.interpret.attention: recorded attention weights are the ones the layers use."""

import pytest
import torch

from fmbook.interpret import attention_inputs, record_attention
from fmbook.models import GPT, GPTConfig
from fmbook.models.transformer import Seq2SeqConfig, Transformer
from fmbook.nn import MultiHeadAttention, RotaryEmbedding, padding_mask

pytestmark = pytest.mark.usefixtures("one_thread")


def reproduce(layer: MultiHeadAttention, weights: torch.Tensor, x, context=None) -> torch.Tensor:
    """proj(concat_h(weights_h @ v_h)) from recorded weights (B, H, Tq, Tk)."""
    _, _, v = layer._project(x, context)  # (B, H, Tk, D)
    y = (weights @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], layer.d_model)
    return layer.proj(y)


@pytest.mark.parametrize("causal", [False, True])
def test_recorded_weights_reproduce_the_output_and_rows_sum_to_one(causal):
    torch.manual_seed(0)
    layer = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 5, 16)
    with record_attention(layer) as maps, torch.no_grad():
        out = layer(x, causal=causal)
        w = maps[""]
        torch.testing.assert_close(reproduce(layer, w, x), out, atol=1e-5, rtol=1e-5)
    assert w.shape == (2, 4, 5, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 5))
    upper = torch.ones(5, 5, dtype=torch.bool).triu(1)
    assert (w[..., upper] == 0).all() == causal  # causal: exactly zero above the diagonal


def test_cross_attention_with_padding_and_rotary_self_attention():
    torch.manual_seed(1)
    cross = MultiHeadAttention(16, 2, cross=True).eval()
    x, memory = torch.randn(2, 3, 16), torch.randn(2, 6, 16)
    mask = padding_mask([6, 4])  # (B, Tk): the second memory has 2 padded positions
    with record_attention(cross) as maps, torch.no_grad():
        out = cross(x, context=memory, mask=mask)
        w = maps[""]
        torch.testing.assert_close(reproduce(cross, w, x, memory), out, atol=1e-5, rtol=1e-5)
    assert w.shape == (2, 2, 3, 6) and (w[1, :, :, 4:] == 0).all()
    rotary = MultiHeadAttention(16, 2, rotary=RotaryEmbedding(8, 32)).eval()
    with record_attention(rotary) as maps, torch.no_grad():
        out = rotary(x, causal=True)
        q, k, v, m, causal = attention_inputs(rotary, (x,), {"causal": True})
        assert causal and m is None
    expected = torch.softmax((q @ k.transpose(-2, -1) / 8**0.5).masked_fill(
        torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf")), dim=-1)  # fmt: skip
    torch.testing.assert_close(maps[""], expected)


def test_gpt_maps_with_a_kv_cache_equal_those_of_the_whole_sequence():
    torch.manual_seed(2)
    model = GPT(GPTConfig(vocab_size=11, max_len=8, n_layer=2, n_head=2, d_model=16)).eval()
    prompt = torch.randint(0, 11, (1, 3))
    with record_attention(model, names="blocks.1.attn") as cached, torch.no_grad():
        out = model.generate(prompt, 3, top_k=1)  # the prompt, then one position at a time
    steps = cached.calls["blocks.1.attn"]
    assert len(cached) == 1 and [s.shape[-2:] for s in steps] == [(3, 3), (1, 4), (1, 5)]
    with record_attention(model) as maps, torch.no_grad():
        model(out[:, :5])  # the five positions the three calls processed, at once
    assert maps.names() == ["blocks.0.attn", "blocks.1.attn"]
    full = maps["blocks.1.attn"]  # (1, 2, 5, 5)
    tol = dict(atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(steps[0], full[..., :3, :3], **tol)
    torch.testing.assert_close(steps[1][..., 0, :], full[..., 3, :4], **tol)
    torch.testing.assert_close(steps[2][..., 0, :], full[..., 4, :5], **tol)


def test_transformer_records_encoder_decoder_and_cross_maps():
    torch.manual_seed(3)
    cfg = Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, max_len=12, n_encoder_layers=1,
                        n_decoder_layers=1, n_head=2, d_model=16, dropout=0.0, pad_id=0)  # fmt: skip
    model = Transformer(cfg).eval()
    src = torch.tensor([[3, 4, 5, 6, 0, 0]])
    tgt = torch.tensor([[1, 7, 8, 2]])
    with record_attention(model) as maps, torch.no_grad():
        model(src, tgt)
    assert maps.names() == ["encoder.0.attn", "decoder.0.attn", "decoder.0.cross_attn"]
    enc, dec, cross = (maps[n] for n in maps.names())
    assert enc.shape == (1, 2, 6, 6) and dec.shape == (1, 2, 4, 4) and cross.shape == (1, 2, 4, 6)
    assert (enc[..., 4:] == 0).all() and (cross[..., 4:] == 0).all()  # padded source keys
    assert (dec[..., torch.ones(4, 4, dtype=torch.bool).triu(1)] == 0).all()  # causal
    assert (enc[..., :4] > 0).all()  # bidirectional: every real key gets some weight
    for w in (enc, dec, cross):
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def test_hooks_are_removed_and_bad_input_raises():
    layer = MultiHeadAttention(8, 2)
    with record_attention(layer) as maps:
        pass
    layer(torch.randn(1, 3, 8))
    assert len(maps) == 0 and not layer._forward_hooks and not layer._forward_pre_hooks
    with pytest.raises(KeyError, match="no attention recorded"):
        maps["x"]
    with pytest.raises(ValueError, match="names must be attention layers"):
        with record_attention(layer, names=["nope"]):
            pass
    with pytest.raises(ValueError, match="no MultiHeadAttention"):
        with record_attention(torch.nn.Linear(2, 2)):
            pass
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        with record_attention("gpt"):
            pass
    with pytest.raises(ValueError, match="module must be a MultiHeadAttention"):
        attention_inputs(torch.nn.Linear(2, 2), (), {})
