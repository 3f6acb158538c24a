import pytest
import torch
import torch.nn.functional as F

from fmbook.models.transformer import Seq2SeqConfig, Transformer

PAD, BOS, EOS = 0, 1, 2
N_SYMBOLS = 10  # ordinary tokens are 3 .. 12
V = 3 + N_SYMBOLS


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kwargs) -> Seq2SeqConfig:
    options = dict(
        src_vocab_size=V,
        tgt_vocab_size=V,
        max_len=16,
        n_encoder_layers=2,
        n_decoder_layers=2,
        n_head=2,
        d_model=32,
        dropout=0.0,
    )
    return Seq2SeqConfig(**(options | kwargs))


def reversal_batch(B: int, generator: torch.Generator, min_len=3, max_len=6):
    """Random sequences of 3..6 symbols, right-padded; the target is the reversed source:
    src (B, 6), tgt (B, 8) = [BOS, reversed..., EOS, PAD...]."""
    lengths = torch.randint(min_len, max_len + 1, (B,), generator=generator)
    src = torch.full((B, max_len), PAD)
    tgt = torch.full((B, max_len + 2), PAD)
    for b, n in enumerate(lengths.tolist()):
        seq = torch.randint(3, V, (n,), generator=generator)
        src[b, :n] = seq
        tgt[b, 0], tgt[b, 1 : n + 1], tgt[b, n + 1] = BOS, seq.flip(0), EOS
    return src, tgt


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_shapes_and_forward_is_encode_then_decode(positions):
    torch.manual_seed(0)
    model = Transformer(tiny(positions=positions, tgt_vocab_size=17)).eval()
    src, tgt = reversal_batch(4, torch.Generator().manual_seed(0))
    logits = model(src, tgt)
    assert logits.shape == (4, 8, 17)
    memory = model.encode(src)
    assert memory.shape == (4, 6, 32)
    torch.testing.assert_close(model.decode(tgt, memory, src != PAD), logits)


def test_shared_embeddings_are_one_matrix():
    model = Transformer(tiny(share_embeddings=True))
    assert model.src_emb is model.tgt_emb
    separate = Transformer(tiny())
    n_shared = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in separate.parameters()) == n_shared + V * 32


def test_incremental_decoding_with_cache_equals_recomputation():
    torch.manual_seed(0)
    model = Transformer(tiny()).eval()
    src, tgt = reversal_batch(3, torch.Generator().manual_seed(1))
    memory, mask = model.encode(src), src != PAD
    full = model.decode(tgt, memory, mask)  # (3, 8, V)
    cache = model.new_cache()
    pieces = [model.decode(tgt[:, :3], memory, mask, cache=cache)]  # a chunk, then one by one
    for t in range(3, tgt.shape[1]):
        pieces.append(model.decode(tgt[:, t : t + 1], memory, mask, cache=cache))
    assert len(cache[0]) == tgt.shape[1]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def test_source_padding_is_masked():
    torch.manual_seed(0)
    model = Transformer(tiny()).eval()
    src, tgt = reversal_batch(2, torch.Generator().manual_seed(2), min_len=6)
    padded = torch.cat((src, torch.full((2, 4), PAD)), dim=1)
    torch.testing.assert_close(model(padded, tgt), model(src, tgt), atol=1e-5, rtol=1e-5)
    no_mask = torch.ones_like(padded, dtype=torch.bool)
    assert not torch.allclose(model(padded, tgt, no_mask), model(src, tgt), atol=1e-4)


@pytest.fixture(scope="module")
def trained():
    """A tiny Transformer trained to reverse sequences of 3..6 symbols (about 6 s)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = Transformer(tiny())
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)
    steps = 300
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps)
    losses = []
    for _ in range(steps):
        src, tgt = reversal_batch(32, g)
        logits = model(src, tgt[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


@pytest.mark.slow
def test_training_learns_to_reverse(trained):
    _, losses = trained
    assert sum(losses[:10]) / 10 > 2.0
    assert sum(losses[-10:]) / 10 < 0.05


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.slow
def test_translation_reproduces_the_reversal(trained, beam_size):
    model, _ = trained
    src, tgt = reversal_batch(32, torch.Generator().manual_seed(123))
    out = model.translate(src, max_len=8, bos_id=BOS, eos_id=EOS, beam_size=beam_size)
    assert out.shape[0] == 32 and 7 <= out.shape[1] <= 8  # 6 symbols + EOS, up to max_len
    expected = F.pad(tgt[:, 1:], (0, out.shape[1] - 7), value=PAD)
    expected = expected.masked_fill(expected == PAD, EOS)  # padded with EOS after EOS
    assert torch.equal(out, expected)
    assert not model.training


@pytest.mark.slow
def test_greedy_translation_equals_argmax_of_full_recomputation(trained):
    model, _ = trained
    src, _ = reversal_batch(5, torch.Generator().manual_seed(9))
    out = model.translate(src, max_len=8, bos_id=BOS, eos_id=EOS)
    prefix = torch.full((5, 1), BOS)
    for _ in range(out.shape[1]):  # no cache: decode the whole prefix every step
        nxt = model(src, prefix)[:, -1].argmax(-1, keepdim=True)
        prefix = torch.cat((prefix, nxt), dim=1)
    ended = (prefix[:, 1:] == EOS).cumsum(1) > 0
    shifted = torch.cat((torch.zeros(5, 1, dtype=torch.bool), ended[:, :-1]), dim=1)
    assert torch.equal(out, prefix[:, 1:].masked_fill(shifted, EOS))


# ---------------------------------------------------------------------------- Lightning task


def reversal_datamodule():
    from lightning import LightningDataModule
    from torch.utils.data import TensorDataset

    train = reversal_batch(512, torch.Generator().manual_seed(10))
    val = reversal_batch(128, torch.Generator().manual_seed(11))
    return LightningDataModule.from_datasets(
        train_dataset=TensorDataset(*train), val_dataset=TensorDataset(*val), batch_size=32
    )


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
@pytest.mark.slow
def test_seq2seq_task_lowers_the_loss(kind):
    from fmbook.tasks import Seq2Seq, evaluate, make_trainer

    torch.manual_seed(0)
    if kind == "transformer":
        model = Transformer(tiny())
    else:
        from fmbook.models import LSTMSeq2Seq

        model = LSTMSeq2Seq(V, V, emb_dim=16, hidden_size=32, pad_id=PAD)
    task = Seq2Seq(model, pad_id=PAD, lr=5e-3, warmup_steps=5, max_steps=50, weight_decay=0.0)
    dm = reversal_datamodule()
    before = evaluate(task, dm)
    make_trainer(max_steps=50, val_every=50).fit(task, dm)
    after = evaluate(task, dm)
    assert after < before - 0.5
    assert 0.0 <= evaluate(task, dm, metric="val_acc") <= 1.0


@pytest.mark.filterwarnings(r"ignore:You are trying to `self.log\(\)`")
def test_seq2seq_task_accepts_split_targets_and_checks_batches():
    from fmbook.tasks import Seq2Seq

    torch.manual_seed(0)
    task = Seq2Seq(Transformer(tiny()), pad_id=PAD)
    src, tgt = reversal_batch(4, torch.Generator().manual_seed(0))
    loss = task.training_step((src, tgt), 0)
    torch.testing.assert_close(task.training_step((src, tgt[:, :-1], tgt[:, 1:]), 0), loss)
    with pytest.raises(ValueError, match="batch"):
        task.training_step((src,), 0)
    with pytest.raises(ValueError, match="pad_id"):
        Seq2Seq(Transformer(tiny()), pad_id=-1)
    with pytest.raises(ValueError, match="model"):
        Seq2Seq("transformer")
