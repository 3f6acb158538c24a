"""Closed-form parameter and FLOP counts against numel() and FlopCounterMode."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fmbook.models import GPT, GPTConfig
from fmbook.models.bert import BERT, BERTConfig, BERTForMaskedLM
from fmbook.models.counting import (
    bert_params,
    block_params,
    gpt_flops_per_token,
    gpt_matmul_params,
    gpt_params,
    mlp_params,
    seq2seq_params,
    training_flops,
)
from fmbook.models.transformer import Seq2SeqConfig, Transformer
from fmbook.nn import SwiGLU, TransformerBlock


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())  # shared tensors are yielded once


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("V", "T", "L", "H", "C"), [(65, 64, 2, 4, 64), (100, 32, 3, 2, 48)])
def test_gpt_params_equal_numel(V, T, L, H, C, bias):
    cfg = GPTConfig(vocab_size=V, max_len=T, n_layer=L, n_head=H, d_model=C, bias=bias)
    per_block = 12 * C**2 + (13 * C if bias else 2 * C)
    assert gpt_params(cfg) == numel(GPT(cfg))
    assert gpt_params(cfg) == V * C + T * C + L * per_block + (2 * C if bias else C)


def test_gpt2_small_is_124m():
    cfg = GPTConfig(vocab_size=50257, max_len=1024, n_layer=12, n_head=12, d_model=768)
    assert gpt_params(cfg) == 124_439_808
    with torch.device("meta"):
        assert numel(GPT(cfg)) == 124_439_808


@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
@pytest.mark.parametrize("norm", ["layer", "rms"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cross", [True, False])
def test_block_params_equal_numel(mlp, norm, bias, cross):
    block = TransformerBlock(40, 4, mlp=mlp, norm=norm, bias=bias, cross_attention=cross)
    assert block_params(40, mlp=mlp, norm=norm, bias=bias, cross_attention=cross) == numel(block)


def test_swiglu_params():
    assert mlp_params(96, mlp="swiglu", bias=False) == numel(SwiGLU(96, bias=False)) == 3 * 96 * 256
    assert mlp_params(96, mlp="swiglu", hidden=100) == numel(SwiGLU(96, hidden=100))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(positions="sinusoidal"),
        dict(positions="learned", bias=False),
        dict(share_embeddings=True, src_vocab_size=50, n_encoder_layers=1),
    ],
)
def test_seq2seq_params_equal_numel(kwargs):
    cfg = Seq2SeqConfig(**{"src_vocab_size": 70, "tgt_vocab_size": 50, "max_len": 32, **kwargs})
    assert seq2seq_params(cfg) == numel(Transformer(cfg))


@pytest.mark.parametrize("kwargs", [dict(), dict(n_segments=0, bias=False)])
def test_bert_params_equal_numel(kwargs):
    cfg = BERTConfig(vocab_size=90, max_len=40, n_layer=2, d_model=32, **kwargs)
    assert bert_params(cfg) == numel(BERT(cfg))
    assert bert_params(cfg, head="mlm") == numel(BERTForMaskedLM(cfg))


@pytest.mark.parametrize("T", [16, 48])
def test_gpt_training_flops_equal_flop_counter(T):
    cfg = GPTConfig(vocab_size=65, max_len=48, n_layer=2, n_head=4, d_model=32)
    model, B = GPT(cfg), 3
    idx = torch.randint(0, 65, (B, T), generator=torch.Generator().manual_seed(0))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        loss.backward()
    assert counter.get_total_flops() == B * T * gpt_flops_per_token(cfg, T)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            model(idx)
    assert counter.get_total_flops() == B * T * gpt_flops_per_token(cfg, T, training=False)
    assert gpt_matmul_params(cfg) == 12 * 2 * 32**2 + 65 * 32


def test_training_flops_and_errors():
    assert training_flops(1e9, 2e10) == 1.2e20
    cfg = GPTConfig(vocab_size=10, max_len=8)
    with pytest.raises(ValueError, match="n_tokens"):
        training_flops(1e6, 0)
    with pytest.raises(ValueError, match="context"):
        gpt_flops_per_token(cfg, 9)
    with pytest.raises(ValueError, match="cfg must be a GPTConfig"):
        gpt_params(BERTConfig(vocab_size=10))
    with pytest.raises(ValueError, match="mlp"):
        block_params(8, mlp="relu")
    with pytest.raises(ValueError, match="norm"):
        block_params(8, norm="batch")
    with pytest.raises(ValueError, match="head"):
        bert_params(BERTConfig(vocab_size=10), head="cls")
    with pytest.raises(ValueError, match="d_model"):
        block_params(0)
