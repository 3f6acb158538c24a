"""The translation chapter's library pieces: label smoothing in Seq2Seq, the plain
torch.nn.Transformer baseline, the shared BPE vocabulary and checkpoint averaging."""

import pytest
import torch
import torch.nn.functional as F

from fmbook.data import fra_eng
from fmbook.data import registry as reg
from fmbook.models.baseline_mt import BaselineMT, BaselineMTConfig
from fmbook.models.transformer import Seq2SeqConfig, Transformer
from fmbook.tasks import Seq2Seq
from fmbook.tasks.averaging import Snapshots, average_state_dicts

pytestmark = pytest.mark.usefixtures("one_thread")

PAD, BOS, EOS = 1, 2, 3
V = 13


def batch(B=4, S=6, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V, (B, S), generator=g)
    src[0, 4:] = PAD  # one padded source
    tgt = torch.randint(4, V, (B, T), generator=g)
    tgt[:, 0] = BOS
    tgt[1, 5:] = PAD
    return src, tgt


def tiny_baseline(**kw):
    options = dict(
        src_vocab_size=V,
        tgt_vocab_size=V,
        d_model=16,
        n_head=2,
        n_encoder_layers=1,
        n_decoder_layers=1,
        dim_feedforward=32,
        dropout=0.0,
        max_len=16,
        pad_id=PAD,
    )
    return BaselineMT(BaselineMTConfig(**(options | kw)))


# -- label smoothing --------------------------------------------------------------------


@pytest.mark.filterwarnings(r"ignore:You are trying to `self.log\(\)`")
def test_label_smoothing_is_the_mixture_target_and_only_in_training():
    torch.manual_seed(0)
    model = Transformer(Seq2SeqConfig(V, V, 16, 1, 1, 2, 16, dropout=0.0, pad_id=PAD))
    src, tgt = batch()
    eps = 0.1
    task = Seq2Seq(model, pad_id=PAD, label_smoothing=eps)
    loss = task.training_step((src, tgt), 0)
    logits = model(src, tgt[:, :-1]).flatten(0, 1)  # (B*T, V)
    y = tgt[:, 1:].flatten()
    real = y != PAD
    logp = logits.log_softmax(-1)[real]
    by_hand = ((1 - eps) * -logp[torch.arange(len(logp)), y[real]] - eps * logp.mean(-1)).mean()
    torch.testing.assert_close(loss, by_hand)
    plain = Seq2Seq(model, pad_id=PAD).training_step((src, tgt), 0)
    torch.testing.assert_close(plain, -logp[torch.arange(len(logp)), y[real]].mean())
    val, _, _ = task._loss((src, tgt))  # validation: the plain cross-entropy
    torch.testing.assert_close(val, plain)


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.1"])
def test_label_smoothing_rejects_bad_values(bad):
    model = Transformer(Seq2SeqConfig(V, V, 16, 1, 1, 2, 16))
    with pytest.raises(ValueError, match="label_smoothing"):
        Seq2Seq(model, pad_id=PAD, label_smoothing=bad)


# -- the torch.nn.Transformer baseline ---------------------------------------------------


def test_baseline_shapes_causality_and_padding():
    torch.manual_seed(0)
    model = tiny_baseline().eval()
    src, tgt = batch()
    logits = model(src, tgt)
    assert logits.shape == (4, 7, V)
    later = tgt.clone()
    later[:, 4:] = 5  # change the future: earlier logits must not move
    torch.testing.assert_close(model(src, later)[:, :4], logits[:, :4])
    extra = F.pad(src, (0, 3), value=PAD)  # more padding changes nothing
    torch.testing.assert_close(model(extra, tgt), logits, atol=1e-5, rtol=1e-5)
    other = src.clone()
    other[:, 0] = 4 + (other[:, 0] - 3) % (V - 4)
    assert not torch.allclose(model(other, tgt), logits)  # the source matters


def test_baseline_greedy_translation_is_the_argmax_of_the_forward_pass():
    torch.manual_seed(0)
    model = tiny_baseline().eval()
    src, _ = batch()
    out = model.translate(src, max_len=6, bos_id=BOS, eos_id=EOS)
    assert out.shape[0] == 4 and out.shape[1] <= 6
    prefix = torch.full((4, 1), BOS)
    for _ in range(out.shape[1]):
        nxt = model(src, prefix)[:, -1].argmax(-1)
        prefix = torch.cat([prefix, nxt[:, None]], 1)
    done = torch.zeros(4, dtype=torch.bool)
    for t in range(out.shape[1]):  # equal up to (and including) each row's first EOS
        assert torch.equal(out[~done, t], prefix[~done, t + 1])
        done |= out[:, t] == EOS
    assert model.training is False


def test_baseline_rejects_bad_input():
    with pytest.raises(ValueError, match="n_head"):
        BaselineMTConfig(V, V, d_model=10, n_head=3)
    with pytest.raises(ValueError, match="pad_id"):
        BaselineMTConfig(V, V, pad_id=V)
    with pytest.raises(ValueError, match="BaselineMTConfig"):
        BaselineMT({"src_vocab_size": V})
    model = tiny_baseline()
    src, tgt = batch()
    with pytest.raises(ValueError, match="src"):
        model(src.float(), tgt)
    with pytest.raises(ValueError, match="vocab_size"):
        model(src, tgt + V)
    with pytest.raises(ValueError, match="batch size"):
        model(src[:2], tgt)
    with pytest.raises(ValueError, match="real token"):
        model(src, tgt, src_pad_mask=src == PAD)  # the mask the wrong way round
    with pytest.raises(ValueError, match="max_len"):
        model.translate(src, max_len=0, bos_id=BOS, eos_id=EOS)
    with pytest.raises(ValueError, match="eos_id"):
        model.translate(src, max_len=5, bos_id=BOS, eos_id=V)


# -- checkpoint averaging ---------------------------------------------------------------


def test_average_state_dicts():
    states = [
        {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)},
        {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)},
    ]
    mean = average_state_dicts(states)
    torch.testing.assert_close(mean["w"], torch.tensor([2.0, 4.0]))
    assert mean["n"].item() == 5  # integers: the last state's
    with pytest.raises(ValueError, match="non-empty"):
        average_state_dicts([])
    with pytest.raises(ValueError, match="keys"):
        average_state_dicts([states[0], {"w": torch.zeros(2)}])
    with pytest.raises(ValueError, match="shape"):
        average_state_dicts([states[0], {"w": torch.zeros(3), "n": torch.tensor(1)}])


def test_snapshots_keep_copies_at_the_right_steps():
    from lightning import LightningDataModule
    from torch.utils.data import TensorDataset

    from fmbook.tasks import make_trainer

    torch.manual_seed(0)
    src, tgt = batch(B=32, seed=1)
    dm = LightningDataModule.from_datasets(
        train_dataset=TensorDataset(src, tgt), val_dataset=TensorDataset(src, tgt), batch_size=4
    )
    task = Seq2Seq(tiny_baseline(), pad_id=PAD, lr=1e-2, warmup_steps=1, max_steps=10)
    keep = Snapshots(every=3, start=4)
    make_trainer(max_steps=10, val_every=100, callbacks=[keep]).fit(task, dm)
    assert keep.steps == [4, 7, 10]
    w = [s["out.weight"] for s in keep.states]
    assert not torch.equal(w[0], w[-1])  # copies, not views of the live weights
    torch.testing.assert_close(keep.averaged(last=2)["out.weight"], (w[1] + w[2]) / 2)
    torch.testing.assert_close(keep.states[-1]["out.weight"], task.model.out.weight.detach())
    with pytest.raises(ValueError, match="every"):
        Snapshots(every=0)
    with pytest.raises(ValueError, match="last"):
        keep.averaged(last=0)
    with pytest.raises(ValueError, match="no snapshot"):
        Snapshots(every=1).averaged()


# -- the shared BPE vocabulary ----------------------------------------------------------


def test_shared_bpe_round_trip_and_specials():
    sentences = ["le chat dort .", "the cat sleeps .", "le chien dort ."] * 20
    tok = fra_eng.SharedBPE.train(sentences, vocab_size=270)
    assert tok.vocab_size == 270
    ids = tok.encode("le chat dort .")
    assert min(ids) >= 4
    assert tok.decode([BOS, *ids, EOS, PAD]) == "le chat dort ."
    assert tok.decode(tok.encode("zébu inconnu !")) == "zébu inconnu !"  # no <unk>
    assert tok.pieces("le chat")[0].startswith(" ")
    # the first word is tokenised as in the middle of a sentence
    assert tok.encode("chat")[-1] == tok.encode("le chat")[-1]
    with pytest.raises(ValueError, match="vocab_size"):
        fra_eng.SharedBPE.train(sentences, vocab_size=259)
    with pytest.raises(ValueError, match="non-empty"):
        fra_eng.SharedBPE.train("le chat", vocab_size=270)
    with pytest.raises(ValueError, match="BPETokenizer"):
        fra_eng.SharedBPE(tok)


@pytest.fixture
def mirror_env(data_mirror, monkeypatch):
    monkeypatch.setenv(reg.MIRROR_ENV, str(data_mirror))
    return data_mirror


def test_bpe_datamodule_keeps_the_word_modules_pairs(mirror_env):
    options = dict(batch_size=8, max_len=5, max_pairs=2000)
    words = fra_eng.FraEngDataModule(min_freq=1, **options)
    bpe = fra_eng.FraEngBPEDataModule(vocab_size=400, **options)
    words.setup()
    bpe.setup()
    assert bpe.train_pairs == words.train_pairs and bpe.test_pairs == words.test_pairs
    assert bpe.src_tokenizer is bpe.tgt_tokenizer
    src, tgt = next(iter(bpe.train_dataloader()))
    assert (tgt[:, 0] == bpe.bos_id).all() and src.max() < 400
    english, french = bpe.test_pairs[0]
    assert bpe.target_words(bpe.decoder_inputs([french])[0, 1:]) == french
    assert bpe.encode_sources([english])[0, -1].item() == bpe.eos_id
    with pytest.raises(ValueError, match="min_freq"):
        fra_eng.FraEngBPEDataModule(min_freq=2)
    with pytest.raises(ValueError, match="vocab_size"):
        fra_eng.FraEngBPEDataModule(vocab_size=10)
