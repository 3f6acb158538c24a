import pytest
import torch

from fmbook.adapt import FeatureBank, character_frequencies, passages_of
from fmbook.data.plays import Passage, encode_passages, encoder_tokenizer
from fmbook.models.bert import BERTConfig, BERTForSequenceClassification

pytestmark = pytest.mark.usefixtures("one_thread")

TOKENIZER = encoder_tokenizer("abcdefgh \n")


def tiny_classifier(seed=0):
    torch.manual_seed(seed)
    cfg = BERTConfig(
        vocab_size=TOKENIZER.vocab_size, max_len=16, n_layer=2, n_head=2, d_model=16, n_segments=0
    )
    return BERTForSequenceClassification(cfg, 3, pooling="mean")


def passages(n=12):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        length = int(torch.randint(3, 15, (1,), generator=g))
        chars = torch.randint(0, 8, (length,), generator=g)
        out.append(Passage("".join("abcdefgh"[c] for c in chars), f"P{i % 3}", f"S{i % 2}", i))
    return out


class FakeDataModule:
    def __init__(self, train, test=()):
        self.passages = {
            "train": [(p, int(p.play[1])) for p in train],
            "test": [(p, int(p.play[1])) for p in test],
        }


def test_bank_features_are_the_classifiers_mean_pooling():
    ps = passages()
    model = tiny_classifier().train()
    bank = FeatureBank.encode(model, ps, TOKENIZER, max_len=16, batch_size=5)  # batches cut short
    assert model.training  # mode restored
    ids = encode_passages(ps, TOKENIZER, 16, cls=False)
    model.eval()
    with torch.no_grad():
        mask = ids != 0
        reference = model.pool(model.bert(ids, mask), mask)
    assert bank.features.shape == (len(ps), 16)
    torch.testing.assert_close(bank.features, reference, atol=1e-5, rtol=1e-5)
    one_by_one = FeatureBank.encode(model.bert, ps, TOKENIZER, max_len=16, batch_size=1)
    torch.testing.assert_close(one_by_one.features, bank.features, atol=1e-5, rtol=1e-5)


def test_bank_serves_rows_of_one_tensor_to_every_task():
    ps = passages()
    bank = FeatureBank.encode(tiny_classifier(), ps, TOKENIZER, max_len=16)
    first, second = FakeDataModule(ps[3:9][::-1]), FakeDataModule(ps[:2], test=ps[6:])
    assert passages_of(second, first) == ps[:2] + ps[3:]
    x, y = bank.split(first, "train")
    assert torch.equal(x, bank.features[[8, 7, 6, 5, 4, 3]])
    assert y.tolist() == [int(p.play[1]) for p in ps[8:2:-1]]
    assert torch.equal(bank.split(second, "test")[0][0], x[2])  # passage 6 in both tasks


def test_bad_input_is_refused():
    ps, model = passages(), tiny_classifier()
    bank = FeatureBank.encode(model, ps[:2], TOKENIZER, max_len=16)
    with pytest.raises(ValueError, match="split must be"):
        bank.split(FakeDataModule(ps[:2]), "val")
    with pytest.raises(ValueError, match="3 passages are not in the bank"):
        bank.split(FakeDataModule(ps[:5]), "train")
    with pytest.raises(ValueError, match="must not repeat"):
        FeatureBank.encode(model, ps[:2] * 2, TOKENIZER, max_len=16)
    with pytest.raises(ValueError, match="must not be empty"):
        FeatureBank.encode(model, [], TOKENIZER)
    with pytest.raises(ValueError, match="batch_size"):
        FeatureBank.encode(model, ps, TOKENIZER, batch_size=0)
    with pytest.raises(ValueError, match=r"shape \(2, C\)"):
        FeatureBank(ps[:2], torch.zeros(3, 4))
    with pytest.raises(ValueError, match="at least one datamodule"):
        passages_of()


def test_character_frequencies_are_shares_of_each_symbol():
    ps = [Passage("aab\n", "P0", "S0", 0), Passage("hhh", "P1", "S0", 9)]
    freq = character_frequencies(ps, TOKENIZER)
    assert freq.shape == (2, TOKENIZER.vocab_size)
    torch.testing.assert_close(freq.sum(1), torch.ones(2))
    assert freq[0, TOKENIZER.stoi["a"]] == 0.5 and freq[1, TOKENIZER.stoi["h"]] == 1.0
    bank = FeatureBank(ps, freq)
    assert torch.equal(bank.split(FakeDataModule(ps[::-1]), "train")[0], freq.flip(0))
    with pytest.raises(ValueError, match="passage 0 is empty"):
        character_frequencies([Passage("", "P0", "S0", 0)], TOKENIZER)
