"""English-French sentence pairs (Tatoeba, via manythings.org) for translation.

>>> pairs = load_pairs()                     # [(english, french), ...], as in the file
>>> pairs = [normalize_pair(p) for p in pairs]
>>> train, val, test = split_pairs(pairs)    # grouped by source sentence

**Normalisation** (:func:`normalize`): Unicode NFKC (which also turns the narrow no-break
spaces of French typography, ``"Va\\u202f!"``, into plain spaces), typographic apostrophes
``’`` to ``'``, lower case, then the sentence is cut into words and punctuation marks with
the regex of :class:`~fmbook.tokenizers.WordTokenizer` and joined with single spaces:
``"Ça alors\\u202f!"`` becomes ``"ça alors !"``. Accents are kept (NFKC composes them).
Inner apostrophes stay inside a word (``"l'heure"``, ``"don't"`` are one token each).
The number of tokens of a sentence is the number of these space-separated pieces.

**Split** (:func:`split_pairs`): the split is by *source sentence*, not by pair. Many
English sentences have several French translations in the file (``"run !"`` -> ``"cours
!"``, ``"courez !"``); all the pairs that share a source go to the same part, so no
source sentence of the validation or test part is ever seen in training. (A split by pair
put about half of the test sources in training too, with another translation.) The part
of a source is fixed by a seeded hash of the sentence (:func:`source_part`, seed
:data:`SPLIT_SEED`), cut in the proportions :data:`SPLIT_FRACTIONS` of *sources* (so the
parts hold about, not exactly, these fractions of the pairs). It depends on nothing else:
not on the order of the lines, the length filter or ``max_pairs``. Pass normalised pairs,
so that sentences differing only in case or typography count as one source. The source is
the first sentence of each pair: English for ``direction="eng-fra"``, French for
``"fra-eng"``. :meth:`FraEngDataModule.references` collects, for each source, all its
translations in a part (the multiple references of BLEU and chrF).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence

import regex
import torch
from torch.nn.utils.rnn import pad_sequence

from ..tokenizers import BPETokenizer, WordTokenizer
from ..tokenizers.word import UNK, WORD_PATTERN
from .datamodules import SplitDataModule
from .registry import fetch

NAME = "fra-eng"
#: (train, val, test) fractions of the fixed split.
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
#: Seed of the hash that defines the split; changing it changes the book's numbers.
SPLIT_SEED = 1234
PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
#: Special tokens of both vocabularies: ``<unk>`` = 0, then ``<pad>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3.
SPECIALS = (PAD, BOS, EOS)
_TOKEN = regex.compile(WORD_PATTERN)


def load_pairs(max_pairs: int | None = None, **fetch_kwargs) -> list[tuple[str, str]]:
    """The (English, French) pairs of the file, in file order (shortest first).

    ``max_pairs`` keeps only the first pairs (for quick experiments and tests).
    """
    if max_pairs is not None and (not isinstance(max_pairs, int) or max_pairs < 1):
        raise ValueError(f"max_pairs must be None or an integer >= 1, got {max_pairs!r}")
    pairs = []
    with open(fetch(NAME, **fetch_kwargs), encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if max_pairs is not None and len(pairs) == max_pairs:
                break
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                raise ValueError(f"line {number} of {NAME}: expected English<TAB>French")
            pairs.append((fields[0], fields[1]))
    return pairs


def normalize(sentence: str) -> str:
    """NFKC, ``’`` to ``'``, lower case, words and punctuation separated by single spaces."""
    text = unicodedata.normalize("NFKC", sentence).replace("\u2019", "'").lower()
    return " ".join(_TOKEN.findall(text))


def normalize_pair(pair: tuple[str, str]) -> tuple[str, str]:
    """Both sentences of ``pair`` normalised with :func:`normalize`."""
    return normalize(pair[0]), normalize(pair[1])


def source_part(source: str, fractions: Sequence[float] = SPLIT_FRACTIONS) -> int:
    """Part (0 train, 1 val, 2 test) of every pair whose source sentence is ``source``.

    A seeded hash (BLAKE2b of ``SPLIT_SEED`` and the sentence) maps the sentence to a
    number ``u`` uniform in [0, 1); ``u`` below ``fractions[0]`` is train, below
    ``fractions[0] + fractions[1]`` validation, the rest test.
    """
    _check_fractions(fractions)
    if not isinstance(source, str):
        raise ValueError(f"a source must be a sentence (str), got {type(source).__name__}")
    digest = hashlib.blake2b(f"{SPLIT_SEED}\t{source}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    return 0 if u < fractions[0] else 1 if u < fractions[0] + fractions[1] else 2


def split_assignment(
    sources: Sequence[str], fractions: Sequence[float] = SPLIT_FRACTIONS
) -> torch.Tensor:
    """Part (0 train, 1 val, 2 test) of each source sentence, by :func:`source_part`."""
    cache: dict[str, int] = {}
    parts = [cache.setdefault(s, source_part(s, fractions)) for s in sources]
    return torch.tensor(parts, dtype=torch.long)


def split_pairs(
    pairs: Sequence[tuple[str, str]], fractions: Sequence[float] = SPLIT_FRACTIONS
) -> tuple[list, list, list]:
    """(train, val, test) lists of ``pairs``, grouped by source sentence (``pair[0]``).

    Every pair with the same source lands in the same part, so the sources of the
    validation and test parts never occur in training. The order within a part is that of
    ``pairs``.
    """
    part = split_assignment([p[0] for p in pairs], fractions).tolist()
    return tuple([p for p, k in zip(pairs, part, strict=True) if k == j] for j in range(3))


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three numbers >= 0 that sum to 1, got {fractions!r}")


def n_lines(**fetch_kwargs) -> int:
    """Number of pairs in the whole file."""
    with open(fetch(NAME, **fetch_kwargs), encoding="utf-8") as f:
        return sum(1 for _ in f)


class PairDataset(torch.utils.data.Dataset):
    """Encoded pairs: item i is (src ids + [EOS], [BOS] + tgt ids + [EOS]) as long tensors."""

    def __init__(self, pairs, src_tok: WordTokenizer, tgt_tok: WordTokenizer):
        bos, eos = tgt_tok.stoi[BOS], tgt_tok.stoi[EOS]
        self.items = [
            (
                torch.tensor([*src_tok.encode(s), src_tok.stoi[EOS]], dtype=torch.long),
                torch.tensor([bos, *tgt_tok.encode(t), eos], dtype=torch.long),
            )
            for s, t in pairs
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def pad_collate(batch, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad the sources and the targets of a batch to their longest with ``pad_id``."""
    src, tgt = zip(*batch, strict=True)
    return (
        pad_sequence(src, batch_first=True, padding_value=pad_id),
        pad_sequence(tgt, batch_first=True, padding_value=pad_id),
    )


class _Collate:
    """Picklable collate function (for worker processes)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch):
        return pad_collate(batch, self.pad_id)


class FraEngDataModule(SplitDataModule):
    """English-French translation batches for :class:`~fmbook.tasks.Seq2Seq`.

    Batches are ``(src, tgt)`` long tensors, right-padded with :attr:`pad_id` (the same id,
    1, in both vocabularies): ``src = [x_1 .. x_m, EOS, PAD ...]`` and
    ``tgt = [BOS, y_1 .. y_n, EOS, PAD ...]``. ``direction="eng-fra"`` translates English
    to French, ``"fra-eng"`` the other way.

    Pairs whose normalised sentences have more than ``max_len`` tokens (either side,
    specials not counted) are dropped from every part. The two vocabularies
    (:class:`~fmbook.tokenizers.WordTokenizer`) are built from the training part only,
    keeping words seen at least ``min_freq`` times; other words become ``<unk>``.
    ``max_pairs`` uses only the first (shortest) lines of the file, with their parts of
    the fixed split. The split is by source sentence (module docstring): a source of the
    validation or test part never occurs in training, and :meth:`references` gives all
    the translations of each source of a part.
    """

    def __init__(
        self,
        batch_size: int = 64,
        max_len: int = 10,
        min_freq: int = 2,
        direction: str = "eng-fra",
        max_pairs: int | None = None,
        num_workers: int = 0,
    ):
        super().__init__()
        for name, value in (("batch_size", batch_size), ("max_len", max_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if direction not in ("eng-fra", "fra-eng"):
            raise ValueError(f"direction must be 'eng-fra' or 'fra-eng', got {direction!r}")
        self.batch_size, self.max_len, self.min_freq = batch_size, max_len, min_freq
        self.direction, self.max_pairs, self.num_workers = direction, max_pairs, num_workers
        self.src_tokenizer: WordTokenizer | None = None
        self.tgt_tokenizer: WordTokenizer | None = None

    def prepare_data(self):
        fetch(NAME)  # a clear error now if the file is neither in the mirror nor in the cache

    def setup(self, stage: str | None = None):
        if self.src_tokenizer is not None:
            return
        pairs = [normalize_pair(p) for p in load_pairs(self.max_pairs)]
        if self.direction == "fra-eng":
            pairs = [(f, e) for e, f in pairs]
        parts = split_pairs(pairs)
        parts = [[p for p in part if self._fits(p)] for part in parts]
        self.train_pairs, self.val_pairs, self.test_pairs = parts
        if not self.train_pairs:
            raise ValueError(f"no training pair has at most max_len={self.max_len} tokens")
        self.src_tokenizer, self.tgt_tokenizer = self._tokenizers(self.train_pairs)
        self.datasets = [PairDataset(p, self.src_tokenizer, self.tgt_tokenizer) for p in parts]

    def references(self, part: str = "test") -> dict[str, list[str]]:
        """Each source sentence of ``part`` ("train", "val" or "test") -> all its target
        sentences in that part (after the length filter), in file order. As the split is by
        source, these are all the translations the file has for it (within ``max_len``)."""
        if self.src_tokenizer is None:
            raise ValueError("call setup() first")
        if part not in ("train", "val", "test"):
            raise ValueError(f"part must be 'train', 'val' or 'test', got {part!r}")
        refs: dict[str, list[str]] = {}
        for source, target in getattr(self, f"{part}_pairs"):
            refs.setdefault(source, []).append(target)
        return refs

    def _fits(self, pair: tuple[str, str]) -> bool:
        return all(0 < len(s.split()) <= self.max_len for s in pair)

    def _tokenizers(self, train_pairs) -> tuple:
        """(source, target) tokenizers, built from the training pairs only."""
        return (
            self._vocab([s for s, _ in train_pairs]),
            self._vocab([t for _, t in train_pairs]),
        )

    def _vocab(self, sentences: list[str]) -> WordTokenizer:
        return WordTokenizer.train("\n".join(sentences), min_freq=self.min_freq, specials=SPECIALS)

    @property
    def pad_id(self) -> int:
        """Id of ``<pad>`` in both vocabularies (pass it to ``Seq2Seq(pad_id=...)``)."""
        return 1 + SPECIALS.index(PAD)

    @property
    def bos_id(self) -> int:
        return 1 + SPECIALS.index(BOS)

    @property
    def eos_id(self) -> int:
        return 1 + SPECIALS.index(EOS)

    def collate_fn(self):
        return _Collate(self.pad_id)

    # -- between sentences and the ids a translation model reads and writes ---------------

    def encode_sources(self, sentences: Sequence[str]) -> torch.Tensor:
        """Source sentences -> ids (B, S): normalised, ending with <eos>, right-padded."""
        _check_sentences(sentences, self.src_tokenizer)
        eos = self.src_tokenizer.stoi[EOS]
        rows = [torch.tensor([*self.src_tokenizer.encode(normalize(s)), eos]) for s in sentences]
        return pad_sequence(rows, batch_first=True, padding_value=self.pad_id)

    def decoder_inputs(self, targets: Sequence[str]) -> torch.Tensor:
        """Targets as space-separated words (e.g. a model's output) -> teacher-forcing inputs
        ``[<bos>, y_1 .. y_n]`` (B, T), right-padded; an unknown word becomes ``<unk>``."""
        _check_sentences(targets, self.tgt_tokenizer)
        stoi, unk = self.tgt_tokenizer.stoi, self.tgt_tokenizer.unk_id
        rows = [
            torch.tensor([self.bos_id, *(stoi.get(w, unk) for w in t.split())]) for t in targets
        ]
        return pad_sequence(rows, batch_first=True, padding_value=self.pad_id)

    def target_words(self, ids: torch.Tensor) -> str:
        """One row of target ids -> its words up to (without) the first <eos>."""
        ids = ids.tolist()
        ids = ids[: ids.index(self.eos_id)] if self.eos_id in ids else ids
        return " ".join(self.tgt_tokenizer.itos[i] for i in ids)


class SharedBPE:
    """A byte-level :class:`~fmbook.tokenizers.BPETokenizer` behind the ids of the word
    vocabularies' special tokens, for both languages at once (a *shared* vocabulary).

    Ids 0-3 are ``<unk>`` (never produced: byte-level BPE has no unknown input), ``<pad>``,
    ``<bos>`` and ``<eos>``, as in :data:`SPECIALS`; BPE token ``k`` is id ``4 + k``. A
    sentence is encoded with a space in front, so that with the GPT-2 pre-splitting every
    word, the first one included, is a chunk ``" word"`` and gets the same tokens
    wherever it stands.
    """

    OFFSET = 1 + len(SPECIALS)

    def __init__(self, bpe: BPETokenizer):
        if not isinstance(bpe, BPETokenizer):
            raise ValueError(f"bpe must be a BPETokenizer, got {type(bpe).__name__}")
        self.bpe = bpe
        self.stoi = {UNK: 0, **{s: 1 + i for i, s in enumerate(SPECIALS)}}
        self.unk_id = 0

    @classmethod
    def train(cls, sentences: Sequence[str], vocab_size: int) -> SharedBPE:
        """Learn BPE merges from ``sentences`` (both languages' training text) so that the
        vocabulary, specials included, has ``vocab_size`` ids."""
        if isinstance(sentences, str) or not sentences:
            raise ValueError("sentences must be a non-empty list of sentences")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise ValueError(f"vocab_size must be an integer, got {vocab_size!r}")
        if vocab_size < 256 + cls.OFFSET:
            raise ValueError(
                f"vocab_size must be >= {256 + cls.OFFSET} (256 bytes and "
                f"{cls.OFFSET} specials), got {vocab_size}"
            )
        text = "".join(f" {s}\n" for s in sentences)
        return cls(BPETokenizer.train(text, vocab_size - cls.OFFSET, pattern="gpt2"))

    @property
    def vocab_size(self) -> int:
        return self.bpe.vocab_size + self.OFFSET

    def encode(self, sentence: str) -> list[int]:
        """Ids of a (normalised) sentence, without specials."""
        return [self.OFFSET + i for i in self.bpe.encode(" " + sentence)]

    def decode(self, ids: Sequence[int]) -> str:
        """The sentence of ``ids``; special ids are left out."""
        return self.bpe.decode([i - self.OFFSET for i in ids if i >= self.OFFSET]).strip()

    def pieces(self, sentence: str) -> list[str]:
        """The tokens of a sentence as strings (``"Ġ"``-free: a leading space is shown)."""
        return [self.bpe.token_str(i) for i in self.bpe.encode(" " + sentence)]


class FraEngBPEDataModule(FraEngDataModule):
    """:class:`FraEngDataModule` with one BPE vocabulary of ``vocab_size`` ids shared by
    both languages (:class:`SharedBPE`), trained on the training part's sentences only.

    The pairs, split, length filter (``max_len`` counts *words*, as in the word data
    module, so both keep the same pairs), batches and special ids are those of
    :class:`FraEngDataModule`; ``src_tokenizer`` and ``tgt_tokenizer`` are the same object.
    """

    def __init__(self, vocab_size: int = 8000, **kwargs):
        if "min_freq" in kwargs:
            raise ValueError("min_freq is for word vocabularies; BPE has no unknown words")
        super().__init__(**kwargs)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise ValueError(f"vocab_size must be an integer, got {vocab_size!r}")
        if vocab_size < 256 + SharedBPE.OFFSET:
            raise ValueError(f"vocab_size must be >= {256 + SharedBPE.OFFSET}, got {vocab_size}")
        self.vocab_size = vocab_size

    def _tokenizers(self, train_pairs) -> tuple:
        sentences = [s for pair in train_pairs for s in pair]
        shared = SharedBPE.train(sentences, self.vocab_size)
        return shared, shared

    def decoder_inputs(self, targets: Sequence[str]) -> torch.Tensor:
        """Target sentences -> teacher-forcing inputs ``[<bos>, y_1 .. y_n]`` (B, T)."""
        _check_sentences(targets, self.tgt_tokenizer)
        rows = [torch.tensor([self.bos_id, *self.tgt_tokenizer.encode(t)]) for t in targets]
        return pad_sequence(rows, batch_first=True, padding_value=self.pad_id)

    def target_words(self, ids: torch.Tensor) -> str:
        """One row of target ids -> its sentence up to (without) the first <eos>."""
        ids = ids.tolist()
        ids = ids[: ids.index(self.eos_id)] if self.eos_id in ids else ids
        return self.tgt_tokenizer.decode(ids)


def _check_sentences(sentences, tokenizer) -> None:
    if tokenizer is None:
        raise ValueError("call setup() first: the vocabularies are built from the training part")
    if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
        raise ValueError(f"expected a list of sentences (str), got {type(sentences).__name__}")
