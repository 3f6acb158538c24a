"""Byte-level byte-pair encoding (BPE), from scratch, in the style of minbpe.

Text is first turned into UTF-8 **bytes**, so the 256 byte values are the starting
vocabulary and *any* text (Chinese, emoji, invalid UTF-8 given as bytes) can be encoded:
there is no out-of-vocabulary input. Training then repeatedly finds the most frequent
pair of adjacent tokens and **merges** it into a new token with the next free id
(256, 257, ...), until the vocabulary has ``vocab_size`` tokens.

Chunks. The text is cut into chunks before counting pairs, and pairs never cross a
chunk boundary, so no token ever spans two chunks:

* ``pattern=None``: one chunk per **line** (a line keeps its trailing ``"\\n"``). Tokens can
  contain a newline only at their end, never span two lines.
* ``pattern="gpt2"`` / ``"gpt4"``: the pre-splitting regex of GPT-2 / GPT-4 (tiktoken's
  ``cl100k_base``) that separates words, numbers, punctuation and whitespace, so that,
  for example, ``"dog."`` and ``"dog!"`` share the token for ``"dog"``.

Training uses **incremental pair counts** (the way real trainers do it): the corpus is
held as its unique chunks with their counts, a ``pair -> count`` table and a ``pair ->
chunk ids`` index are built once, and a merge only revisits the chunks that contain the
merged pair, adjusting the counts of the pairs around each merged occurrence. The best
pair is taken from a heap. Ties are broken deterministically: the highest count wins,
then the smallest pair ``(left_id, right_id)``. :func:`naive_train` is the textbook
algorithm (recount every pair after every merge) with the same tie rule; it learns
exactly the same merges, only much more slowly.

>>> tok = BPETokenizer.train("low lower lowest " * 20, vocab_size=260)
>>> tok.decode(tok.encode("lowest"))
'lowest'
"""

from __future__ import annotations

import heapq
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import pairwise, repeat
from typing import Any

import regex

from .base import Tokenizer, check_ids

#: GPT-2's pre-splitting regex (openai/gpt-2, ``encoder.py``).
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
#: GPT-4's pre-splitting regex (tiktoken ``cl100k_base``).
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)
#: The chunking used without a pattern: each line with its trailing newline.
LINE_PATTERN = r"[^\n]*\n|[^\n]+"

PATTERNS = {None: LINE_PATTERN, "gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}

Pair = tuple[int, int]
_NO_MERGE = 1 << 62  # larger than any token id


# -- chunking ------------------------------------------------------------------------------


def _check_pattern(pattern: str | None) -> str | None:
    if pattern not in PATTERNS:
        raise ValueError(f'pattern must be None, "gpt2" or "gpt4", got {pattern!r}')
    return pattern


def split_chunks(data: bytes, pattern: str | None = None) -> list[bytes]:
    """Cut ``data`` into the chunks that BPE works on; ``b"".join`` of them is ``data``.

    The regex runs on text, so the bytes are decoded with ``surrogateescape``: each byte
    that is not valid UTF-8 becomes one lone surrogate, which the regex treats as
    punctuation, and encoding the chunks back gives exactly the original bytes.
    """
    _check_pattern(pattern)
    if pattern is None:
        return [m.group() for m in regex.finditer(LINE_PATTERN.encode(), data)]
    text = data.decode("utf-8", errors="surrogateescape")
    chunks = regex.findall(PATTERNS[pattern], text)
    return [c.encode("utf-8", errors="surrogateescape") for c in chunks]


def _text_bytes(text: str, name: str = "text") -> bytes:
    """UTF-8 bytes of ``text``; a clear ValueError for non-strings and lone surrogates."""
    if not isinstance(text, str):
        raise ValueError(f"{name} must be a str, got {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"{name} has a lone surrogate {text[err.start]!r} at position {err.start}, which "
            "UTF-8 cannot encode; pass its bytes to encode_bytes, e.g. "
            "text.encode('utf-8', 'surrogatepass')"
        ) from None


def _check_train_args(text: str, vocab_size: int, pattern: str | None) -> bytes:
    data = _text_bytes(text)
    if not data:
        raise ValueError("text must be a non-empty string")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
        raise ValueError(
            f"vocab_size must be an integer >= 256 (the 256 bytes), got {vocab_size!r}"
        )
    _check_pattern(pattern)
    return data


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids``, left to right, by ``new_id``.

    Occurrences do not overlap: ``merge([1, 1, 1], (1, 1), 9) == [9, 1]``.
    """
    return _replace(ids, _occurrences(ids, pair), new_id)


def _occurrences(ids: Sequence[int], pair: Pair) -> list[int]:
    """Start positions of the non-overlapping occurrences of ``pair``, left to right."""
    a, b = pair
    starts, i, last = [], 0, len(ids) - 1
    while True:
        try:
            i = ids.index(a, i, last)  # C-speed search for the left token
        except ValueError:
            return starts
        if ids[i + 1] == b:
            starts.append(i)
            i += 2
        else:
            i += 1


def _replace(ids: Sequence[int], starts: list[int], new_id: int) -> list[int]:
    """``ids`` with the pairs starting at ``starts`` replaced by ``new_id``."""
    out: list[int] = []
    prev = 0
    for i in starts:
        out += ids[prev:i]  # copy the run before the occurrence by a slice: C speed
        out.append(new_id)
        prev = i + 2
    out += ids[prev:]
    return out


def _early_stop_warning(n_merges: int, wanted: int) -> None:
    warnings.warn(
        f"the text has no pair left to merge after {n_merges} of {wanted} merges; "
        f"the vocabulary has {256 + n_merges} tokens instead of {256 + wanted}",
        stacklevel=3,
    )


# -- the textbook trainer ------------------------------------------------------------------


def naive_train(text: str, vocab_size: int, pattern: str | None = None) -> BPETokenizer:
    """Reference trainer: recount all pairs of the whole corpus after every merge.

    This is the algorithm of the popular tutorials (minbpe), with one change: ties are
    broken by the smallest pair instead of by dictionary order, so that it is
    deterministic and learns exactly the merges of :meth:`BPETokenizer.train`. It costs
    one pass over the whole corpus per merge; use it on small texts only.
    """
    data = _check_train_args(text, vocab_size, pattern)
    chunks = [list(c) for c in split_chunks(data, pattern)]
    merges: list[Pair] = []
    for new_id in range(256, vocab_size):
        counts: Counter[Pair] = Counter()
        for ids in chunks:
            counts.update(pairwise(ids))
        if not counts:
            _early_stop_warning(len(merges), vocab_size - 256)
            break
        best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        chunks = [merge(ids, best, new_id) for ids in chunks]
        merges.append(best)
    return BPETokenizer(merges, pattern=pattern)


# -- the fast trainer ----------------------------------------------------------------------


class _PairStats:
    """Pair counts over unique chunks, kept up to date merge by merge.

    ``words[w]`` is the current token list of unique chunk ``w`` and ``freqs[w]`` how often
    it occurs. ``counts[pair]`` is the number of occurrences of ``pair`` in the corpus
    (weighted by ``freqs``); ``where[pair]`` is a superset of the chunks containing it
    (entries that have become stale are harmless: such chunks are skipped). ``heap`` holds
    ``(-count, pair)`` entries; an entry whose count is no longer current is dropped when
    popped (lazy deletion).
    """

    def __init__(self, chunk_counts: Counter[bytes]):
        self.words = [list(c) for c in chunk_counts]
        self.freqs = list(chunk_counts.values())
        self.counts: dict[Pair, int] = {}
        self.where: defaultdict[Pair, set[int]] = defaultdict(set)
        for w, (ids, f) in enumerate(zip(self.words, self.freqs, strict=True)):
            for pair in pairwise(ids):
                self.counts[pair] = self.counts.get(pair, 0) + f
                self.where[pair].add(w)
        self.heap = [(-c, p) for p, c in self.counts.items()]
        heapq.heapify(self.heap)

    def best(self) -> Pair | None:
        """The pair with the highest count (then the smallest pair), or None if none is left."""
        while self.heap:
            neg, pair = self.heap[0]
            if self.counts.get(pair) == -neg:
                return pair
            heapq.heappop(self.heap)
        return None

    def merge(self, pair: Pair, new_id: int) -> None:
        """Merge ``pair`` into ``new_id`` in every chunk that has it; update counts and index."""
        delta: dict[Pair, int] = {}
        for w in self.where.pop(pair):
            self._merge_word(w, pair, new_id, delta)
        del self.counts[pair]
        delta.pop(pair, None)
        for p, d in delta.items():
            if d:
                c = self.counts.get(p, 0) + d
                if c:
                    self.counts[p] = c
                    heapq.heappush(self.heap, (-c, p))
                else:
                    del self.counts[p]

    def _merge_word(self, w: int, pair: Pair, new_id: int, delta: dict[Pair, int]) -> None:
        """Merge ``pair`` in chunk ``w``; add the count changes of the other pairs to ``delta``.

        Only the pairs next to a merged occurrence change: ``x a b y -> x X y`` takes one
        ``(x, a)`` and one ``(b, y)`` away and adds one ``(x, X)`` and one ``(X, y)``. When two
        occurrences touch (``a b a b -> X X``), the pair between them, ``(b, a)`` before
        and ``(X, X)`` after, is handled once, as the left neighbour of the second.
        """
        old = self.words[w]
        starts = _occurrences(old, pair)
        if not starts:
            return  # a stale index entry
        a, b = pair
        f, n, last = self.freqs[w], len(old), len(starts) - 1
        gone: list[Pair] = []
        born: list[Pair] = []
        for k, i in enumerate(starts):
            if k and starts[k - 1] == i - 2:  # touches the previous occurrence
                gone.append((b, a))
                born.append((new_id, new_id))
            elif i > 0:
                gone.append((old[i - 1], a))
                born.append((old[i - 1], new_id))
            if i + 2 < n and not (k < last and starts[k + 1] == i + 2):
                gone.append((b, old[i + 2]))
                born.append((new_id, old[i + 2]))
        self.words[w] = _replace(old, starts, new_id)
        for p in gone:
            delta[p] = delta.get(p, 0) - f
        for p in born:
            delta[p] = delta.get(p, 0) + f
            self.where[p].add(w)


# -- the tokenizer -------------------------------------------------------------------------


class BPETokenizer(Tokenizer):
    """Byte-level BPE: ids 0-255 are bytes, id ``256 + k`` is the ``k``-th merge.

    ``merges[k] = (left, right)`` means token ``256 + k`` stands for token ``left``
    followed by token ``right``. ``pattern`` is how text is cut into chunks (see the
    module docstring); it must be the same for training and encoding, so it is part of
    the tokenizer and of its file. ``encode`` remembers the ids of each distinct chunk
    (up to :attr:`CACHE_SIZE` of them), so repeated words and lines cost one look-up.
    """

    #: Entries of the per-chunk encoding cache before it is emptied.
    CACHE_SIZE = 1 << 17

    def __init__(self, merges: Sequence[Pair] = (), pattern: str | None = None):
        self.pattern = _check_pattern(pattern)
        self.merges: list[Pair] = []
        self.vocab: list[bytes] = [bytes([i]) for i in range(256)]
        for k, pair in enumerate(merges):
            if (
                not isinstance(pair, (tuple, list))
                or len(pair) != 2
                or not all(isinstance(t, int) and not isinstance(t, bool) for t in pair)
                or not all(0 <= t < 256 + k for t in pair)
            ):
                raise ValueError(
                    f"merges[{k}] must be a pair of existing token ids in [0, {256 + k}), "
                    f"got {pair!r}"
                )
            a, b = pair
            self.merges.append((a, b))
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.ranks: dict[Pair, int] = {p: 256 + k for k, p in enumerate(self.merges)}
        self._cache: dict[bytes, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str | None = None) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` with incremental pair counts.

        ``pattern``: ``None`` (one chunk per line), ``"gpt2"`` or ``"gpt4"``. If the text
        runs out of pairs first, training stops early with a warning.
        """
        data = _check_train_args(text, vocab_size, pattern)
        stats = _PairStats(Counter(split_chunks(data, pattern)))
        merges: list[Pair] = []
        for new_id in range(256, vocab_size):
            pair = stats.best()
            if pair is None:
                _early_stop_warning(len(merges), vocab_size - 256)
                break
            stats.merge(pair, new_id)
            merges.append(pair)
        return cls(merges, pattern=pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # -- encoding ----------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (UTF-8 bytes, chunked, merges applied in training order)."""
        return self.encode_bytes(_text_bytes(text))

    def encode_bytes(self, data: bytes) -> list[int]:
        """Token ids of arbitrary ``data``, valid UTF-8 or not."""
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"data must be bytes, got {type(data).__name__}")
        cache, ids = self._cache, []
        for chunk in split_chunks(bytes(data), self.pattern):
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                if len(cache) >= self.CACHE_SIZE:
                    cache.clear()
                chunk_ids = cache[chunk] = self._encode_chunk(chunk)
            ids.extend(chunk_ids)
        return ids

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        """Apply the merges to one chunk: always the earliest-learned pair present first."""
        ids, rank_of, merges = list(chunk), self.ranks.get, self.merges
        while len(ids) >= 2:
            # the smallest id a pair would merge into (_NO_MERGE if none merges): C speed
            best = min(map(rank_of, pairwise(ids), repeat(_NO_MERGE, len(ids) - 1)))
            if best == _NO_MERGE:
                break
            ids = merge(ids, merges[best - 256], best)
        return ids

    # -- decoding ----------------------------------------------------------------------

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The exact bytes of ``ids``."""
        vocab = self.vocab
        return b"".join(vocab[i] for i in check_ids(ids, len(vocab)))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; byte sequences that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_str(self, token_id: int) -> str:
        """A printable rendering of one token (invalid UTF-8 shown as ``\\x..`` escapes)."""
        raw = self.decode_bytes([token_id])
        return raw.decode("utf-8", errors="backslashreplace")

    # -- persistence -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``pattern``, ``merges`` and, for reading only, ``tokens`` (id -> rendering)."""
        return {
            "pattern": self.pattern,
            "merges": [list(p) for p in self.merges],
            "tokens": {str(i): self.token_str(i) for i in range(256, self.vocab_size)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        """Rebuild from ``pattern`` and ``merges`` (``tokens`` is derived and ignored)."""
        if "merges" not in data or not isinstance(data["merges"], list):
            raise ValueError("a BPETokenizer file needs a list 'merges'")
        return cls(
            [tuple(p) if isinstance(p, list) else p for p in data["merges"]],
            pattern=data.get("pattern"),
        )

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, pattern={self.pattern!r})"
