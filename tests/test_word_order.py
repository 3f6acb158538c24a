import random
import re

import pytest
import torch

from fmbook.data import load_shakespeare
from fmbook.data.plays import PlaysCorpus, encoder_tokenizer
from fmbook.data.word_order import (
    ORIGINAL,
    SHUFFLED,
    WORD,
    WordOrderTask,
    case_free_words,
    held_out_lines,
    pair_correct,
    pseudo_log_likelihood,
    same_bag,
    shuffle_words,
)
from fmbook.models.bert import BERTConfig, BERTForMaskedLM
from fmbook.models.bow import BagOfNgrams, BagOfNgramsClassifier

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(data_mirror):
    return PlaysCorpus(load_shakespeare(mirror=data_mirror))


@pytest.fixture(scope="module")
def task(corpus):
    return WordOrderTask(corpus, n_test=300, n_val=100)


def test_lines_come_only_from_the_held_out_text_and_were_never_pretrained_on(corpus):
    lines = held_out_lines(corpus)
    assert len(lines) > 3000
    assert len({p.text for p in lines}) == len(lines)
    for p in lines:
        assert corpus.cuts[p.play] <= p.start < corpus.spans[p.play][1]
        assert corpus.text[p.start : p.start + len(p.text)] == p.text
        assert p.text not in corpus.pretraining_text  # no line was seen in pretraining
        assert len(WORD.findall(p.text)) >= 5


def test_a_shuffle_moves_only_words_and_keeps_the_bag():
    case_free = frozenset({"the", "to", "be", "or", "not", "is", "that", "question", "say"})
    line = "To be, or not to be: that is the question, Romeo; I say."
    rng = random.Random(0)
    for _ in range(50):
        s = shuffle_words(line, rng, case_free)
        assert s != line and same_bag(s, line)
        assert WORD.sub("", s) == WORD.sub("", line)  # spaces and punctuation stay put
        assert "I" in WORD.findall(s) and "Romeo" in WORD.findall(s)  # never lower-cased
        assert s[0].isupper()  # the first slot keeps its capital
        # a case-free word that leaves the first slot loses its capital
        assert all(w[0].islower() for w in WORD.findall(s)[1:] if w.lower() in case_free)
    same = [shuffle_words(line, random.Random(3), case_free) for _ in range(2)]
    assert same[0] == same[1]  # seeded
    with pytest.raises(ValueError, match="differs"):
        shuffle_words("the the, the the the", rng, case_free)
    with pytest.raises(ValueError, match="two words"):
        shuffle_words("Ay!", rng, case_free)


def test_case_free_words_are_decided_inside_lines():
    text = "And I say the king\nThe king and I\nO Romeo, and the Lord\nthe lord and the lord"
    free = case_free_words(text)
    assert {"the", "king", "and", "lord"} <= free
    assert not {"i", "romeo"} & free


def test_splits_are_disjoint_pairs_and_draws_are_nested(task):
    sizes = {k: len(v) for k, v in task.pairs.items()}
    assert sizes["test"] == 300 and sizes["val"] == 100 and sizes["pool"] > 2500
    texts = {k: {p.text for pair in v for p in pair} for k, v in task.pairs.items()}
    assert not texts["test"] & (texts["val"] | texts["pool"]) and not texts["val"] & texts["pool"]
    for pairs in task.pairs.values():
        for o, s in pairs:
            assert o.start == s.start and o.text != s.text and same_bag(o.text, s.text)
    small, large = task.draw(8, seed=1), task.draw(32, seed=1)
    assert set(small.pairs["train"]) <= set(large.pairs["train"])
    assert set(task.draw(8, seed=2).pairs["train"]) != set(small.pairs["train"])
    rows = small.passages["train"]
    assert [k for _, k in rows] == [ORIGINAL, SHUFFLED] * 8
    assert all(rows[i][0].start == rows[i + 1][0].start for i in range(0, 16, 2))
    with pytest.raises(ValueError, match="per_class"):
        task.draw(0)


def test_a_bag_of_words_cannot_tell_a_line_from_its_shuffle(task):
    data = task.draw(64, seed=0)
    clf = BagOfNgramsClassifier(analyzer="word", l2=1e-3, n_classes=2)
    clf.fit(*data.texts_and_labels("train"))
    texts, labels = data.texts_and_labels("test")
    bag = BagOfNgrams(analyzer="word").fit(texts)
    features = bag.transform(texts).to_dense()
    torch.testing.assert_close(features[0::2], features[1::2])  # the same bag, pair by pair
    scores = clf.model.predict_proba(clf.features.transform(texts))[:, ORIGINAL]
    correct, ties = pair_correct(scores)
    assert ties == len(correct) == 300
    assert clf.accuracy(texts, labels) == pytest.approx(0.5)  # one of each pair is right


def test_pair_correct_compares_each_original_with_its_shuffle():
    correct, ties = pair_correct(torch.tensor([2.0, 1.0, 0.0, 3.0, 1.0, 1.0]))
    assert correct[:2].tolist() == [1.0, 0.0] and ties == 1
    coins = torch.cat([pair_correct(torch.zeros(2000), seed=s)[0] for s in range(3)])
    assert 0.47 < coins.mean().item() < 0.53
    with pytest.raises(ValueError, match="per pair"):
        pair_correct(torch.zeros(3))


def test_pseudo_log_likelihood_masks_one_character_at_a_time():
    tok = encoder_tokenizer("abcde fgh")
    torch.manual_seed(0)
    model = BERTForMaskedLM(
        BERTConfig(tok.vocab_size, max_len=16, n_layer=1, n_head=2, d_model=16, n_segments=0)
    ).train()
    texts = ["abc de", "fgh a", "hh"]
    got = pseudo_log_likelihood(model, texts, tok, mask_id=1, batch_size=4)
    assert model.training  # mode restored
    model.eval()
    for text, value in zip(texts, got, strict=True):
        ids = torch.tensor(tok.encode(text))
        total = 0.0
        for t in range(len(ids)):
            masked = ids.clone()
            masked[t] = 1
            logits = model(masked[None])[0][0, t]
            total += logits.double().log_softmax(-1)[ids[t]].item()
        assert value.item() == pytest.approx(total, abs=1e-6)
    again = pseudo_log_likelihood(model, texts, tok, mask_id=1, batch_size=1000)
    torch.testing.assert_close(got, again)
    with pytest.raises(ValueError, match="non-empty"):
        pseudo_log_likelihood(model, [], tok, mask_id=1)


def test_word_regex_matches_the_bag_of_words():
    text = "O'er the hills, o' my word! 'Tis well-beloved: speak'st thou?"
    assert [w.lower() for w in WORD.findall(text)] == BagOfNgrams().ngrams(text)
    assert re.fullmatch(WORD, "speak'st")
