"""The tiny CLIP of chapter 7 (multimodal): the symmetric InfoNCE loss, zero-shot
prediction, recall@k, the two-tower model, the caption data and the task."""

import math

import pytest
import torch
import torch.nn.functional as F

from fmbook.data import digit_captions as dc
from fmbook.models.clip import AudioEmbedder, CharTextEncoder, TwoTower
from fmbook.models.spoken_digits import DigitCNN
from fmbook.nn.contrastive import info_nce, recall_at_k, similarity_logits, zero_shot_predict
from fmbook.tasks.contrastive import ContrastiveTask


def naive_info_nce(a, b, t):
    """The loss written out with loops and explicit softmax sums."""
    a = [x / x.norm() for x in a]
    b = [x / x.norm() for x in b]
    B, total = len(a), 0.0
    for i in range(B):
        s_ab = [float(a[i] @ b[j]) / t for j in range(B)]  # row i of a against every b
        s_ba = [float(b[i] @ a[j]) / t for j in range(B)]  # row i of b against every a
        total += -s_ab[i] + math.log(sum(math.exp(s) for s in s_ab))
        total += -s_ba[i] + math.log(sum(math.exp(s) for s in s_ba))
    return total / (2 * B)


def test_info_nce_matches_the_naive_computation():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    for t in (0.07, 0.5, 2.0):
        assert info_nce(a, b, t).item() == pytest.approx(naive_info_nce(a, b, t), rel=1e-5)
    # a tensor temperature, as the model passes it, gives the same loss and a gradient
    log_t = torch.tensor(math.log(0.5), requires_grad=True)
    loss = info_nce(a, b, log_t.exp())
    loss.backward()
    assert loss.item() == pytest.approx(naive_info_nce(a, b, 0.5), rel=1e-5)
    assert log_t.grad is not None and log_t.grad.abs() > 0


def test_info_nce_by_hand_for_two_pairs():
    # orthogonal unit pairs at temperature 1: similarities [[1, 0], [0, 1]] in both
    # directions, so each cross-entropy is log(e + 1) - 1
    a = torch.eye(2)
    assert info_nce(a, a.clone(), 1.0).item() == pytest.approx(math.log(math.e + 1) - 1)


def test_info_nce_is_symmetric_and_not_one_directional():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    assert info_nce(a, b, 0.3).item() == pytest.approx(info_nce(b, a, 0.3).item(), rel=1e-6)
    logits = similarity_logits(a, b, 0.3)
    one_way = F.cross_entropy(logits, torch.arange(5)).item()
    other_way = F.cross_entropy(logits.T, torch.arange(5)).item()
    assert one_way != pytest.approx(other_way)  # the two halves differ in general
    assert info_nce(a, b, 0.3).item() == pytest.approx((one_way + other_way) / 2, rel=1e-6)


def test_info_nce_is_smallest_for_aligned_pairs():
    aligned = torch.eye(8)  # orthonormal embeddings, each paired with itself
    best = info_nce(aligned, aligned, 0.1).item()
    g = torch.Generator().manual_seed(2)
    for _ in range(20):
        other = aligned + 0.3 * torch.randn(8, 8, generator=g)
        assert info_nce(aligned, other, 0.1).item() > best
    shuffled = aligned[torch.roll(torch.arange(8), 1)]
    assert info_nce(aligned, shuffled, 0.1).item() > best + 5
    # the aligned loss goes to 0 as the temperature goes to 0
    assert info_nce(aligned, aligned, 0.01).item() < 1e-6 < best


def test_info_nce_refuses_bad_input():
    a = torch.randn(4, 3)
    with pytest.raises(ValueError, match="same batch size"):
        info_nce(a, torch.randn(5, 3), 0.1)
    with pytest.raises(ValueError, match="same width"):
        info_nce(a, torch.randn(4, 2), 0.1)
    for bad in (0.0, -0.1, torch.tensor(-1.0), True):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            info_nce(a, a, bad)
    with pytest.raises(ValueError, match="float tensor"):
        info_nce(torch.ones(4, 3, dtype=torch.long), a, 0.1)


def test_zero_shot_predict_by_hand():
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # right, up, left
    items = torch.tensor([[3.0, 0.5], [0.1, 2.0], [-5.0, 1.0], [0.0, -1.0]])
    # cosine, not dot product: the length of an item does not matter
    assert zero_shot_predict(items, classes).tolist() == [0, 1, 2, 0]


def test_recall_at_k_by_hand():
    sim = torch.tensor(
        [
            [0.9, 0.1, 0.5],  # ranks: 0, 2, 1
            [0.2, 0.3, 0.8],  # ranks: 2, 1, 0
            [0.7, 0.6, 0.1],  # ranks: 0, 1, 2
        ]
    )
    gallery = torch.tensor([0, 1, 2])
    queries = torch.tensor([0, 1, 2])
    assert recall_at_k(sim, queries, gallery, 1) == pytest.approx(1 / 3)
    assert recall_at_k(sim, queries, gallery, 2) == pytest.approx(2 / 3)
    assert recall_at_k(sim, queries, gallery, 3) == 1.0
    # class-level relevance: any gallery item of the query's label counts
    assert recall_at_k(sim, torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0]), 1) == (
        pytest.approx(2 / 3)
    )
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(sim, queries, gallery, 4)
    with pytest.raises(ValueError, match="query_labels"):
        recall_at_k(sim, torch.tensor([0, 1]), gallery, 1)


def test_captions_and_character_ids():
    assert dc.prompts("en")[7] == "a recording of the digit seven"
    assert dc.prompts("fr")[7] == "l'enregistrement du chiffre sept"
    train = {c for d in range(10) for c in dc.all_captions(d)}
    assert not train & set(dc.prompts("en") + dc.prompts("fr"))  # prompts are unseen
    ids = dc.encode_texts(["zéro", "un"])
    assert ids.shape == (2, 4) and ids[1, 2:].tolist() == [0, 0] and ids.min() >= 0
    with pytest.raises(ValueError, match="outside the alphabet"):
        dc.encode_texts(["zero!@"])
    with pytest.raises(ValueError, match="language"):
        dc.prompts("de")


def test_distinct_digit_batches_never_repeat_a_digit():
    digits = torch.arange(10).repeat(7)[
        torch.randperm(70, generator=torch.Generator().manual_seed(0))
    ]
    sampler = dc.DistinctDigitBatches(digits, batch_size=10, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7
    assert all(sorted(digits[b].tolist()) == list(range(10)) for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(70))  # each once per epoch
    with pytest.raises(ValueError, match="batch_size"):
        dc.DistinctDigitBatches(digits, batch_size=11)


def test_training_batches_pair_each_recording_with_a_caption_of_its_digit():
    fake = torch.utils.data.TensorDataset(torch.randn(30, 40, 80), torch.arange(10).repeat(3))
    for augment in (False, True):
        data = dc.DigitCaptionsDataModule(languages=("fr",), augment=augment, seed=1)
        data.datasets, data._rng = [fake] * 3, torch.Generator().manual_seed(0)
        batches = list(data.train_dataloader())
        assert len(batches) == 3
        for x, ids, digits in batches:
            assert x.shape == (10, 40, 80) and sorted(digits.tolist()) == list(range(10))
            for row, text, d in zip(x, dc.decode_texts(ids), digits.tolist(), strict=True):
                assert text in dc.all_captions(d, ("fr",))
                same = (fake.tensors[0] == row).flatten(1).all(1)  # the recording's rows
                assert augment or fake.tensors[1][same].tolist() == [d]
    with pytest.raises(ValueError, match="language"):
        dc.DigitCaptionsDataModule(languages=("en", "de"))


def tiny_model():
    torch.manual_seed(0)
    audio = AudioEmbedder(DigitCNN(n_classes=16, channels=4, n_blocks=2))
    return TwoTower(audio, CharTextEncoder(len(dc.ALPHABET) + 1, 16, 8, 8))


def test_a_text_embedding_does_not_depend_on_the_padding_of_its_batch():
    text = tiny_model().text_encoder.eval()
    alone = text(dc.encode_texts(["sept"]))
    padded = text(dc.encode_texts(["sept", "a recording of the digit seven"]))[:1]
    assert torch.allclose(alone, padded, atol=1e-6)
    with pytest.raises(ValueError, match="at least one character"):
        text(torch.tensor([[0, 0], [3, 4]]))


@pytest.mark.filterwarnings("ignore:You are trying to .self.log")
def test_two_tower_shapes_temperature_and_a_training_step():
    model = tiny_model()
    x = torch.randn(3, 40, 80)
    ids = dc.encode_texts(["seven", "le chiffre un", "deux"])
    a, t, loss = model(x, ids)
    assert a.shape == t.shape == (3, 16)
    assert torch.allclose(a.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert model.temperature.item() == pytest.approx(0.07)
    assert loss.item() == pytest.approx(info_nce(a, t, model.temperature).item())
    loss.backward()
    assert model.log_temperature.grad is not None
    with pytest.raises(ValueError, match="temperature must be > 0"):
        TwoTower(model.audio_encoder, model.text_encoder, temperature=0)
    task = ContrastiveTask(
        model, prompt_ids=dc.encode_texts(dc.prompts("en")), warmup_steps=1, max_steps=10
    )
    assert task.training_step((x, ids, torch.tensor([7, 1, 2])), 0).item() > 0
    with pytest.raises(ValueError, match="must be \\(x, text_ids, labels\\)"):
        task.training_step((x, ids), 0)
