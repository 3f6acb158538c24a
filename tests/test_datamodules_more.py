"""TinyShakespeareBPEDataModule: the character module's split, BPE trained on train only."""

import pytest
import torch

from fmbook.data import registry as reg
from fmbook.data import shakespeare
from fmbook.data.datamodules import TinyShakespeareBPEDataModule

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bpe_module(data_mirror):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(reg.MIRROR_ENV, str(data_mirror))
        dm = TinyShakespeareBPEDataModule(vocab_size=300, block_size=16, batch_size=4)
        dm.setup()
        train, val = shakespeare.split(shakespeare.load_text())
    return dm, train, val


def test_split_and_round_trip(bpe_module):
    dm, train, val = bpe_module
    assert dm.tokenizer.vocab_size == 300
    assert dm.tokenizer.decode(dm.train_ids.tolist()) == train
    assert dm.tokenizer.decode(dm.val_ids.tolist()) == val
    assert len(dm.train_ids) < len(train)  # merges compress the text


def test_tokenizer_is_trained_on_the_training_part_only(bpe_module):
    dm, train, _ = bpe_module
    from fmbook.tokenizers import BPETokenizer

    again = BPETokenizer.train(train, 300, pattern="gpt2")
    assert again.to_dict() == dm.tokenizer.to_dict()


def test_windows(bpe_module):
    dm, _, _ = bpe_module
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    val = dm.val_dataloader().dataset
    assert len(val) == (len(dm.val_ids) - 1) // 16
    xv, yv = val[1]
    assert torch.equal(xv, dm.val_ids[16:32]) and torch.equal(yv, dm.val_ids[17:33])


def test_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        TinyShakespeareBPEDataModule(vocab_size=100)
    with pytest.raises(ValueError, match="block_size"):
        TinyShakespeareBPEDataModule(block_size=0)
