import math

import pytest
import torch

from fmbook.models.bert import (
    BERT,
    BERTConfig,
    BERTForMaskedLM,
    BERTForSequenceClassification,
    mask_tokens,
)

PAD, CLS, MASK = 0, 1, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kwargs) -> BERTConfig:
    options = dict(vocab_size=20, max_len=16, n_layer=2, n_head=2, d_model=16, dropout=0.0)
    return BERTConfig(**(options | kwargs))


def random_ids(B=3, T=10, seed=0, low=3, high=20) -> torch.Tensor:
    return torch.randint(low, high, (B, T), generator=torch.Generator().manual_seed(seed))


def test_shapes_and_tied_head():
    torch.manual_seed(0)
    cfg = tiny()
    ids = random_ids()
    assert BERT(cfg)(ids).shape == (3, 10, 16)
    mlm = BERTForMaskedLM(cfg)
    logits, loss = mlm(ids)
    assert logits.shape == (3, 10, 20) and loss is None
    assert mlm.transform[0].weight is not mlm.bert.tok_emb.weight
    assert sum(p is mlm.bert.tok_emb.weight for p in mlm.parameters()) == 1
    _, loss = mlm(ids, labels=ids)
    assert abs(loss.item() - math.log(20)) < 0.5  # near uniform at initialisation
    for pooling in ("cls", "mean"):
        clf = BERTForSequenceClassification(cfg, n_classes=4, pooling=pooling)
        logits, loss = clf(ids, labels=torch.tensor([0, 3, 1]))
        assert logits.shape == (3, 4) and loss.dim() == 0


def test_segment_embeddings_change_the_output():
    torch.manual_seed(0)
    model = BERT(tiny()).eval()
    ids = random_ids()
    seg = torch.zeros_like(ids)
    seg[:, 5:] = 1
    assert not torch.allclose(model(ids, segment_ids=seg), model(ids))
    with pytest.raises(ValueError, match="n_segments"):
        BERT(tiny(n_segments=0))(ids, segment_ids=seg)


def test_encoder_is_bidirectional():
    torch.manual_seed(0)
    model = BERT(tiny()).eval()
    ids = random_ids(B=1)
    changed = ids.clone()
    changed[0, -1] = 3 if ids[0, -1] != 3 else 4
    assert not torch.allclose(model(ids)[0, 0], model(changed)[0, 0])  # first sees the last


@pytest.mark.parametrize("head", ["encoder", "mean", "cls"])
def test_padding_does_not_change_real_positions(head):
    torch.manual_seed(0)
    cfg = tiny()
    model = {
        "encoder": BERT(cfg),
        "mean": BERTForSequenceClassification(cfg, 3, pooling="mean"),
        "cls": BERTForSequenceClassification(cfg, 3, pooling="cls"),
    }[head].eval()
    ids = random_ids(B=2, T=6)
    ids[:, 0] = CLS
    padded = torch.cat((ids, torch.full((2, 5), PAD)), dim=1)  # (2, 11)
    out = model(ids) if head == "encoder" else model(ids)[0]
    out_padded = model(padded) if head == "encoder" else model(padded)[0]
    if head == "encoder":
        out_padded = out_padded[:, :6]
        # and the padding really is masked: without it the outputs move
        unmasked = model(padded, pad_mask=torch.ones_like(padded, dtype=torch.bool))
        assert not torch.allclose(unmasked[:, :6], out, atol=1e-4)
    torch.testing.assert_close(out_padded, out, atol=1e-5, rtol=1e-5)


def test_padding_mask_per_row():
    torch.manual_seed(0)
    model = BERT(tiny()).eval()
    a, b = random_ids(B=1, T=7, seed=1), random_ids(B=1, T=4, seed=2)
    batch = torch.full((2, 7), PAD)
    batch[0], batch[1, :4] = a[0], b[0]
    out = model(batch)
    torch.testing.assert_close(out[0], model(a)[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1, :4], model(b)[0], atol=1e-5, rtol=1e-5)


def test_masked_lm_loss_counts_labelled_positions_only():
    torch.manual_seed(0)
    mlm = BERTForMaskedLM(tiny()).eval()
    ids = random_ids()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[2, 7] = 5, 9
    logits, loss = mlm(ids, labels=labels)
    logp = logits.log_softmax(-1)
    expected = -(logp[0, 2, 5] + logp[2, 7, 9]) / 2
    torch.testing.assert_close(loss, expected)


def test_mask_tokens_follows_the_80_10_10_rule():
    V, specials = 50, (PAD, CLS)
    ids = random_ids(B=400, T=250, seed=3, low=3, high=V)  # 100k ordinary tokens
    ids[:, 0], ids[:, -20:] = CLS, PAD
    g = torch.Generator().manual_seed(0)
    inputs, labels = mask_tokens(ids, mask_id=MASK, vocab_size=V, special_ids=specials, generator=g)
    assert inputs.shape == labels.shape == ids.shape
    selected = labels != -100
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected])  # unselected tokens untouched
    assert not selected[:, 0].any() and not selected[:, -20:].any()  # specials never selected

    def close(fraction, expected, n):  # within 4 standard deviations of a binomial mean
        return abs(fraction - expected) < 4 * math.sqrt(expected * (1 - expected) / n)

    n_ordinary = (ids > MASK).sum().item()
    n_sel = int(selected.sum())
    assert close(n_sel / n_ordinary, 0.15, n_ordinary)
    masked = inputs[selected] == MASK
    changed = (inputs[selected] != ids[selected]) & ~masked
    kept = inputs[selected] == ids[selected]
    n_pool = V - 3  # random replacements come from the 47 non-special ids
    assert close(masked.float().mean().item(), 0.8, n_sel)
    assert close(changed.float().mean().item(), 0.1 * (1 - 1 / n_pool), n_sel)
    assert close(kept.float().mean().item(), 0.1 + 0.1 / n_pool, n_sel)
    assert inputs[selected][changed].min() > MASK  # random tokens are never special


def test_mask_tokens_is_reproducible():
    ids = random_ids(B=4, T=30)
    runs = [
        mask_tokens(ids, mask_id=MASK, vocab_size=20, generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


# ---------------------------------------------------------------------------- Lightning tasks


def repeated(n: int, T: int = 12, seed: int = 0) -> torch.Tensor:
    """[CLS] then one ordinary id (3..19) repeated T - 1 times: a masked token can be read off
    any unmasked neighbour."""
    token = torch.randint(3, 20, (n, 1), generator=torch.Generator().manual_seed(seed))
    return torch.cat((torch.full((n, 1), CLS), token.expand(n, T - 1)), dim=1)


def datamodule(train, val, batch_size=32):
    from lightning import LightningDataModule
    from torch.utils.data import TensorDataset

    return LightningDataModule.from_datasets(
        train_dataset=TensorDataset(*train), val_dataset=TensorDataset(*val), batch_size=batch_size
    )


def test_masked_lm_task_lowers_the_masked_token_loss():
    from fmbook.tasks import History, MaskedLM, evaluate, make_trainer

    torch.manual_seed(0)
    task = MaskedLM(
        BERTForMaskedLM(tiny(d_model=32)),
        mask_id=MASK,
        vocab_size=20,
        special_ids=(PAD, CLS),
        lr=3e-3,
        warmup_steps=5,
        max_steps=60,
    )
    dm = datamodule((repeated(512),), (repeated(128, seed=1),))
    before = evaluate(task, dm)
    assert abs(before - math.log(20)) < 0.5
    assert evaluate(task, dm) == pytest.approx(before)  # fixed validation masks
    history = History(every=5)
    make_trainer(max_steps=60, val_every=16, callbacks=[history]).fit(task, dm)
    after = evaluate(task, dm)
    assert after < before - 1.0
    assert evaluate(task, dm, metric="val_acc") > 0.3  # chance is 1/17
    assert history.val().loss.is_monotonic_decreasing


def test_masked_lm_task_rejects_bad_masking_arguments():
    from fmbook.tasks import MaskedLM

    with pytest.raises(ValueError, match="mask_id"):
        MaskedLM(BERTForMaskedLM(tiny()), mask_id=20, vocab_size=20)
    with pytest.raises(ValueError, match="lr"):
        MaskedLM(BERTForMaskedLM(tiny()), mask_id=MASK, vocab_size=20, lr=0.0)


def test_sequence_classification_task_learns():
    from fmbook.tasks import SequenceClassification, evaluate, make_trainer

    torch.manual_seed(0)

    def data(n, seed):  # label: does token 3 occur?
        ids = random_ids(B=n, T=8, seed=seed, low=3, high=12)
        ids[:, 0] = CLS
        return ids, (ids == 3).any(dim=1).long()

    model = BERTForSequenceClassification(tiny(d_model=32), n_classes=2, pooling="mean")
    task = SequenceClassification(model, lr=3e-3, warmup_steps=5, max_steps=60)
    dm = datamodule(data(512, 0), data(256, 1))
    before = evaluate(task, dm)
    make_trainer(max_steps=60, val_every=60).fit(task, dm)
    assert evaluate(task, dm) < before - 0.3
    assert evaluate(task, dm, metric="val_acc") > 0.85


@pytest.mark.parametrize(
    "n_layer, d, n_head, reference",
    # reference: Hugging Face BertModel (with its pooler) for bert-base/large-uncased
    [(12, 768, 12, 109_482_240), (24, 1024, 16, 335_141_888)],
)
def test_bert_base_and_large_sizes_on_the_meta_device(n_layer, d, n_head, reference):
    """The masked-lm chapter's parameter count: BERT-base ~110M, BERT-large ~340M
    (Devlin et al., 2019), built on the meta device so that nothing is allocated."""
    cfg = BERTConfig(vocab_size=30_522, max_len=512, n_layer=n_layer, n_head=n_head, d_model=d)
    with torch.device("meta"):
        encoder = BERT(cfg)
    counted = sum(p.numel() for p in encoder.parameters())
    block = 12 * d**2 + 13 * d  # attention 4d^2 + 4d, FFN 8d^2 + 5d, two LayerNorms 4d
    assert counted == n_layer * block + (30_522 + 512 + 2) * d + 2 * d
    # the book's encoder has no pooler (the classifier adds one); with it, BERT's count
    assert counted + d * d + d == reference
