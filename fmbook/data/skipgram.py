"""Skip-gram training data: (centre, context) pairs and negatives from a stream of token ids.

The pieces follow the reference word2vec C code (Mikolov et al. 2013):

* :func:`skipgram_pairs`: every (centre, context) pair within a window, optionally with a
  *dynamic* window (each centre draws its reach from ``1..window``);
* :func:`keep_probabilities` and :func:`subsample`: frequent-word subsampling;
* :class:`NegativeSampler`: negatives from the noise distribution ``count ** 0.75``;
* :class:`SkipGramDataModule`: batches ``(center (B,), context (B,), negatives (B, k))``
  for :class:`fmbook.tasks.SkipGram`.

**Fresh pairs every epoch.** The C code (and gensim) subsample and draw the dynamic windows
as they read the corpus, so every pass sees a different sample of pairs. The data module
does the same: each pass over its training loader (each epoch) subsamples the ids and draws
the windows afresh, then shuffles the pairs and serves them in batches, each with fresh
negatives. Batches are cut from the pair tensor by index slicing (no per-pair
``__getitem__`` and collate), so the loaders run in the main process.

**Validation** pairs are drawn once, *the same way* as training pairs (subsampled with the
training counts, dynamic windows), so the validation loss estimates the training objective
on held-out text; their negatives come from a generator of their own, reset at every pass,
so every validation pass scores the same pairs against the same negatives.
"""

from __future__ import annotations

import copy
import math

import lightning as L
import torch


def _check_ids(name: str, ids, vocab_size: int | None = None, dim: int | None = None):
    if not torch.is_tensor(ids) or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor of token ids, got {ids!r:.80}")
    if dim is not None and ids.dim() != dim:
        raise ValueError(f"{name} must have {dim} dims, got shape {tuple(ids.shape)}")
    if vocab_size is not None and ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{name} must lie in [0, vocab_size={vocab_size})")


def skipgram_pairs(ids, window: int, dynamic: bool = False, generator=None):
    """All (centre, context) pairs of a 1-D id sequence with ``|i − j| <= window``.

    With ``dynamic=True`` each centre draws its own window ``b`` uniformly from
    ``1..window`` (as in the reference C code), so near neighbours are paired more often
    than far ones. Returns two 1-D long tensors ``(centers, contexts)``.
    """
    ids = torch.as_tensor(ids)
    _check_ids("ids", ids, dim=1)
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an int >= 1, got {window!r}")
    n = len(ids)
    if dynamic:
        reach = torch.randint(1, window + 1, (n,), generator=generator)
    centers, contexts = [], []
    for offset in range(-window, window + 1):
        if offset == 0 or abs(offset) >= n:
            continue
        pos = torch.arange(max(0, -offset), min(n, n - offset))
        if dynamic:
            pos = pos[reach[pos] >= abs(offset)]
        centers.append(ids[pos])
        contexts.append(ids[pos + offset])
    if not centers:
        raise ValueError(f"ids must hold at least 2 tokens to form pairs, got {n}")
    return torch.cat(centers).long(), torch.cat(contexts).long()


def keep_probabilities(counts, t: float = 1e-5) -> torch.Tensor:
    """Frequent-word subsampling (Mikolov et al. 2013, eq. 5): each occurrence of word ``w``
    is discarded with probability ``1 − sqrt(t / f(w))``, ``f(w) = count(w) / total``.

    Returns the keep probabilities ``min(1, sqrt(t / f(w)))``. Words rarer than ``t`` are
    always kept; a word with frequency ``100 t`` is kept one time in ten. (The released C code
    uses the slightly different ``(sqrt(f/t) + 1) · t/f``.) Typical ``t``: 1e-5 to 1e-3.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("counts must be a non-empty 1-D tensor of non-negative counts")
    if not t > 0:
        raise ValueError(f"t must be > 0, got {t!r}")
    freq = counts / counts.sum()
    keep = torch.sqrt(t / freq.clamp_min(1e-300))
    return keep.clamp(max=1.0)


def subsample(ids, t: float = 1e-5, counts=None, generator=None) -> torch.Tensor:
    """Drop occurrences of frequent words with :func:`keep_probabilities` (``counts``
    default: the counts in ``ids``). Returns the kept ids, in order."""
    ids = torch.as_tensor(ids)
    _check_ids("ids", ids, dim=1)
    if counts is None:
        counts = torch.bincount(ids)
    keep = keep_probabilities(counts, t)
    if ids.numel() and ids.max() >= len(keep):
        raise ValueError(f"ids must lie in [0, len(counts)={len(keep)})")
    draw = torch.rand(len(ids), generator=generator, dtype=torch.float64)
    return ids[draw < keep[ids]]


class NegativeSampler:
    """Draws negative words from ``P_n(w) ∝ count(w) ** power`` (default 3/4).

    ``probs`` holds ``P_n``. ``sample(shape)`` draws with replacement by Walker's alias
    method (exact, two uniform draws per sample; ``torch.multinomial`` gives the same
    distribution but is several times slower), from the given generator, so draws are
    reproducible. Negatives equal to the positive context are not rejected (as in most
    implementations; with a large vocabulary it hardly matters).
    """

    def __init__(self, counts, power: float = 0.75, generator: torch.Generator | None = None):
        counts = torch.as_tensor(counts, dtype=torch.float64)
        if counts.dim() != 1 or len(counts) < 2 or (counts < 0).any() or counts.sum() <= 0:
            raise ValueError("counts must be a 1-D tensor of >= 2 non-negative counts, not all 0")
        if not math.isfinite(power) or power < 0:
            raise ValueError(f"power must be a finite number >= 0, got {power!r}")
        weights = torch.where(counts > 0, counts**power, torch.zeros_like(counts))
        self.probs = weights / weights.sum()
        self.generator = generator
        self._keep, self._alias = _alias_table(self.probs)

    def sample(self, *shape: int) -> torch.Tensor:
        """A long tensor of the given shape of word ids drawn from ``P_n``."""
        if math.prod(shape) <= 0:
            raise ValueError(f"shape must have positive entries, got {shape}")
        column = torch.randint(len(self.probs), shape, generator=self.generator)
        coin = torch.rand(shape, generator=self.generator, dtype=torch.float64)
        return torch.where(coin < self._keep[column], column, self._alias[column])


def _alias_table(probs: torch.Tensor):
    """Walker's alias table (Vose's construction): column ``i`` keeps ``i`` with probability
    ``keep[i]`` and otherwise gives ``alias[i]``; a uniform column then samples ``probs``."""
    n = len(probs)
    scaled = (probs * n).tolist()
    keep, alias = [1.0] * n, list(range(n))
    small = [i for i, p in enumerate(scaled) if p < 1.0]
    large = [i for i, p in enumerate(scaled) if p >= 1.0]
    while small and large:
        s, g = small.pop(), large[-1]
        keep[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        if scaled[g] < 1.0:
            small.append(large.pop())
    return torch.tensor(keep, dtype=torch.float64), torch.tensor(alias)


class _Batches:
    """An iterable over batches ``(center, context, negatives)`` of a ``(N, 2)`` pair tensor,
    the negatives drawn from ``noise`` (a :class:`NegativeSampler`).

    Each pass (``iter``) first calls ``draw()`` for the pairs, when given (training: fresh
    pairs every epoch), and shuffles them with ``shuffle`` (a generator), when given. With
    ``noise_seed`` the noise generator is reset at the start of every pass. It has
    no ``len``: the number of pairs changes from epoch to epoch, and Lightning then ends an
    epoch when the iterator does.
    """

    def __init__(
        self, pairs, batch_size, noise, negatives, draw=None, shuffle=None, noise_seed=None
    ):
        self.pairs, self.batch_size, self.draw = pairs, batch_size, draw
        self.noise, self.negatives, self.shuffle = noise, negatives, shuffle
        self.noise_seed = noise_seed

    def __iter__(self):
        if self.noise_seed is not None:  # the same negatives on every pass
            self.noise.generator.manual_seed(self.noise_seed)
        pairs = self.pairs if self.draw is None else self.draw()
        if self.shuffle is not None:
            pairs = pairs[torch.randperm(len(pairs), generator=self.shuffle)]
        for start in range(0, len(pairs), self.batch_size):
            batch = pairs[start : start + self.batch_size]  # (B, 2)
            yield batch[:, 0], batch[:, 1], self.noise.sample(len(batch), self.negatives)


class SkipGramDataModule(L.LightningDataModule):
    """Batches of skip-gram pairs with fresh negatives, from token ids.

    ``train_ids`` (and optionally ``val_ids``) are 1-D sequences of ids in
    ``[0, vocab_size)``. ``subsample_t`` (e.g. 1e-4) turns on frequent-word subsampling of
    the training ids; ``dynamic_window`` draws each centre's window from ``1..window``. Both
    are drawn afresh for every epoch (:meth:`draw_pairs`); ``train_pairs`` holds the
    current epoch's pairs as an ``(N, 2)`` tensor of (centre, context) rows (``setup``
    draws the first epoch's). Validation pairs (``val_pairs``) are drawn once in the same
    way, from ``val_ids``, with the training counts for subsampling, and stay fixed, as do
    their negatives. The noise distribution uses the training counts raised to ``power``.
    All draws come from generators seeded with ``seed`` (training), ``seed + 1``
    (shuffling) and ``seed + 2`` (validation).
    """

    def __init__(
        self,
        train_ids,
        vocab_size: int,
        *,
        val_ids=None,
        window: int = 5,
        negatives: int = 5,
        batch_size: int = 1024,
        dynamic_window: bool = True,
        subsample_t: float | None = None,
        power: float = 0.75,
        seed: int = 0,
    ):
        super().__init__()
        for name, value in (("negatives", negatives), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.train_ids = _as_ids("train_ids", train_ids, vocab_size)
        self.val_ids = None if val_ids is None else _as_ids("val_ids", val_ids, vocab_size)
        self.vocab_size, self.window, self.negatives = vocab_size, window, negatives
        self.batch_size, self.dynamic_window = batch_size, dynamic_window
        self.subsample_t, self.power, self.seed = subsample_t, power, seed
        self.train_pairs = self.val_pairs = None

    def setup(self, stage: str | None = None):
        if self.train_pairs is not None:
            return
        self._generator = torch.Generator().manual_seed(self.seed)
        self.counts = torch.bincount(self.train_ids, minlength=self.vocab_size)
        self.train_pairs = self.draw_pairs()
        self._first_epoch = True  # the first pass serves the pairs drawn here
        self.sampler = NegativeSampler(self.counts, power=self.power, generator=self._generator)
        self._shuffle = torch.Generator().manual_seed(self.seed + 1)
        if self.val_ids is not None:  # drawn once like the training pairs, own generator
            self.val_pairs = self.draw_pairs(
                self.val_ids, torch.Generator().manual_seed(self.seed + 2)
            )
            self._val_sampler = copy.copy(self.sampler)
            self._val_sampler.generator = torch.Generator()

    def draw_pairs(self, ids=None, generator=None) -> torch.Tensor:
        """One epoch's training pairs ``(N, 2)``: subsampling and dynamic windows drawn afresh
        (from ``ids`` and ``generator`` when given, else the training ids and generator)."""
        ids = self.train_ids if ids is None else ids
        g = self._generator if generator is None else generator
        if self.subsample_t is not None:
            ids = subsample(ids, self.subsample_t, counts=self.counts, generator=g)
        return torch.stack(skipgram_pairs(ids, self.window, self.dynamic_window, g), 1)

    def _next_epoch(self) -> torch.Tensor:
        if not self._first_epoch:
            self.train_pairs = self.draw_pairs()
        self._first_epoch = False
        return self.train_pairs

    def train_dataloader(self) -> _Batches:
        """Shuffled training batches; every pass over it is a new epoch with fresh pairs."""
        return _Batches(
            None, self.batch_size, self.sampler, self.negatives, self._next_epoch, self._shuffle
        )

    def val_dataloader(self):
        """Validation batches, or an empty list (Lightning then skips validation) when no
        ``val_ids`` were given."""
        if self.val_pairs is None:
            return []
        return _Batches(
            self.val_pairs,
            self.batch_size,
            self._val_sampler,
            self.negatives,
            noise_seed=self.seed + 3,
        )


def _as_ids(name, ids, vocab_size) -> torch.Tensor:
    ids = torch.as_tensor(ids)
    if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"{name} must be a 1-D sequence of integer ids")
    if len(ids) < 2 or ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"{name} must hold >= 2 ids in [0, vocab_size={vocab_size})")
    return ids.long()
