"""A labelled task made from Tiny Shakespeare: *which play is this passage from?*

Tiny Shakespeare is nine plays (or long excerpts of them) one after another, with no titles.
Each play starts with a speech that occurs exactly once in the text; :data:`PLAYS` lists
those openings, so the labels come from the text itself and :func:`play_spans` checks them.

The task, and the corpus to pretrain on, are split so that nothing held out is ever seen:

* each play is cut at ``1 - held_out`` of its length (moved forward to the next speech);
* the parts before the cuts, joined, are the **pretraining text**; the parts after them
  are the **held-out text** (for the pretraining loss before and after fine-tuning);
* labelled **passages** (a few whole lines of one speech, without the speaker's name) from
  the first parts train and validate classifiers; those from the held-out parts test them.

>>> corpus = PlaysCorpus(load_text())
>>> corpus.pretraining_text[:14]
'First Citizen:'
>>> data = PlaysDataModule(corpus, tokenizer, per_class=100)

:func:`dialogue_turns` cuts the same parts into fixed-length (prompt, reply) turns: the
text before a speech, ending with the speaker's heading, and the start of the speech.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..tokenizers import CharTokenizer
from .registry import DataError

# Control characters that never occur in the text serve as the special tokens of the
# character vocabulary of encoders: padding, [MASK] (masked-LM) and [CLS] (classification).
PAD, MASK, CLS = "\x00", "\x01", "\x02"


@dataclass(frozen=True)
class Play:
    title: str
    opening: str  # the first speech of the play, as it appears in the text


PLAYS: tuple[Play, ...] = (
    Play("Coriolanus", "First Citizen:\nBefore we proceed any further"),
    Play("Richard III", "GLOUCESTER:\nNow is the winter of our discontent"),
    Play("Richard II", "KING RICHARD II:\nOld John of Gaunt"),
    Play("Romeo and Juliet", "SAMPSON:\nGregory, o' my word"),
    Play("Henry VI, Part 3", "WARWICK:\nI wonder how the king escaped our hands."),
    Play("The Winter's Tale", "ARCHIDAMUS:\nIf you shall chance"),
    Play("Measure for Measure", "DUKE VINCENTIO:\nEscalus."),
    Play("The Taming of the Shrew", "SLY:\nI'll pheeze you, in faith."),
    Play("The Tempest", "Master:\nBoatswain!"),
)

# Four plays of four kinds (Roman tragedy, love tragedy, late romance, comedy), each long
# enough for more than 1,000 training passages of 128 characters.
DEFAULT_PLAYS = ("Coriolanus", "Romeo and Juliet", "The Winter's Tale", "The Taming of the Shrew")


@dataclass(frozen=True)
class Passage:
    text: str  # whole lines of one speech, joined by newlines
    play: str
    speaker: str
    start: int  # offset of the passage in the full text


def play_spans(text: str, plays: Sequence[Play] = PLAYS) -> dict[str, tuple[int, int]]:
    """``{title: (start, end)}``: where each play lies in ``text``; the last ends the text.

    Raises :class:`~fmbook.data.DataError` unless every opening occurs exactly once, in order,
    and the first play starts the text.
    """
    starts = []
    for play in plays:
        n = text.count(play.opening)
        if n != 1:
            raise DataError(
                f"the opening of {play.title!r} ({play.opening[:30]!r}...) occurs {n} times in "
                "the text, expected once: is this the Tiny Shakespeare text?"
            )
        starts.append(text.index(play.opening))
    if starts[0] != 0 or starts != sorted(starts):
        raise DataError("the plays' openings are not in the expected order at the expected places")
    ends = starts[1:] + [len(text)]
    return {p.title: (s, e) for p, s, e in zip(plays, starts, ends, strict=True)}


def speeches(text: str, start: int = 0, end: int | None = None):
    """Yield ``(speaker, body, offset_of_body)`` for each speech in ``text[start:end]``.

    A speech is a block of lines without a blank line whose first line is ``NAME:``.
    """
    end = len(text) if end is None else end
    for block in re.finditer(r"[^\n](?:[^\n]|\n(?!\n))*", text[start:end]):
        head, _, body = block.group().partition("\n")
        if head.endswith(":") and body:
            yield head[:-1], body, start + block.start() + len(head) + 1


def pack_lines(body: str, max_chars: int) -> list[tuple[str, int]]:
    """Greedily pack the lines of ``body`` into chunks of at most ``max_chars`` characters
    (whole lines joined by newlines; a longer line is cut). Returns (chunk, offset) pairs."""
    chunks, current, current_at, offset = [], "", 0, 0
    for line in body.split("\n"):
        for i in range(0, max(len(line), 1), max_chars):
            piece, at = line[i : i + max_chars], offset + i
            if current and len(current) + 1 + len(piece) <= max_chars:
                current += "\n" + piece
            else:
                if current:
                    chunks.append((current, current_at))
                current, current_at = piece, at
        offset += len(line) + 1
    if current:
        chunks.append((current, current_at))
    return chunks


class PlaysCorpus:
    """Tiny Shakespeare cut into plays, with a pretraining part and a held-out part of each.

    ``held_out``: the fraction of each play (its end) that is held out.
    ``max_chars``/``min_chars``: the length range of labelled passages.
    """

    def __init__(
        self, text: str, held_out: float = 0.15, max_chars: int = 128, min_chars: int = 24
    ):
        if not 0 < held_out < 1:
            raise ValueError(f"held_out must lie strictly between 0 and 1, got {held_out!r}")
        if not (
            isinstance(max_chars, int) and isinstance(min_chars, int) and 0 < min_chars <= max_chars
        ):
            raise ValueError(
                f"need integers 0 < min_chars <= max_chars, got {min_chars!r}, {max_chars!r}"
            )
        self.text, self.held_out = text, held_out
        self.spans = play_spans(text)
        self.cuts = {title: self._cut(s, e) for title, (s, e) in self.spans.items()}
        self.pretraining_text = "".join(text[s : self.cuts[t]] for t, (s, _) in self.spans.items())
        self.held_out_text = "".join(text[self.cuts[t] : e] for t, (_, e) in self.spans.items())
        self.train_passages, self.test_passages = [], []
        for title, (s, e) in self.spans.items():
            for speaker, body, at in speeches(text, s, e):
                for chunk, offset in pack_lines(body, max_chars):
                    if len(chunk) >= min_chars:
                        passage = Passage(chunk, title, speaker, at + offset)
                        part = self.train_passages if at < self.cuts[title] else self.test_passages
                        part.append(passage)

    def _cut(self, start: int, end: int) -> int:
        """The start of the first speech at or after ``1 - held_out`` of the play."""
        point = start + int((end - start) * (1 - self.held_out))
        nxt = self.text.find("\n\n", point, end)
        return end if nxt < 0 else nxt + 2

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{play: (training passages, test passages)}``."""
        out = {t: [0, 0] for t in self.spans}
        for i, part in enumerate((self.train_passages, self.test_passages)):
            for p in part:
                out[p.play][i] += 1
        return {t: tuple(v) for t, v in out.items()}


@dataclass(frozen=True)
class Turn:
    """One turn of dialogue: the ``prompt`` (the text just before a speech, ending with the
    speaker's heading ``NAME:\n``) and the ``reply`` (the first characters of the speech)."""

    prompt: str
    reply: str
    play: str
    speaker: str


def dialogue_turns(
    corpus: PlaysCorpus, part: str, prompt_chars: int, reply_chars: int
) -> list[Turn]:
    """Every speech of the ``part`` (``"train"``: before the cuts, ``"test"``: the held-out
    ends) at least ``reply_chars`` long, as a :class:`Turn` of fixed lengths: the
    ``prompt_chars`` characters before the speech (they hold the end of the previous speech
    and the heading) and the speech's first ``reply_chars`` characters. A prompt never
    reaches back across the start of its play or part."""
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    if (
        not (isinstance(prompt_chars, int) and isinstance(reply_chars, int))
        or min(prompt_chars, reply_chars) < 1
    ):
        raise ValueError(
            f"prompt_chars and reply_chars must be ints >= 1, got {prompt_chars!r}, {reply_chars!r}"
        )
    text, turns = corpus.text, []
    for title, (start, end) in corpus.spans.items():
        cut = corpus.cuts[title]
        lo, hi = (start, cut) if part == "train" else (cut, end)
        for speaker, body, at in speeches(text, lo, hi):
            if len(body) >= reply_chars and at - prompt_chars >= lo:
                reply = text[at : at + reply_chars]
                turns.append(Turn(text[at - prompt_chars : at], reply, title, speaker))
    return turns


def encoder_tokenizer(text: str) -> CharTokenizer:
    """Characters of ``text`` plus the specials: id 0 is PAD, 1 is MASK, 2 is CLS."""
    bad = [repr(c) for c in (PAD, MASK, CLS) if c in text]
    if bad:
        raise ValueError(f"text contains the special characters {', '.join(bad)}")
    return CharTokenizer([PAD, MASK, CLS, *sorted(set(text))])


def encode_passages(
    passages: Sequence[Passage], tokenizer: CharTokenizer, max_len: int, cls: bool = True
) -> torch.Tensor:
    """(N, max_len) ids: [CLS] (if ``cls``) + characters, cut to ``max_len``, padded with PAD."""
    pad_id = tokenizer.stoi[PAD]
    prefix = [tokenizer.stoi[CLS]] if cls else []
    out = torch.full((len(passages), max_len), pad_id, dtype=torch.long)
    for i, p in enumerate(passages):
        ids = (prefix + tokenizer.encode(p.text))[:max_len]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


class PlaysDataModule(L.LightningDataModule):
    """Batches ``(ids (B, max_len), labels (B,))`` for *which play (or speaker)?*

    * train: ``per_class`` passages of each class drawn (``seed``) from the pretraining part;
    * val: ``val_per_class`` other passages of each class from the same part;
    * test: every passage of the held-out parts of the chosen classes.

    ``label`` is ``"play"`` (``classes`` are play titles, default :data:`DEFAULT_PLAYS`) or
    ``"speaker"`` (``classes`` are speaker names, e.g. ``("ROMEO", "JULIET")``).
    Larger ``per_class`` draws are supersets of smaller ones with the same seed, so learning
    curves add examples rather than swap them.
    """

    def __init__(
        self,
        corpus: PlaysCorpus,
        tokenizer: CharTokenizer,
        *,
        label: str = "play",
        classes: Sequence[str] = DEFAULT_PLAYS,
        per_class: int = 100,
        val_per_class: int = 100,
        max_len: int = 128,
        cls: bool = False,
        batch_size: int = 32,
        seed: int = 0,
    ):
        super().__init__()
        if label not in ("play", "speaker"):
            raise ValueError(f"label must be 'play' or 'speaker', got {label!r}")
        if len(set(classes)) < 2:
            raise ValueError(f"classes must name at least two different classes, got {classes!r}")
        if per_class < 1 or val_per_class < 1 or batch_size < 1:
            raise ValueError("per_class, val_per_class and batch_size must be >= 1")
        key: Callable[[Passage], str] = (
            (lambda p: p.play) if label == "play" else (lambda p: p.speaker)
        )
        self.classes, self.batch_size = tuple(classes), batch_size
        pools = {c: [p for p in corpus.train_passages if key(p) == c] for c in self.classes}
        for c, pool in pools.items():
            if len(pool) < per_class + val_per_class:
                raise ValueError(
                    f"{label} {c!r} has {len(pool)} training passages, fewer than "
                    f"per_class + val_per_class = {per_class + val_per_class}"
                )
        rng = random.Random(seed)
        train, val = [], []
        for k, c in enumerate(self.classes):
            pool = pools[c][:]
            rng.shuffle(pool)
            val += [(p, k) for p in pool[:val_per_class]]
            train += [(p, k) for p in pool[val_per_class : val_per_class + per_class]]
        test = [
            (p, self.classes.index(key(p))) for p in corpus.test_passages if key(p) in self.classes
        ]
        self.passages = {"train": train, "val": val, "test": test}
        self.tensors = {
            split: TensorDataset(
                encode_passages([p for p, _ in rows], tokenizer, max_len, cls),
                torch.tensor([k for _, k in rows], dtype=torch.long),
            )
            for split, rows in self.passages.items()
        }

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self.tensors[split], batch_size=self.batch_size, shuffle=shuffle)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")
