import math

import pytest
import torch

from fmbook.models.bow import BagOfNgrams, BagOfNgramsClassifier

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["the cat sat", "the dog sat on the mat", "a cat, a dog!"]


def test_word_and_char_ngrams():
    words = BagOfNgrams("word", (1, 2))
    assert words.ngrams("The cat's HAT\nsat") == [
        "the", "cat's", "hat", "sat", "the cat's", "cat's hat", "hat sat"
    ]  # fmt: skip
    chars = BagOfNgrams("char", (2, 3))
    assert chars.ngrams("Ab\n c") == ["ab", "b ", " c", "ab ", "b c"]


def test_vocabulary_from_training_texts_with_min_df_and_max_features():
    bag = BagOfNgrams("word", min_df=2, tfidf=False).fit(TEXTS)
    assert set(bag.vocabulary) == {"the", "cat", "sat", "dog"}  # "a" occurs in one text only
    assert BagOfNgrams("word", max_features=2).fit(TEXTS).size == 2
    X = bag.transform(["dog dog zebra"]).to_dense()  # unknown words are ignored
    assert X[0, bag.vocabulary["dog"]] == 1.0 and X.sum() == 1.0  # raw counts, L2-normalised


def test_tfidf_rows_match_the_formula():
    bag = BagOfNgrams("word").fit(TEXTS)
    X = bag.transform(["the the cat"]).to_dense()[0]
    n = len(TEXTS)
    idf_the, idf_cat = math.log((1 + n) / (1 + 2)) + 1, math.log((1 + n) / (1 + 2)) + 1
    raw = torch.tensor([(1 + math.log(2)) * idf_the, 1 * idf_cat])
    expected = raw / raw.norm()
    got = torch.stack([X[bag.vocabulary["the"]], X[bag.vocabulary["cat"]]])
    torch.testing.assert_close(got, expected)
    assert torch.isclose(X.norm(), torch.tensor(1.0))


def test_classifier_learns_names_and_reports_its_evidence():
    texts = ["romeo speaks", "juliet answers", "romeo again", "juliet again"] * 3
    labels = [0, 1, 0, 1] * 3
    clf = BagOfNgramsClassifier(analyzer="word", l2=1e-3).fit(texts, labels)
    assert clf.accuracy(["oh romeo", "sweet juliet"], [0, 1]) == 1.0
    top = clf.top_features(1)
    assert top[0][0][0] == "romeo" and top[1][0][0] == "juliet"
    assert BagOfNgramsClassifier(n_classes=4).fit(texts, labels).model.weight.shape[1] == 4


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="analyzer"):
        BagOfNgrams("bytes")
    with pytest.raises(ValueError, match="ngram_range"):
        BagOfNgrams("word", (2, 1))
    with pytest.raises(ValueError, match="min_df"):
        BagOfNgrams(min_df=0)
    with pytest.raises(ValueError, match="not fitted"):
        BagOfNgrams().transform(["x"])
    with pytest.raises(ValueError, match="sequence of strings"):
        BagOfNgrams().fit("one string")
    with pytest.raises(ValueError, match="only strings"):
        BagOfNgrams().fit(["ok", 3])
    with pytest.raises(ValueError, match="min_df"):
        BagOfNgrams(min_df=5).fit(TEXTS)
    with pytest.raises(ValueError, match="one label per text"):
        BagOfNgramsClassifier().fit(TEXTS, [0, 1])
    with pytest.raises(ValueError, match="not fitted"):
        BagOfNgramsClassifier().predict(TEXTS)
    with pytest.raises(ValueError, match="shape of targets"):
        BagOfNgramsClassifier().fit(TEXTS, [0, 1, 0]).accuracy(TEXTS, [0, 1])


def test_predict_proba_rows_sum_to_one_and_agree_with_predict():
    texts = ["the cat sat", "a cat sat", "the dog ran", "a dog ran"]
    clf = BagOfNgramsClassifier(analyzer="word").fit(texts, [0, 0, 1, 1])
    proba = clf.predict_proba(["cat sat", "dog ran", "zebra"])
    assert proba.shape == (3, 2) and not proba.requires_grad
    torch.testing.assert_close(proba.sum(1), torch.ones(3))
    assert proba.argmax(1).tolist() == clf.predict(["cat sat", "dog ran", "zebra"]).tolist()
    assert proba[0, 0] > 0.5 > proba[1, 0]
    with pytest.raises(ValueError, match="not fitted"):
        BagOfNgramsClassifier().predict_proba(["x"])
