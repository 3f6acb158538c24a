import pytest
import torch

from fmbook.models.lstm_seq2seq import LSTMSeq2Seq, seq2seq_loss
from fmbook.nn.attention import padding_mask

PAD, BOS, EOS = 0, 1, 2
N_SYMBOLS = 8  # ids 3 .. 10


pytestmark = pytest.mark.usefixtures("one_thread")


def reversal_batch(batch_size, generator, min_len=2, max_len=5):
    """Right-padded sources of random symbols; targets are the reversed sources."""
    lengths = torch.randint(min_len, max_len + 1, (batch_size,), generator=generator)
    src = torch.full((batch_size, max_len), PAD)
    tgt_in = torch.full((batch_size, max_len + 1), PAD)
    tgt_out = torch.full((batch_size, max_len + 1), PAD)
    for b, n in enumerate(lengths.tolist()):
        seq = torch.randint(3, 3 + N_SYMBOLS, (n,), generator=generator)
        src[b, :n] = seq
        tgt_in[b, 0], tgt_in[b, 1 : n + 1] = BOS, seq.flip(0)
        tgt_out[b, :n], tgt_out[b, n] = seq.flip(0), EOS
    return src, tgt_in, tgt_out, lengths


def small_model(**kwargs):
    options = dict(emb_dim=16, hidden_size=32, pad_id=PAD)
    options.update(kwargs)
    return LSTMSeq2Seq(3 + N_SYMBOLS, 3 + N_SYMBOLS, **options)


def test_logits_shape_and_dependence_on_the_source():
    torch.manual_seed(0)
    model = small_model(num_layers=2)
    g = torch.Generator().manual_seed(0)
    src, tgt_in, _, _ = reversal_batch(4, g)
    logits = model(src, tgt_in)
    assert logits.shape == (4, tgt_in.shape[1], 3 + N_SYMBOLS)
    other = src.clone()
    other[:, 0] = torch.where(src[:, 0] == 3, 4, 3)  # change only the first source token
    assert not torch.allclose(model(other, tgt_in), logits, atol=1e-6)


def test_padding_does_not_change_the_encoding():
    torch.manual_seed(0)
    model = small_model()
    src = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, PAD, PAD]])
    tgt_in = torch.tensor([[BOS, 7, 6]])
    reference = model(src, tgt_in)
    assert torch.allclose(model(padded, tgt_in), reference, atol=1e-6)
    mask = padding_mask([3], max_len=5)  # True for real tokens, the fmbook.nn convention
    assert torch.allclose(model(padded, tgt_in, src_pad_mask=mask), reference, atol=1e-6)


def test_loss_ignores_padding_and_uses_integer_targets():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, 0], [3, 0, 0]])
    flat = logits.log_softmax(-1)
    expected = -(flat[0, 0, 1] + flat[0, 1, 2] + flat[1, 0, 3]) / 3
    assert seq2seq_loss(logits, targets, pad_id=0).item() == pytest.approx(
        expected.item(), rel=1e-6
    )
    with pytest.raises(ValueError, match="integer class ids"):
        seq2seq_loss(logits, torch.nn.functional.one_hot(targets, 5).float()[..., 0], pad_id=0)


@pytest.mark.slow
def test_learns_to_reverse_sequences_and_translates_greedily():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = small_model(hidden_size=64, emb_dim=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(400):
        src, tgt_in, tgt_out, _ = reversal_batch(64, g)
        loss = model.loss(src, tgt_in, tgt_out)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.1 * first
    src, _, tgt_out, lengths = reversal_batch(50, torch.Generator().manual_seed(123))
    out = model.translate(src, max_len=8, bos_id=BOS, eos_id=EOS)
    exact = [
        out[b, : n + 1].tolist() == tgt_out[b, : n + 1].tolist()
        for b, n in enumerate(lengths.tolist())
    ]
    assert sum(exact) >= 45, f"{sum(exact)}/50 reversed exactly"
    assert model.training  # translate restores the mode


def test_unconditioned_decoder_ignores_the_source():
    torch.manual_seed(0)
    model = small_model(condition_on_source=False)
    g = torch.Generator().manual_seed(0)
    src, tgt_in, tgt_out, _ = reversal_batch(4, g)
    other = torch.where(src == PAD, PAD, 3 + (src - 3 + 1) % N_SYMBOLS)  # every token changed
    assert torch.equal(model(src, tgt_in), model(other, tgt_in))
    out = model.translate(src, max_len=6, bos_id=BOS, eos_id=EOS)
    assert (out == out[:1]).all()  # the same sentence for every source
    model.loss(src, tgt_in, tgt_out).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.head.weight.grad is not None
    conditioned = small_model()
    conditioned.load_state_dict(model.state_dict())  # same parameters, bug fixed
    assert not torch.allclose(conditioned(src, tgt_in), conditioned(other, tgt_in))
    with pytest.raises(ValueError, match="condition_on_source"):
        small_model(condition_on_source=1)
