"""fmbook._checks: every argument check, through the public API that relies on it.

One table: a bad call and a fragment of the ValueError it must raise (the message names the
argument and says what it got). Behaviour tests live with each module's own tests.
"""

import pytest
import torch

from fmbook import _checks
from fmbook.models import GPT, GPTConfig
from fmbook.models.bert import (
    BERT,
    BERTConfig,
    BERTForMaskedLM,
    BERTForSequenceClassification,
    mask_tokens,
)
from fmbook.models.lstm_seq2seq import LSTMSeq2Seq, seq2seq_loss
from fmbook.models.transformer import Seq2SeqConfig, Transformer
from fmbook.nn import (
    MLP,
    KVCache,
    LayerNorm,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    RMSNorm,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    SwiGLU,
    TransformerBlock,
    apply_rotary,
    padding_mask,
    scaled_dot_product_attention,
    sdpa,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def r(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def ones(*shape, dtype=torch.bool):
    return torch.ones(*shape, dtype=dtype)


def long(*shape, fill=0):
    return torch.full(shape, fill, dtype=torch.long)


def gpt():
    return GPT(GPTConfig(vocab_size=11, max_len=8, n_layer=2, n_head=2, d_model=16)).eval()


def gpt_config(**kw):
    return GPTConfig(**(dict(vocab_size=11, max_len=8, n_layer=2, n_head=2, d_model=16) | kw))


def bert_config(**kw):
    base = dict(vocab_size=20, max_len=16, n_layer=2, n_head=2, d_model=16, dropout=0.0)
    return BERTConfig(**(base | kw))


def s2s_config(**kw):
    base = dict(src_vocab_size=11, tgt_vocab_size=11, max_len=16, n_encoder_layers=1)
    return Seq2SeqConfig(**(base | dict(n_decoder_layers=1, n_head=2, d_model=32) | kw))


def lstm(**kw):
    return LSTMSeq2Seq(11, 11, **(dict(emb_dim=16, hidden_size=32, pad_id=0) | kw))


def mha_with_cache():
    mha, cache = MultiHeadAttention(32, 4), KVCache()
    mha(r(2, 5, 32), cache=cache)
    return mha, cache


def mask_args(**kw):
    ids = torch.randint(3, 20, (3, 10), generator=torch.Generator().manual_seed(0))
    return dict(ids=ids, mask_id=2, vocab_size=20) | kw


ATTENTION_FNS = {"explicit": scaled_dot_product_attention, "sdpa": sdpa}
q3 = r(2, 3, 4)

# (id, call, fragment of the message)
CASES = [
    # --------------------------------------------------------------- attention functions
    *[
        (f"{name}-{case}", (lambda fn=fn, a=args, k=kw: fn(*a, **k)), match)
        for name, fn in ATTENTION_FNS.items()
        for case, args, kw, match in [
            ("q-int", (long(2, 3, 4), q3, q3), {}, "q must be a floating"),
            ("k-dim", (q3, r(2, 3, 5), q3), {}, "last dim d_k=4"),
            ("v-rows", (q3, q3, r(2, 6, 4)), {}, "v must have as many rows"),
            ("leading", (q3, r(3, 3, 4), r(3, 3, 4)), {}, "leading"),
            ("dtype", (q3, q3.double(), q3), {}, "share a dtype"),
            ("1-d", (r(4), r(4), r(4)), {}, "at least 2 dims"),
            ("mask-shape", (q3, r(2, 5, 4), r(2, 5, 4)), {"mask": ones(3, 3)},
             r"does not broadcast .* \(2, 3, 5\)"),
            ("mask-float", (q3, q3, q3), {"mask": torch.ones(3, 3)}, "mask must be a boolean"),
            ("causal", (q3, q3, q3), {"causal": 1}, "causal must be a bool"),
            ("dropout", (q3, q3, q3), {"dropout_p": 1.5}, r"dropout_p must be in \[0, 1\)"),
        ]
    ],
    ("padding_mask", lambda: padding_mask([3, 9], 4), r"lengths must lie in \[0, max_len=4\]"),
    # --------------------------------------------------------------- multi-head attention
    ("mha-divisible", lambda: MultiHeadAttention(30, 4), r"d_model \(30\) must be divisible by n_head \(4\)"),
    ("mha-dropout", lambda: MultiHeadAttention(32, 4, dropout=1.0), "dropout must be in"),
    ("mha-heads", lambda: MultiHeadAttention(32, 0), "n_head must be a positive int, got 0"),
    ("mha-rotary", lambda: MultiHeadAttention(32, 4, rotary=RotaryEmbedding(16)), "rotary"),
    ("mha-x-width", lambda: MultiHeadAttention(32, 4)(r(2, 5, 16)), r"x must have shape \(B, T, d_model=32\)"),
    ("mha-x-int", lambda: MultiHeadAttention(32, 4)(long(2, 5, 32)), "x must be a floating-point"),
    ("mha-context-self", lambda: MultiHeadAttention(32, 4)(r(2, 5, 32), context=r(2, 5, 32)), "context must be None"),
    ("mha-context-missing", lambda: MultiHeadAttention(32, 4, cross=True)(r(2, 5, 32)), "context .* is required"),
    ("mha-context-shape", lambda: MultiHeadAttention(32, 4, cross=True)(r(2, 5, 32), r(3, 5, 32)), "context must have shape"),
    ("mha-cross-cache", lambda: MultiHeadAttention(32, 4, cross=True)(r(2, 5, 32), r(2, 5, 32), cache=KVCache()), "cross-attention takes cache=None"),
    ("mha-cache-type", lambda: MultiHeadAttention(32, 4)(r(2, 5, 32), cache=[]), "cache must be a KVCache"),
    ("mha-padding", lambda: MultiHeadAttention(32, 4)(r(2, 5, 32), mask=ones(2, 4)), r"key padding mask of shape \(B, Tk\) = \(2, 5\)"),
    ("mha-mask-3d", lambda: MultiHeadAttention(32, 4)(r(2, 5, 32), mask=ones(2, 5, 5)), "mask must be a key padding mask"),
    ("mha-mask-4d", lambda: MultiHeadAttention(32, 4)(r(2, 5, 32), mask=ones(2, 3, 5, 5)), "does not broadcast"),
    ("mha-padding-cached", lambda: (lambda m, c: m(r(2, 1, 32), mask=ones(2, 1), cache=c))(*mha_with_cache()), r"\(B, Tk\) = \(2, 6\)"),
    ("kv-cache-batch", lambda: (lambda m, c: m(r(3, 1, 32), cache=c))(*mha_with_cache()), "start a fresh KVCache"),
    # --------------------------------------------------------------- positions
    ("sinusoidal-long", lambda: SinusoidalPositionalEncoding(4, max_len=8)(torch.arange(9)), "sequence of length 9 is longer than max_len=8"),
    ("learned-long", lambda: LearnedPositionalEmbedding(8, 4)(torch.arange(9)), "sequence of length 9 is longer than max_len=8"),
    ("rotary-long", lambda: RotaryEmbedding(4, max_len=8)(r(1, 9, 4), r(1, 9, 4), torch.arange(9)), "sequence of length 9 is longer than max_len=8"),
    ("positions-float", lambda: LearnedPositionalEmbedding(8, 4)(torch.arange(3.0)), "positions must be an integer tensor"),
    ("positions-negative", lambda: SinusoidalPositionalEncoding(4)(torch.tensor([-1])), "positions must be >= 0"),
    ("positional-size", lambda: SinusoidalPositionalEncoding(0), "d_model must be a positive int, got 0"),
    ("rotary-odd", lambda: RotaryEmbedding(7), "d_head must be a positive even int"),
    ("rotary-d_head", lambda: RotaryEmbedding(8)(r(1, 5, 6), r(1, 5, 6), torch.arange(5)), "last dim d_head=8"),
    ("rotary-positions", lambda: RotaryEmbedding(8)(r(1, 5, 8), r(1, 5, 8), torch.arange(4)), "positions must be a 1-D integer tensor of length T=5"),
    ("rotary-share", lambda: apply_rotary(r(2, 5, 8), r(2, 3, 8), torch.arange(5)), "q and k must share"),
    ("rotary-odd-dim", lambda: apply_rotary(r(2, 5, 7), r(2, 5, 7), torch.arange(5)), "even last dim"),
    # --------------------------------------------------------------- norms, MLPs, blocks
    *[
        (f"{name}-input", (lambda m=m, x=x: m()(x)), r"x must be a floating-point \(\.\.\., d_model=8\)")
        for name, m in [("layernorm", lambda: LayerNorm(8)), ("rmsnorm", lambda: RMSNorm(8)),
                        ("mlp", lambda: MLP(8)), ("swiglu", lambda: SwiGLU(8))]
        for x in (r(2, 7), long(2, 8))
    ],
    ("rmsnorm-size", lambda: RMSNorm(0), "d_model must be a positive int"),
    ("rmsnorm-eps", lambda: RMSNorm(8, eps=0.0), "eps must be > 0"),
    ("mlp-size", lambda: MLP(0), "d_model must be a positive int"),
    ("mlp-hidden", lambda: MLP(8, hidden=0), "hidden must be a positive int, got 0"),
    ("swiglu-dropout", lambda: SwiGLU(8, dropout=-0.1), "dropout must be in"),
    ("swiglu-multiple", lambda: SwiGLU(8, multiple_of=0), "multiple_of must be a positive int"),
    ("block-mlp", lambda: TransformerBlock(32, 4, mlp="relu"), "mlp must be one of"),
    ("block-norm", lambda: TransformerBlock(32, 4, norm="batch"), "norm must be one of"),
    ("block-divisible", lambda: TransformerBlock(32, 5), "divisible"),
    ("block-memory-missing", lambda: TransformerBlock(32, 4, cross_attention=True)(r(1, 3, 32)), "memory .* is required"),
    ("block-memory-extra", lambda: TransformerBlock(32, 4)(r(1, 3, 32), memory=r(1, 3, 32)), "cross_attention=True"),
    ("block-width", lambda: TransformerBlock(32, 4)(r(1, 3, 16)), "d_model=32"),
    # --------------------------------------------------------------- GPT
    *[
        (f"gptconfig-{field}", (lambda f=field, v=value: gpt_config(**{f: v})), field)
        for field, value in [("d_model", 15), ("vocab_size", 0), ("dropout", 1.0), ("n_layer", 1.5), ("max_len", 0)]
    ],
    ("gpt-dtype", lambda: gpt()(torch.zeros(1, 4)), r"idx must be a \(B, T\) tensor of dtype torch.long"),
    ("gpt-dims", lambda: gpt()(long(4)), r"\(B, T\)"),
    ("gpt-vocab", lambda: gpt()(long(1, 4, fill=11)), r"outside \[0, vocab_size=11\)"),
    ("gpt-negative", lambda: gpt()(long(1, 4, fill=-1)), "outside"),
    ("gpt-long", lambda: gpt()(long(1, 9)), "9 tokens, more than max_len=8"),
    ("gpt-targets", lambda: gpt()(long(1, 4), long(1, 3)), "targets must have the shape"),
    ("gpt-caches", lambda: gpt()(long(1, 4), caches=[KVCache()]), "one KVCache per layer"),
    ("gpt-temperature", lambda: gpt().generate(long(1, 2), 3, temperature=0.0), "temperature must be > 0"),
    ("gpt-top_k", lambda: gpt().generate(long(1, 2), 3, top_k=0), "top_k"),
    ("gpt-max_new_tokens", lambda: gpt().generate(long(1, 2), -1), "max_new_tokens"),
    ("gpt-generate-vocab", lambda: gpt().generate(long(1, 2, fill=11), 3), "vocab_size=11"),
    # --------------------------------------------------------------- BERT
    ("bertconfig-divisible", lambda: bert_config(d_model=15), "divisible"),
    ("bertconfig-pad_id", lambda: bert_config(pad_id=20), r"pad_id must be None or an id in \[0, vocab_size=20\)"),
    ("bertconfig-segments", lambda: bert_config(n_segments=-1), "n_segments"),
    ("bert-dtype", lambda: BERT(bert_config())(torch.zeros(2, 3)), "ids must be a"),
    ("bert-long", lambda: BERT(bert_config())(long(2, 17)), "max_len=16"),
    ("bert-vocab", lambda: BERT(bert_config())(long(2, 3, fill=20)), "vocab_size=20"),
    ("bert-pad_mask", lambda: BERT(bert_config())(long(2, 3), torch.ones(2, 3)), "pad_mask must be a boolean"),
    ("bert-segments", lambda: BERT(bert_config())(long(2, 3), None, long(2, 3, fill=2)), r"segment_ids must lie in \[0, n_segments=2\)"),
    ("bert-segments-shape", lambda: BERT(bert_config())(long(2, 3), None, long(2, 4)), "segment_ids must be a long tensor"),
    ("bert-no-segments", lambda: BERT(bert_config(n_segments=0))(long(2, 3), None, long(2, 3)), "n_segments >= 1"),
    ("bert-pooling", lambda: BERTForSequenceClassification(bert_config(), 3, pooling="max"), "pooling"),
    ("bert-n_classes", lambda: BERTForSequenceClassification(bert_config(), 1), "n_classes"),
    ("bert-labels-range", lambda: BERTForSequenceClassification(bert_config(), 3)(long(3, 4), labels=torch.tensor([0, 1, 3])), r"labels must be -100 \(ignored\) or lie in \[0, 3\)"),
    ("bert-labels-shape", lambda: BERTForMaskedLM(bert_config())(long(3, 10), labels=long(3, 9)), "labels must be a long tensor of shape"),
    ("mask-mask_id", lambda: mask_tokens(**mask_args(mask_id=20)), "mask_id"),
    ("mask-p-zero", lambda: mask_tokens(**mask_args(p=0.0)), "p must be"),
    ("mask-p-big", lambda: mask_tokens(**mask_args(p=1.5)), "p must be"),
    ("mask-ids-range", lambda: mask_tokens(**mask_args(vocab_size=10)), "ids must lie"),
    ("mask-special", lambda: mask_tokens(**mask_args(special_ids=(25,))), "special_ids"),
    ("mask-ids-dtype", lambda: mask_tokens(**mask_args(ids=torch.zeros(2, 3))), "ids must be a tensor of dtype torch.long"),
    # --------------------------------------------------------------- encoder-decoder Transformer
    ("s2sconfig-share", lambda: s2s_config(share_embeddings=True, tgt_vocab_size=20), "share_embeddings"),
    ("s2sconfig-positions", lambda: s2s_config(positions="rope"), "positions must be one of"),
    ("s2sconfig-divisible", lambda: s2s_config(d_model=33), "divisible"),
    ("s2sconfig-pad_id", lambda: s2s_config(pad_id=11), "pad_id"),
    ("s2s-src", lambda: Transformer(s2s_config())(torch.zeros(2, 3), long(2, 3)), "src must be"),
    ("s2s-tgt_in", lambda: Transformer(s2s_config())(long(2, 3), torch.zeros(2, 3)), "tgt_in must be"),
    ("s2s-vocab", lambda: Transformer(s2s_config())(long(2, 3, fill=11), long(2, 3)), "vocab_size=11"),
    ("s2s-long", lambda: Transformer(s2s_config())(long(2, 17, fill=1), long(2, 3, fill=1)), "max_len=16"),
    ("s2s-src_pad_mask", lambda: Transformer(s2s_config())(long(2, 3, fill=1), long(2, 3, fill=1), torch.ones(2, 3)), "src_pad_mask"),
    ("s2s-memory", lambda: Transformer(s2s_config()).decode(long(2, 3, fill=1), r(3, 4, 32)), "memory must be"),
    ("s2s-memory-mask", lambda: Transformer(s2s_config()).decode(long(2, 3, fill=1), r(2, 4, 32), ones(2, 3)), "memory_pad_mask"),
    ("s2s-cache", lambda: Transformer(s2s_config()).decode(long(2, 3, fill=1), r(2, 4, 32), cache=[]), "cache must be a list"),
    ("s2s-translate-max_len", lambda: Transformer(s2s_config()).translate(long(2, 3, fill=3), 17, 1, 2), r"max_len must be an int in \[1, 16\]"),
    ("s2s-translate-bos", lambda: Transformer(s2s_config()).translate(long(2, 3, fill=3), 5, 11, 2), "bos_id"),
    ("s2s-translate-beam", lambda: Transformer(s2s_config()).translate(long(2, 3, fill=3), 5, 1, 2, beam_size=0), "beam_size"),
    # --------------------------------------------------------------- LSTM encoder-decoder
    ("lstm-size", lambda: lstm(hidden_size=0), "hidden_size must be a positive int"),
    ("lstm-dropout", lambda: lstm(dropout=1.0), "dropout must be in"),
    ("lstm-pad_id", lambda: lstm(pad_id=11), "pad_id"),
    ("lstm-src-dims", lambda: lstm()(torch.tensor([3, 4]), torch.tensor([[1, 4]])), r"src must be a \(B, T >= 1\)"),
    ("lstm-src-float", lambda: lstm()(torch.tensor([[3.0, 4.0]]), torch.tensor([[1, 4]])), "integer dtype"),
    ("lstm-tgt-vocab", lambda: lstm()(torch.tensor([[3, 4, 0]]), torch.tensor([[1, 11]])), r"tgt_in holds token ids outside \[0, vocab_size=11\)"),
    ("lstm-batch", lambda: lstm()(torch.tensor([[3, 4, 0]]), torch.tensor([[1, 4], [1, 4]])), "batch size"),
    ("lstm-pad-inverted", lambda: lstm()(torch.tensor([[3, 4, 0]]), torch.tensor([[1, 4]]), torch.tensor([[False, False, True]])), "True for real tokens"),
    ("lstm-pad-holes", lambda: lstm()(torch.tensor([[3, 4, 0]]), torch.tensor([[1, 4]]), torch.tensor([[True, False, True]])), "right-padded"),
    ("lstm-translate", lambda: lstm().translate(torch.tensor([[3, 4, 0]]), max_len=0, bos_id=1, eos_id=2), "max_len must be an int >= 1"),
    ("lstm-loss-float", lambda: seq2seq_loss(r(1, 2, 5), r(1, 2), 0), "integer class ids"),
]  # fmt: skip


@pytest.mark.parametrize("call, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "x, text",
    [(torch.zeros(2, 3, dtype=torch.long), "torch.int64 tensor of shape (2, 3)"), ([1], "list")],
)
def test_describe_names_dtype_and_shape_or_the_type(x, text):
    assert _checks.describe(x) == text


def test_a_rejected_attention_call_leaves_the_cache_alone():
    mha, cache = mha_with_cache()
    with pytest.raises(ValueError):
        mha(r(2, 1, 32), mask=ones(2, 1), cache=cache)
    assert len(cache) == 5
