"""Extractive question answering (SQuAD-style) made from the plays: *who said this line?*

Each :class:`QAExample` is a context, a question and an answer that is a span of the
context (Rajpurkar et al., 2016). The contexts are built from the play text by code: three
consecutive speeches of one play, each reduced to its speaker heading and the first words
of its first line::

    ROMEO:
    Ay me! sad hours seem long.
    BENVOLIO:
    What sadness lengthens
    ...

A question quotes two or three words of the middle speech (``quote="any"``: of any of
them) and asks who **said** them (that speech's heading), who **answered** (the next
heading) or who **spoke before** them (the previous heading). A string-matching heuristic
finds the quoted words easily, but only reading the question word tells which of the
neighbouring names is asked for (:func:`nearest_speaker_before`).

Contexts from the pretraining part of each play (:class:`~fmbook.data.plays.PlaysCorpus`)
train and validate; those from the held-out part test, so no test context was seen in
pretraining. :class:`QADataModule` encodes ``[CLS] question \\n context`` as character ids
with the answer's first and last token positions.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..tokenizers import CharTokenizer
from .plays import CLS, PAD, PlaysCorpus, speeches

#: The question words and which speech they ask about, relative to the quoted one.
KINDS = {"said": 0, "answered": 1, "spoke before": -1}


@dataclass(frozen=True)
class QAExample:
    """One extractive QA example; the answer must be ``context[answer_start:][:len(answer)]``.

    ``kind`` is a key of :data:`KINDS`; ``play`` is the play's title and ``source`` where
    the quoted line starts in the full text (for tracing it back; -1: unknown).
    """

    context: str
    question: str
    answer: str
    answer_start: int
    kind: str = "said"
    play: str = ""
    source: int = -1

    def __post_init__(self):
        if not self.answer:
            raise ValueError("answer must be a non-empty string")
        if self.answer not in self.context:
            raise ValueError(
                f"answer {self.answer!r} does not occur in the context: an extractive "
                "answer must be a span of its context"
            )
        found = self.context[self.answer_start : self.answer_start + len(self.answer)]
        if not 0 <= self.answer_start or found != self.answer:
            raise ValueError(
                f"answer_start={self.answer_start} points at {found!r}, not at the answer "
                f"{self.answer!r}; it occurs at {[m.start() for m in _all(self.answer, self.context)]}"
            )

    @property
    def answer_end(self) -> int:
        """One past the answer's last character."""
        return self.answer_start + len(self.answer)


def _all(needle: str, haystack: str):
    return re.finditer(re.escape(needle), haystack)


def first_words(line: str, max_chars: int) -> str:
    """The longest prefix of whole words of ``line`` with at most ``max_chars`` characters
    (the first word cut if it alone is longer)."""
    words, out = line.split(), ""
    for w in words:
        if len(out) + bool(out) + len(w) > max_chars:
            break
        out = f"{out} {w}" if out else w
    return out or line[:max_chars]


def question_text(kind: str, fragment: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return f"Who {kind} '{fragment}'?"


def make_examples(
    corpus: PlaysCorpus,
    *,
    part: str = "train",
    n_speeches: int = 3,
    line_chars: int = 26,
    fragment_words: tuple[int, int] = (2, 3),
    max_len: int = 128,
    quote: str = "middle",
    seed: int = 0,
) -> list[QAExample]:
    """QA examples from every window of ``n_speeches`` consecutive speeches of one play in
    ``part`` (``"train"``: before each play's cut, the pretraining text; ``"test"``: after
    it, the held-out text), one question per window (kind and fragment drawn with ``seed``).

    Windows whose context plus question would not fit ``max_len`` characters with the
    [CLS] and separator, whose quoted fragment is not unique in the context, or whose
    asked-about speeches have the same speaker twice in a row are skipped.
    """
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    if quote not in ("middle", "any"):
        raise ValueError(f"quote must be 'middle' or 'any', got {quote!r}")
    rng, out = random.Random(seed), []
    for title, (start, end) in corpus.spans.items():
        cut = corpus.cuts[title]
        lo, hi = (start, cut) if part == "train" else (cut, end)
        heads = [
            (s, first_words(b.split("\n")[0], line_chars), at)
            for s, b, at in speeches(corpus.text, lo, hi)
        ]
        for i in range(len(heads) - n_speeches + 1):
            window = heads[i : i + n_speeches]
            example = _window(window, title, rng, fragment_words, max_len, quote)
            if example is not None:
                out.append(example)
    return out


def _window(window, title, rng, fragment_words, max_len, quote) -> QAExample | None:
    kind = rng.choice(list(KINDS))
    if quote == "middle":
        asked = len(window) // 2  # the speech quoted
    else:
        lo, hi = max(0, -KINDS[kind]), len(window) - max(0, KINDS[kind])
        asked = rng.randrange(lo, hi)
    target = asked + KINDS[kind]  # the speech whose speaker is the answer
    if kind != "said" and window[asked][0] == window[target][0]:
        return None
    context, starts = "", []
    for speaker, line, _ in window:
        context += "\n" if context else ""
        starts.append(len(context))
        context += f"{speaker}:\n{line}"
    words = window[asked][1].split()
    n = min(len(words), rng.randint(*fragment_words))
    first = rng.randrange(len(words) - n + 1)
    fragment = " ".join(words[first : first + n])
    question = question_text(kind, fragment)
    if len(question) + len(context) + 2 > max_len or context.count(fragment) != 1:
        return None
    speaker = window[target][0]
    return QAExample(context, question, speaker, starts[target], kind, title, window[asked][2])


def encode_example(ex: QAExample, tokenizer: CharTokenizer, max_len: int):
    """(ids (max_len,), start token, end token (inclusive), first context token): the ids
    are ``[CLS] question \\n context`` padded with PAD."""
    prefix = [tokenizer.stoi[CLS], *tokenizer.encode(ex.question + "\n")]
    ids = prefix + tokenizer.encode(ex.context)
    if len(ids) > max_len:
        raise ValueError(f"example needs {len(ids)} tokens, more than max_len={max_len}")
    offset = len(prefix)
    out = torch.full((max_len,), tokenizer.stoi[PAD], dtype=torch.long)
    out[: len(ids)] = torch.tensor(ids)
    return out, offset + ex.answer_start, offset + ex.answer_end - 1, offset


def encode_examples(examples: Sequence[QAExample], tokenizer: CharTokenizer, max_len: int):
    """A TensorDataset of (ids (N, T), starts (N,), ends (N,), context_starts (N,))."""
    rows = [encode_example(e, tokenizer, max_len) for e in examples]
    ids = torch.stack([r[0] for r in rows])
    return TensorDataset(ids, *(torch.tensor([r[k] for r in rows]) for k in (1, 2, 3)))


class QADataModule(L.LightningDataModule):
    """Train/val examples from the pretraining part of the plays, test from the held-out
    part: ``n_train`` and ``n_val`` drawn (``seed``) from the first, every test example (or
    the first ``n_test``); ``quote`` as for :func:`make_examples`. Batches are
    (ids, starts, ends, context_starts)."""

    def __init__(
        self,
        corpus: PlaysCorpus,
        tokenizer: CharTokenizer,
        *,
        n_train: int = 2000,
        n_val: int = 300,
        n_test: int | None = None,
        max_len: int = 128,
        batch_size: int = 32,
        quote: str = "middle",
        seed: int = 0,
    ):
        super().__init__()
        pool = make_examples(corpus, part="train", max_len=max_len, quote=quote, seed=seed)
        if n_train + n_val > len(pool):
            raise ValueError(
                f"only {len(pool)} training examples, fewer than n_train + n_val = {n_train + n_val}"
            )
        random.Random(seed).shuffle(pool)
        test = make_examples(corpus, part="test", max_len=max_len, quote=quote, seed=seed)
        self.examples = {
            "train": pool[:n_train],
            "val": pool[n_train : n_train + n_val],
            "test": test[:n_test] if n_test else test,
        }
        self.batch_size, self.max_len = batch_size, max_len
        self.tensors = {k: encode_examples(v, tokenizer, max_len) for k, v in self.examples.items()}

    def train_dataloader(self):
        return DataLoader(self.tensors["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.tensors["val"], batch_size=256)

    def test_dataloader(self):
        return DataLoader(self.tensors["test"], batch_size=256)


class OpenBookWindows(Dataset):
    """Training windows for a language model that should use a passage in its prompt.

    Item i: with probability ``p_open`` an *open-book* window -- a passage of
    ``doc_len`` ids that starts up to ``max_back`` ids before position i, the ``sep`` ids,
    then the text from i on -- else a window of plain text from i (a passage drawn at random
    from elsewhere in front of it with probability ``p_random``, to teach that a passage
    may not help). Returns (x, y) of ``block_size`` ids, y shifted by one, as
    :class:`~fmbook.data.datamodules.RandomWindows` does.
    """

    def __init__(
        self,
        ids: torch.Tensor,
        block_size: int,
        sep: Sequence[int],
        *,
        doc_len: int = 100,
        max_back: int = 30,
        p_open: float = 0.5,
        p_random: float = 0.5,
        seed: int = 0,
    ):
        if len(ids) <= block_size + doc_len + max_back:
            raise ValueError("ids must be longer than block_size + doc_len + max_back")
        self.ids, self.block_size, self.sep = ids, block_size, torch.as_tensor(sep)
        self.doc_len, self.max_back = doc_len, max_back
        self.p_open, self.p_random, self.seed = p_open, p_random, seed

    def __len__(self) -> int:
        return len(self.ids) - self.block_size - self.doc_len - self.max_back

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)  # same item, same draw
        i = i + self.max_back + self.doc_len  # room for a passage before the text
        u = torch.rand(2, generator=g)
        if u[0] < self.p_open:  # the passage holds the text that follows
            at = i - int(torch.randint(0, self.max_back + 1, (1,), generator=g))
        elif u[1] < self.p_random:  # a passage from elsewhere
            at = int(torch.randint(0, len(self), (1,), generator=g))
        else:  # plain text, no passage
            return self.ids[i : i + self.block_size], self.ids[i + 1 : i + 1 + self.block_size]
        doc = self.ids[at : at + self.doc_len]
        seq = torch.cat([doc, self.sep, self.ids[i : i + self.block_size + 1]])
        return seq[: self.block_size], seq[1 : self.block_size + 1]


# ------------------------------------------------------------------------ heuristics


def heading_spans(context: str) -> list[tuple[int, str]]:
    """(start, name) of every speaker heading (a line ``NAME:``) of a context."""
    return [(m.start(1), m.group(1)) for m in re.finditer(r"(?m)^([^\n:]+):$", context)]


def quoted(question: str) -> str:
    """The fragment between the first and last quote (') of a question."""
    first, last = question.find("'"), question.rfind("'")
    return question[first + 1 : last] if 0 <= first < last else question


def nearest_speaker_before(ex: QAExample) -> str:
    """String matching: find the quoted fragment in the context and answer the nearest
    speaker heading before it (ignores the question word)."""
    at = ex.context.find(quoted(ex.question))
    before = [name for start, name in heading_spans(ex.context) if start <= max(at, 0)]
    return before[-1] if before else ""


def best_overlap_line(ex: QAExample) -> str:
    """The context line sharing the most words with the question (SQuAD's sliding-window
    baseline in its simplest form)."""
    q = set(re.findall(r"\w+", ex.question.lower()))
    lines = ex.context.split("\n")
    return max(lines, key=lambda line: len(q & set(re.findall(r"\w+", line.lower()))))


__all__ = [
    "KINDS",
    "OpenBookWindows",
    "QADataModule",
    "QAExample",
    "best_overlap_line",
    "encode_example",
    "encode_examples",
    "first_words",
    "heading_spans",
    "make_examples",
    "nearest_speaker_before",
    "question_text",
    "quoted",
]
