"""A task where word order matters: *is this line as Shakespeare wrote it, or shuffled?*

Each example is one line of verse or prose (at least ``min_words`` words) from the
**held-out** ends of the plays (:class:`~fmbook.data.plays.PlaysCorpus`), which the book's
pretrained model never saw; lines that also occur anywhere in the pretraining text are
dropped, so that no test line can have been memorised. Every line comes with a
**shuffle**: the same words in a random other order (:func:`shuffle_words`). Label 1 is
the original, 0 the shuffle, and a line and its shuffle always lie in the same split.

The shuffle moves only the words; spaces and punctuation stay where they were, and the
capital letter of a slot stays with the slot (a word that moves to the start of the line
gets a capital, one that leaves it loses it, except ``I`` and names, which are capitalised
everywhere in the text). Otherwise "starts with a capital, ends with a full stop" would
give the answer away without any knowledge of English word order. The words themselves are
unchanged up to that capital, so a bag of (lower-cased) words sees the same bag in a line
and in its shuffle: it is at chance by construction.

>>> task = WordOrderTask(corpus, n_test=1000, n_val=256)
>>> data = task.draw(per_class=32, seed=0)     # 32 originals + their 32 shuffles
>>> data.passages["train"][:2]                 # [(Passage, 1), (Passage, 0)]
>>> pair_correct(scores, data.passages["test"])  # 1 where the original scored higher
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..tokenizers import CharTokenizer
from .plays import PAD, Passage, PlaysCorpus, encode_passages, speeches

# A word: letters with inner apostrophes ("o'er", "speak'st"); the same words as the
# bag of words of fmbook.models.bow, up to case.
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")

ORIGINAL, SHUFFLED = 1, 0


def held_out_lines(corpus: PlaysCorpus, min_words: int = 5) -> list[Passage]:
    """Every distinct line of a speech in the held-out parts of the plays with at least
    ``min_words`` words that does not occur anywhere in the pretraining text, in text order
    (as :class:`~fmbook.data.plays.Passage` s of one line each)."""
    if not isinstance(min_words, int) or min_words < 2:
        raise ValueError(f"min_words must be an int >= 2, got {min_words!r}")
    lines, seen = [], set()
    for title, (_, end) in corpus.spans.items():
        for speaker, body, at in speeches(corpus.text, corpus.cuts[title], end):
            offset = at
            for line in body.split("\n"):
                text = line.strip()
                if (
                    len(WORD.findall(text)) >= min_words
                    and text not in seen
                    and text not in corpus.pretraining_text
                ):
                    seen.add(text)
                    lines.append(Passage(text, title, speaker, offset))
                offset += len(line) + 1
    return lines


def case_free_words(text: str) -> frozenset[str]:
    """The lower-cased words whose capital is only a matter of position: inside a line
    (not as its first word) they occur more often in lower case than capitalised. Others
    (``I``, names, "Lord" where it is mostly a title) keep their capital wherever they go."""
    lower, upper = Counter(), Counter()
    for line in text.split("\n"):
        for w in WORD.findall(line)[1:]:
            (lower if w[0].islower() else upper)[w.lower()] += 1
    return frozenset(w for w, n in lower.items() if n > upper[w])


def shuffle_words(
    line: str, rng: random.Random, case_free: frozenset[str], tries: int = 100
) -> str:
    """``line`` with its words in a random other order (``rng``), every other character in
    place. The capital of a slot stays with the slot for words in ``case_free``
    (:func:`case_free_words`); a slot counts as capitalised if its original word is
    case-free and capitalised, or if it is the first slot. Raises ValueError if no
    different order is found in ``tries`` draws (e.g. all words equal)."""
    spans = [m.span() for m in WORD.finditer(line)]
    words = [line[s:e] for s, e in spans]
    if len(words) < 2:
        raise ValueError(f"need at least two words to shuffle, got {line!r}")

    def free(w: str) -> bool:
        return w.lower() in case_free

    capital = [w[0].isupper() if free(w) else i == 0 for i, w in enumerate(words)]
    for _ in range(tries):
        order = list(range(len(words)))
        rng.shuffle(order)
        pieces, last = [], 0
        for slot, ((s, e), k) in enumerate(zip(spans, order, strict=True)):
            w = words[k]
            if free(w):
                w = (w[0].upper() if capital[slot] else w[0].lower()) + w[1:]
            pieces += [line[last:s], w]
            last = e
        shuffled = "".join(pieces) + line[last:]
        if shuffled != line:
            return shuffled
    raise ValueError(f"found no order of the words of {line!r} that differs from it")


def same_bag(a: str, b: str) -> bool:
    """Whether two texts have the same lower-cased words, counted with repeats."""
    return sorted(WORD.findall(a.lower())) == sorted(WORD.findall(b.lower()))


class WordOrderTask:
    """Original/shuffled pairs of held-out lines, split once into a labelled training pool,
    a validation set (``n_val`` pairs) and a test set (``n_test`` pairs); ``seed`` fixes
    both the split and the shuffles. ``pairs[split]`` lists ``(original, shuffled)``
    :class:`~fmbook.data.plays.Passage` pairs for the splits ``"pool"``, ``"val"`` and
    ``"test"``."""

    def __init__(
        self,
        corpus: PlaysCorpus,
        *,
        n_test: int = 1000,
        n_val: int = 256,
        min_words: int = 5,
        seed: int = 0,
    ):
        if n_test < 1 or n_val < 1:
            raise ValueError(f"n_test and n_val must be >= 1, got {n_test!r}, {n_val!r}")
        lines = held_out_lines(corpus, min_words)
        if len(lines) < n_test + n_val + 1:
            raise ValueError(
                f"only {len(lines)} held-out lines, need n_test + n_val + 1 = {n_test + n_val + 1}"
            )
        rng = random.Random(seed)
        case_free = case_free_words(corpus.text)
        pairs = []
        for p in lines:
            shuffled = shuffle_words(p.text, rng, case_free)
            pairs.append((p, Passage(shuffled, p.play, p.speaker, p.start)))
        rng.shuffle(pairs)
        self.lines = lines
        self.pairs = {
            "test": pairs[:n_test],
            "val": pairs[n_test : n_test + n_val],
            "pool": pairs[n_test + n_val :],
        }

    def draw(
        self, per_class: int, seed: int = 0, *, max_len: int = 64, batch_size: int = 32
    ) -> WordOrderData:
        """``per_class`` pairs of the training pool (``per_class`` labels of each class),
        drawn with ``seed``; larger draws with the same seed contain the smaller ones."""
        pool = self.pairs["pool"]
        if not 1 <= per_class <= len(pool):
            raise ValueError(f"per_class must lie in [1, {len(pool)}], got {per_class!r}")
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        train = [pool[i] for i in order[:per_class]]
        return WordOrderData(
            {"train": train, "val": self.pairs["val"], "test": self.pairs["test"]},
            max_len=max_len,
            batch_size=batch_size,
        )


class WordOrderData:
    """The labelled rows of one draw, in the form of
    :class:`~fmbook.data.plays.PlaysDataModule`: ``passages[split]`` lists
    ``(passage, label)`` with each original directly followed by its shuffle (so rows
    ``0::2`` are originals, ``1::2`` their shuffles); ``tensors[split]`` holds
    ``(ids (N, max_len), labels (N,))`` once :meth:`encode` has run."""

    classes = ("shuffled", "original")

    def __init__(self, pairs: dict[str, list], *, max_len: int = 64, batch_size: int = 32):
        self.pairs, self.max_len, self.batch_size = pairs, max_len, batch_size
        self.passages = {
            split: [row for o, s in rows for row in ((o, ORIGINAL), (s, SHUFFLED))]
            for split, rows in pairs.items()
        }
        self.tensors: dict[str, TensorDataset] = {}

    def texts_and_labels(self, split: str) -> tuple[list[str], torch.Tensor]:
        rows = self.passages[split]
        return [p.text for p, _ in rows], torch.tensor([k for _, k in rows])

    def encode(self, tokenizer: CharTokenizer) -> WordOrderData:
        """Character ids of every split (no [CLS]; padded with PAD)."""
        for split, rows in self.passages.items():
            ids = encode_passages([p for p, _ in rows], tokenizer, self.max_len, cls=False)
            labels = torch.tensor([k for _, k in rows], dtype=torch.long)
            self.tensors[split] = TensorDataset(ids, labels)
        return self

    def loader(self, split: str, shuffle: bool = False, generator=None) -> DataLoader:
        if split not in self.tensors:
            raise ValueError("call encode(tokenizer) before asking for batches")
        return DataLoader(
            self.tensors[split], batch_size=self.batch_size, shuffle=shuffle, generator=generator
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)


def pair_correct(
    scores: torch.Tensor, seed: int = 0, tol: float = 1e-6
) -> tuple[torch.Tensor, int]:
    """Per pair, 1 if the original scored higher than its shuffle. ``scores`` (2N,) follows
    the rows of :class:`WordOrderData` (original, shuffle, original, ...); a higher score
    means "more likely the original". Scores within ``tol`` of each other (rounding noise)
    tie, and ties are broken by a fair coin (``seed``), so a model that cannot tell the two
    apart scores 1/2 on average. Returns ((N,) 0/1 floats, the number of ties)."""
    scores = torch.as_tensor(scores, dtype=torch.float64).flatten()
    if scores.numel() == 0 or scores.numel() % 2:
        raise ValueError(
            f"scores must hold an original and a shuffle per pair, got {scores.numel()}"
        )
    original, shuffled = scores[0::2], scores[1::2]
    tie = (original - shuffled).abs() <= tol
    coin = torch.rand(len(tie), generator=torch.Generator().manual_seed(seed)) < 0.5
    correct = torch.where(tie, coin, original > shuffled).double()
    return correct, int(tie.sum())


@torch.no_grad()
def pseudo_log_likelihood(
    model, texts: Sequence[str], tokenizer: CharTokenizer, *, mask_id: int, batch_size: int = 512
) -> torch.Tensor:
    """(N,) pseudo-log-likelihoods (Salazar et al., 2020) of ``texts`` under a masked
    language model ``model(ids) -> (logits (B, T, V), _)``: the sum over characters of
    log p(character | all other characters), each character masked in turn. The
    T masked copies of all texts are scored in batches of ``batch_size`` copies (padded
    with PAD, which the model ignores); the model runs in eval mode (restored after)."""
    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts must be a non-empty sequence of strings")
    pad_id = tokenizer.stoi[PAD]
    rows, targets, owner, where = [], [], [], []
    for n, text in enumerate(texts):
        ids = tokenizer.encode(text)
        if not ids:
            raise ValueError(f"text {n} is empty")
        for t, target in enumerate(ids):
            rows.append(ids[:t] + [mask_id] + ids[t + 1 :])
            targets.append(target)
            owner.append(n)
            where.append(t)
    targets, owner, where = map(torch.tensor, (targets, owner, where))
    out = torch.zeros(len(texts), dtype=torch.float64)
    # sort the copies by length so that each batch is padded only to its own longest row
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    was_training = model.training
    model.eval()
    try:
        for chunk in torch.tensor(order).split(batch_size):
            length = max(len(rows[i]) for i in chunk.tolist())
            ids = torch.full((len(chunk), length), pad_id, dtype=torch.long)
            for j, i in enumerate(chunk.tolist()):
                ids[j, : len(rows[i])] = torch.tensor(rows[i])
            logits = model(ids)[0]  # (B, T, V)
            logp = F.log_softmax(logits[torch.arange(len(chunk)), where[chunk]].double(), -1)
            out.index_add_(0, owner[chunk], logp[torch.arange(len(chunk)), targets[chunk]])
    finally:
        model.train(was_training)
    return out


__all__ = [
    "ORIGINAL",
    "SHUFFLED",
    "WORD",
    "WordOrderData",
    "WordOrderTask",
    "case_free_words",
    "held_out_lines",
    "pair_correct",
    "pseudo_log_likelihood",
    "same_bag",
    "shuffle_words",
]
