import pytest
import torch
from torch.utils.data import DataLoader

from fmbook.data.plays import CLS, PAD, encoder_tokenizer
from fmbook.data.qa import (
    OpenBookWindows,
    QAExample,
    encode_example,
    encode_examples,
    first_words,
    heading_spans,
    nearest_speaker_before,
    question_text,
    quoted,
)
from fmbook.metrics import squad_scores
from fmbook.models.bert import BERTConfig, BERTForQuestionAnswering, best_span
from fmbook.retrieval import BM25Retriever, DenseRetriever, recall_at_k
from fmbook.tasks import SpanQA, answer_mask, make_trainer, predict_spans
from fmbook.utils import seed_everything

CONTEXT = "ROMEO:\nAy me! sad hours seem long.\nBENVOLIO:\nWhat sadness lengthens"


def test_example_whose_answer_is_not_in_the_context_is_refused():
    with pytest.raises(ValueError, match="does not occur in the context"):
        QAExample(CONTEXT, "Who said 'sad hours'?", "JULIET", 0)


def test_example_whose_answer_start_is_wrong_is_refused():
    with pytest.raises(ValueError, match="answer_start=3 points at"):
        QAExample(CONTEXT, "Who said 'sad hours'?", "ROMEO", 3)
    with pytest.raises(ValueError, match="non-empty"):
        QAExample(CONTEXT, "Who said 'sad hours'?", "", 0)


def test_a_good_example_and_the_string_matching_heuristic():
    said = QAExample(CONTEXT, question_text("said", "sad hours"), "ROMEO", 0)
    start = CONTEXT.index("BENVOLIO")
    answered = QAExample(CONTEXT, question_text("answered", "sad hours"), "BENVOLIO", start)
    assert answered.answer_end == start + len("BENVOLIO")
    assert quoted(said.question) == "sad hours"
    assert heading_spans(CONTEXT) == [(0, "ROMEO"), (start, "BENVOLIO")]
    # the heuristic finds the fragment and answers the speaker before it: right for
    # "said", wrong for "answered"
    assert nearest_speaker_before(said) == "ROMEO"
    assert nearest_speaker_before(answered) == "ROMEO"
    assert first_words("What sadness lengthens Romeo's hours?", 15) == "What sadness"


def test_encoding_puts_the_answer_at_its_tokens():
    tok = encoder_tokenizer(CONTEXT + question_text("said", "sad hours"))
    ex = QAExample(CONTEXT, question_text("said", "sad hours"), "ROMEO", 0)
    ids, s, e, c = encode_example(ex, tok, 96)
    assert ids[0] == tok.stoi[CLS] and ids[-1] == tok.stoi[PAD]
    assert tok.decode(ids[c : c + 5].tolist()) == "ROMEO"
    assert tok.decode(ids[s : e + 1].tolist()) == "ROMEO"
    with pytest.raises(ValueError, match="more than max_len"):
        encode_example(ex, tok, 40)


def test_best_span_respects_order_and_maximum_length():
    start = torch.tensor([[0.0, 5.0, 0.0, 0.0, 9.0], [-5.0, -5.0, 3.0, 0.0, 0.0]])
    end = torch.tensor([[0.0, 0.0, 1.0, 8.0, 0.0], [0.0, 7.0, 0.0, 0.0, 1.0]])
    s, e = best_span(start, end, max_answer_len=3)
    # row 0: (4, 4) scores 9 + 0 = 9 < (1, 3) = 13; row 1: the separate argmaxes (2, 1)
    # would end before they start; the best legal span is (2, 4) = 3 + 1
    assert s.tolist() == [1, 2] and e.tolist() == [3, 4]
    assert (e >= s).all() and (e - s < 3).all()
    s, e = best_span(start, end, max_answer_len=1)
    assert (s == e).all()
    with pytest.raises(ValueError, match="max_answer_len"):
        best_span(start, end, max_answer_len=0)


def test_squad_wrapper_matches_a_hand_computed_f1():
    # "the First Citizen" -> "first citizen" (article dropped): exact match;
    # "a b c" vs "b c d": prediction "b c", P = 2/2, R = 2/3, F1 = 0.8;
    # two references: the best one counts
    scores = squad_scores(
        ["the First Citizen", "a b c", "ROMEO"], ["First Citizen", "b c d", ["JULIET", "ROMEO"]]
    )
    assert scores["em"] == pytest.approx(200 / 3, abs=1e-4)
    assert scores["f1"] == pytest.approx((100 + 80 + 100) / 3, abs=1e-4)
    with pytest.raises(ValueError, match="as many predictions"):
        squad_scores(["a"], [])


def test_recall_at_k_on_a_hand_case():
    ranks = [[2, 0, 1], [1, 2, 0], [0, 1, 2]]
    relevant = [[0], [1], [2, 3]]
    assert recall_at_k(ranks, relevant, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranks, relevant, 2) == pytest.approx(2 / 3)
    assert recall_at_k(ranks, relevant, 3) == 1.0
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(ranks, relevant, 4)


DOCS = [
    "Speak, speak.",
    "You are all resolved rather to die than to famish?",
    "Resolved. resolved.",
    "First, you know Caius Marcius is chief enemy to the people.",
]


def test_bm25_ranks_the_exact_match_first():
    bm25 = BM25Retriever(DOCS)
    ranks = bm25.search(["you know Caius Marcius", "rather to die", "unknown words"], k=3)
    assert ranks.shape == (3, 3)
    assert ranks[0, 0] == 3 and ranks[1, 0] == 1


def test_dense_retriever_finds_a_document_given_itself():
    tok = encoder_tokenizer("".join(DOCS))
    torch.manual_seed(0)
    encoder = BERTForQuestionAnswering(BERTConfig(tok.vocab_size, 64, 1, 2, 16, 0.0, 0)).bert
    dense = DenseRetriever(encoder, tok, DOCS, max_len=64)
    assert torch.allclose(dense.doc_vectors.norm(dim=-1), torch.ones(len(DOCS)))
    assert dense.search(DOCS, k=1)[:, 0].tolist() == [0, 1, 2, 3]


def test_open_book_windows_hold_the_text_that_follows():
    ids = torch.arange(1000) % 97 + 3  # distinct ids within any window of 97
    sep = [1, 2]
    data = OpenBookWindows(ids, 64, sep, doc_len=20, max_back=5, p_open=1.0)
    for i in range(0, len(data), 97):
        x, y = data[i]
        assert x.shape == y.shape == (64,) and torch.equal(x[1:], y[:-1])
        doc, rest = x[:20], x[22:]
        assert x[20:22].tolist() == sep
        k = int((doc == rest[0]).nonzero()[0])  # where the text after the passage begins
        assert torch.equal(doc[k:], rest[: 20 - k])  # the passage holds what follows
    plain = OpenBookWindows(ids, 64, sep, doc_len=20, max_back=5, p_open=0.0, p_random=0.0)
    x, y = plain[0]
    assert torch.equal(x, ids[25:89]) and torch.equal(y, ids[26:90])


@pytest.mark.slow
def test_a_tiny_run_learns_a_trivial_span_task():
    # the answer is the span "xy" in random letters: learnable from token identity
    seed_everything(0)
    tok = encoder_tokenizer("abcdxy?\n")
    examples = []
    rng = torch.Generator().manual_seed(0)
    for _ in range(256):
        letters = torch.randint(0, 4, (20,), generator=rng)
        context = "".join("abcd"[i] for i in letters)
        at = int(torch.randint(0, 18, (1,), generator=rng))
        context = context[:at] + "xy" + context[at + 2 :]
        examples.append(QAExample(context, "?", "xy", at))
    data = encode_examples(examples, tok, 24)
    cfg = BERTConfig(tok.vocab_size, 24, n_layer=1, n_head=2, d_model=32, n_segments=0)
    model = BERTForQuestionAnswering(cfg)
    task = SpanQA(model, lr=1e-2, warmup_steps=5, max_steps=60)
    loader = DataLoader(data, batch_size=32, shuffle=True)
    make_trainer(max_steps=60, val_every=60, limit_val_batches=0).fit(task, loader)
    s, e = predict_spans(model, DataLoader(data, batch_size=256))
    _, starts, ends, context_starts = data.tensors
    exact = ((s == starts) & (e == ends)).float().mean().item()
    assert exact > 0.8  # chance: about 1 in (20 * 20 / 2) spans
    allowed = answer_mask(data.tensors[0], context_starts, 0)
    assert allowed[:, : int(context_starts[0])].sum() == 0
