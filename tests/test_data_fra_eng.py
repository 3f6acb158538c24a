"""fra-eng: the registry record without URL, normalisation, the fixed split, the DataModule."""

import pytest
import torch

from fmbook import data
from fmbook.data import fra_eng
from fmbook.data import registry as reg

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def mirror_env(data_mirror, monkeypatch):
    monkeypatch.setenv(reg.MIRROR_ENV, str(data_mirror))
    return data_mirror


def test_record_has_provenance_and_the_books_copy():
    record = data.REGISTRY["fra-eng"]
    assert record.path == "fra-eng/fra.txt" and record.size == 3_996_875
    # no upstream URL serves the derived file: the book's release asset is its one source
    assert record.urls == () and record.asset == "data-v1/fra-eng.txt"
    assert "manythings.org/anki/fra-eng.zip" in record.manual  # how it was derived
    assert "CC-BY 2.0" in record.license and "tatoeba" in record.license.lower()


def test_fetch_without_a_source_explains_how_to_get_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(reg.MIRROR_ENV, raising=False)
    monkeypatch.setenv(reg.RELEASE_URL_ENV, "http://127.0.0.1:9/releases")  # closed port
    with pytest.raises(data.DownloadError) as info:
        data.fetch("fra-eng", cache=tmp_path, retries=0)
    message = str(info.value)
    assert "http://127.0.0.1:9/releases/data-v1/fra-eng.txt" in message
    assert reg.MIRROR_ENV in message and str(tmp_path / "fra-eng" / "fra.txt") in message
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written


def test_mirror_file_is_verified(mirror_env, tmp_path):
    assert data.fetch("fra-eng", cache=tmp_path) == mirror_env / "fra-eng" / "fra.txt"


def test_record_without_url_needs_a_manual_note():
    with pytest.raises(ValueError, match="URL"):
        reg.Dataset("x", (), "0" * 64, "x/y", 1, "l", "c", "k", "d")
    assert reg.Dataset("x", (), "0" * 64, "x/y", 1, "l", "c", "k", "d", manual="by hand").urls == ()


def test_normalize():
    assert fra_eng.normalize("Ça alors\u202f!") == "ça alors !"
    assert fra_eng.normalize("I Don\u2019t know, Tom.") == "i don't know , tom ."
    assert fra_eng.normalize("Cafe\u0301") == "café"  # NFKC composes the accent


def _no_source_leaks(train, val, test):
    seen = {source for source, _ in train}
    return not seen & {source for source, _ in val + test}


def test_split_groups_pairs_by_source_on_a_synthetic_table():
    # 300 sources with 1 to 4 translations each; the split is by source, fixed and seeded
    pairs = [(f"source {i}", f"cible {i} {k}") for i in range(300) for k in range(1 + i % 4)]
    train, val, test = fra_eng.split_pairs(pairs)
    assert sorted(train + val + test) == sorted(pairs)
    assert _no_source_leaks(train, val, test)
    assert not {s for s, _ in val} & {s for s, _ in test}
    for part in (train, val, test):  # every translation of a source is in its part
        sources = {s for s, _ in part}
        assert sum(1 + int(s.split()[1]) % 4 for s in sources) == len(part)
    # deterministic, independent of the order of the lines and of the other lines
    assert fra_eng.split_pairs(pairs) == (train, val, test)
    shuffled = fra_eng.split_pairs(pairs[::-1])
    assert [sorted(p) for p in shuffled] == [sorted(p) for p in (train, val, test)]
    head = fra_eng.split_pairs(pairs[:100])
    assert head == tuple([p for p in part if p in pairs[:100]] for part in (train, val, test))
    # about 80/10/10 of the sources (a hash, so not exactly)
    counts = fra_eng.split_assignment([f"s{i}" for i in range(10_000)]).bincount()
    assert (abs(counts / 10_000 - torch.tensor([0.8, 0.1, 0.1])) < 0.015).all()
    assert fra_eng.source_part("go .") == fra_eng.source_part("go .")
    with pytest.raises(ValueError, match="fractions"):
        fra_eng.split_assignment(["a"], (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="sentence"):
        fra_eng.source_part(3)


def test_split_has_no_source_leak_on_the_real_file(mirror_env):
    pairs = [fra_eng.normalize_pair(p) for p in fra_eng.load_pairs()]
    n_sources = len({s for s, _ in pairs})
    assert n_sources < 0.7 * len(pairs)  # many sources have several translations
    for direction_pairs in (pairs, [(f, e) for e, f in pairs]):
        train, val, test = fra_eng.split_pairs(direction_pairs)
        assert _no_source_leaks(train, val, test)
        assert len(train) + len(val) + len(test) == len(pairs)
        for part, fraction in ((val, 0.1), (test, 0.1)):
            assert abs(len(part) / len(pairs) - fraction) < 0.01
    # a split by pair (a permutation of the lines) would leak about half the test sources
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0)).tolist()
    by_pair_train = {pairs[i][0] for i in order[: int(0.8 * len(pairs))]}
    by_pair_test = [pairs[i][0] for i in order[int(0.9 * len(pairs)) :]]
    assert sum(s in by_pair_train for s in by_pair_test) / len(by_pair_test) > 0.4


def test_load_pairs(mirror_env):
    pairs = fra_eng.load_pairs(max_pairs=3)
    assert pairs == [("Go.", "Va !"), ("Run!", "Cours\u202f!"), ("Run!", "Courez\u202f!")]
    assert [fra_eng.normalize(f) for _, f in pairs] == ["va !", "cours !", "courez !"]
    with pytest.raises(ValueError, match="max_pairs"):
        fra_eng.load_pairs(max_pairs=0)


def test_datamodule_batches(mirror_env):
    dm = fra_eng.FraEngDataModule(batch_size=16, max_len=4, min_freq=1, max_pairs=3000)
    dm.setup()
    sizes = [len(p) for p in (dm.train_pairs, dm.val_pairs, dm.test_pairs)]
    assert sizes[0] > 5 * sizes[1] > 0 and sizes[2] > 0
    assert _no_source_leaks(dm.train_pairs, dm.val_pairs, dm.test_pairs)
    refs = dm.references("test")
    assert sum(len(r) for r in refs.values()) == len(dm.test_pairs)
    assert max(len(r) for r in refs.values()) > 1  # some sources have several references
    for source, targets in refs.items():
        assert targets == [t for s, t in dm.test_pairs if s == source]
    with pytest.raises(ValueError, match="part"):
        dm.references("dev")
    src, tgt = next(iter(dm.train_dataloader()))
    assert src.dtype == tgt.dtype == torch.long and src.shape[0] == tgt.shape[0] == 16
    assert (tgt[:, 0] == dm.bos_id).all()
    pad = dm.pad_id
    assert dm.src_tokenizer.stoi["<pad>"] == dm.tgt_tokenizer.stoi["<pad>"] == pad
    for row, first_special in ((src, None), (tgt, dm.bos_id)):
        for seq in row.tolist():
            real = [i for i in seq if i != pad]
            assert seq == real + [pad] * (len(seq) - len(real))  # right-padded
            assert real[-1] == dm.eos_id and real.count(dm.eos_id) == 1
            assert len(real) <= 4 + (2 if first_special else 1)
    text = dm.tgt_tokenizer.decode(tgt[0].tolist(), skip_specials=True)
    assert text and "<" not in text


def test_direction_and_bad_arguments(mirror_env):
    dm = fra_eng.FraEngDataModule(max_len=3, max_pairs=200, direction="fra-eng", min_freq=1)
    dm.setup()
    assert "va !" in {s for s, _ in dm.train_pairs + dm.val_pairs + dm.test_pairs}
    with pytest.raises(ValueError, match="direction"):
        fra_eng.FraEngDataModule(direction="en-fr")
    with pytest.raises(ValueError, match="max_len"):
        fra_eng.FraEngDataModule(max_len=0)


def test_sentences_to_ids_and_back_match_the_training_batches(mirror_env):
    dm = fra_eng.FraEngDataModule(batch_size=8, max_len=4, min_freq=1, max_pairs=3000)
    with pytest.raises(ValueError, match="setup"):
        dm.encode_sources(["Go."])
    with pytest.raises(ValueError, match="setup"):
        dm.references()
    dm.setup()
    pairs = dm.train_pairs[:8]
    expected_src, expected_tgt = fra_eng.pad_collate(dm.datasets[0].items[:8], dm.pad_id)
    # the raw English (normalised again here) encodes exactly as the training batches do
    assert torch.equal(dm.encode_sources([s for s, _ in pairs]), expected_src)
    # teacher-forcing inputs are the targets without their final <eos>
    tgt_in = dm.decoder_inputs([t for _, t in pairs])
    unpadded = [row[row != dm.pad_id][:-1] for row in expected_tgt]
    for row, want in zip(tgt_in, unpadded, strict=True):
        assert torch.equal(row[: len(want)], want) and (row[len(want) :] == dm.pad_id).all()
    # target ids -> words stops at <eos>; unknown words become <unk>
    assert [dm.target_words(row[1:]) for row in expected_tgt] == [t for _, t in pairs]
    unk = dm.decoder_inputs(["zzzunseen"])[0, 1].item()
    assert unk == dm.tgt_tokenizer.unk_id
    with pytest.raises(ValueError, match="list of sentences"):
        dm.encode_sources("Go.")
