"""Word2vec: skip-gram with negative sampling (SGNS), Mikolov et al. (2013).

The objective
-------------
Every word ``w`` has two vectors: an *input* (centre) vector ``v_w`` (the rows of ``V``) and an
*output* (context) vector ``u_w`` (the rows of ``U``). For each observed pair (centre ``c``,
context ``o``) within a window, SGNS **maximises**

    log σ(u_o · v_c) + Σ_{i=1..k} log σ(−u_{w_i} · v_c),        w_i ~ P_n,

where σ is the logistic sigmoid and the k negative words ``w_i`` are drawn from the *noise
distribution* ``P_n(w) ∝ count(w)^{3/4}``: the unigram distribution raised to the power 3/4,
which Mikolov et al. found better than the plain unigram (α = 1) or uniform (α = 0)
distribution; it samples rare words more often than their frequency. The loss minimised here
is the negative of that objective, averaged over the pairs of a batch.

The first term pulls the true context towards the centre; the second pushes k random words
away. This is *not* a softmax over the vocabulary, and it does not approximate one: it is a
different objective, k + 1 binary classifications, whose optimum is a shifted PMI (below),
not ``log p(o | c)``. (Noise-contrastive estimation, NCE, is the sampled objective that does
approximate the softmax's maximum-likelihood solution.) The full-softmax skip-gram is
``p(o | c) = exp(u_o·v_c) / Σ_w exp(u_w·v_c)``, with no √|context| scaling; the form
"Σ softmax(similarity(w, word) / √|context|)" that appears in some introductions is neither.

What SGNS learns
----------------
Levy & Goldberg (2014) showed that, when the dimension is large enough for every cell to be
set freely and the negatives follow the context distribution ``P_D(o) = #o / |D|``, the
optimum of the objective summed over a corpus satisfies

    u_o · v_c = PMI(c, o) − log k,     PMI(c, o) = log( #(c,o) · |D| / (#c · #o) ),

a *shifted* pointwise mutual information matrix (:func:`shifted_pmi`). With ``P_n ∝ count^α``
the shift becomes ``log( #(c,o) / (#c · k · P_n(o)) )``.

Pieces
------
* :func:`sgns_loss_and_grads`: the loss of one (or a batch of) pairs with *analytic*
  gradients, for teaching and for checking against autograd.
* :class:`SkipGramNS`: the model (``V`` and ``U`` as ``nn.Embedding``), trained with sampled
  negatives (:meth:`SkipGramNS.forward`) or full-batch on a co-occurrence matrix
  (:meth:`SkipGramNS.expected_loss`); :meth:`SkipGramNS.expected_softmax_loss` is the
  full-softmax objective on the same scores, for comparison.
* :func:`cooccurrence_matrix`, :func:`shifted_pmi`, :func:`most_similar`.

The training data (pairs, subsampling, negative sampling, the data module) live in
:mod:`fmbook.data.skipgram`; the Lightning task in :mod:`fmbook.tasks.skipgram`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.skipgram import _check_ids

# ---------------------------------------------------------------------------- the loss


def sgns_loss_and_grads(v_c: torch.Tensor, u_o: torch.Tensor, u_neg: torch.Tensor):
    """The SGNS loss of (centre, context) pairs and its gradients, written out by hand.

    Shapes: ``v_c`` and ``u_o`` are ``(..., d)``, ``u_neg`` is ``(..., k, d)`` (the same
    leading dims). With ``s_o = u_o·v_c`` and ``s_k = u_k·v_c`` the loss of a pair is

        L = −log σ(s_o) − Σ_k log σ(−s_k)

    and, using ``d/dx log σ(x) = 1 − σ(x)`` and ``d/dx log σ(−x) = −σ(x)``,

        dL/dv_c = −(1 − σ(s_o)) u_o + Σ_k σ(s_k) u_k
        dL/du_o = −(1 − σ(s_o)) v_c
        dL/du_k =  σ(s_k) v_c

    Returns ``(loss, grad_v_c, grad_u_o, grad_u_neg)``: ``loss`` has the leading shape
    ``(...)`` (one loss per pair, not reduced) and each gradient the shape of its argument.
    """
    _check_sgns_args(v_c, u_o, u_neg)
    s_o = (u_o * v_c).sum(-1)  # (...)
    s_neg = (u_neg @ v_c.unsqueeze(-1)).squeeze(-1)  # (..., k)
    loss = -F.logsigmoid(s_o) - F.logsigmoid(-s_neg).sum(-1)
    g_o = torch.sigmoid(s_o) - 1.0  # dL/ds_o = −(1 − σ(s_o))
    g_neg = torch.sigmoid(s_neg)  # dL/ds_k = σ(s_k)
    grad_v_c = g_o.unsqueeze(-1) * u_o + (g_neg.unsqueeze(-1) * u_neg).sum(-2)
    grad_u_o = g_o.unsqueeze(-1) * v_c
    grad_u_neg = g_neg.unsqueeze(-1) * v_c.unsqueeze(-2)
    return loss, grad_v_c, grad_u_o, grad_u_neg


def _check_sgns_args(v_c, u_o, u_neg):
    for name, t in (("v_c", v_c), ("u_o", u_o), ("u_neg", u_neg)):
        if not torch.is_tensor(t) or not t.dtype.is_floating_point:
            raise ValueError(f"{name} must be a floating-point tensor, got {type(t).__name__}")
    if v_c.dim() < 1 or u_o.shape != v_c.shape:
        raise ValueError(
            f"v_c and u_o must have the same shape (..., d), got {tuple(v_c.shape)} "
            f"and {tuple(u_o.shape)}"
        )
    if (
        u_neg.dim() != v_c.dim() + 1
        or u_neg.shape[:-2] != v_c.shape[:-1]
        or (u_neg.shape[-1] != v_c.shape[-1])
    ):
        raise ValueError(
            f"u_neg must have shape (..., k, d) = {(*v_c.shape[:-1], 'k', v_c.shape[-1])}, "
            f"got {tuple(u_neg.shape)}"
        )


def _check_batch(center, context, negatives, vocab_size: int):
    _check_ids("center", center, vocab_size, dim=1)
    _check_ids("context", context, vocab_size, dim=1)
    _check_ids("negatives", negatives, vocab_size, dim=2)
    if not (len(center) == len(context) == len(negatives)) or len(center) == 0:
        raise ValueError(
            "center, context and negatives must share a non-zero batch size, got "
            f"{len(center)}, {len(context)}, {len(negatives)}"
        )


# ---------------------------------------------------------------------------- the model


class SkipGramNS(nn.Module):
    """Skip-gram with negative sampling: input vectors ``V`` (``self.V``, the v_c) and output
    vectors ``U`` (``self.U``, the u_o), both ``nn.Embedding(vocab_size, dim)``.

    Initialisation follows the reference C code: ``V`` uniform in ``±0.5/dim``, ``U`` zero.
    ``sparse=True`` makes the embeddings return sparse gradients (for ``torch.optim.SparseAdam``).
    The word vectors usually reported are the rows of ``V`` (:meth:`word_vectors`).
    """

    def __init__(self, vocab_size: int, dim: int, sparse: bool = False):
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        self.vocab_size, self.dim = vocab_size, dim
        self.V = nn.Embedding(vocab_size, dim, sparse=sparse)
        self.U = nn.Embedding(vocab_size, dim, sparse=sparse)
        nn.init.uniform_(self.V.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.U.weight)

    def forward(self, center, context, negatives) -> torch.Tensor:
        """Mean SGNS loss (negative objective) of the pairs ``(center[i], context[i])``
        with negatives ``negatives[i, :]``: shapes ``(B,)``, ``(B,)``, ``(B, k)``."""
        return self.loss(center, context, negatives)

    def loss(self, center, context, negatives) -> torch.Tensor:
        """See :meth:`forward`."""
        _check_batch(center, context, negatives, self.vocab_size)
        v_c = self.V(center)  # (B, d)
        s_o = (self.U(context) * v_c).sum(-1)  # (B,)
        s_neg = torch.bmm(self.U(negatives), v_c.unsqueeze(-1)).squeeze(-1)  # (B, k)
        return -(F.logsigmoid(s_o) + F.logsigmoid(-s_neg).sum(-1)).mean()

    def scores(self) -> torch.Tensor:
        """The (V, V) matrix of dot products ``S[c, o] = v_c · u_o``."""
        return self.V.weight @ self.U.weight.T

    def expected_loss(self, cooccurrence: torch.Tensor, k: int, noise=None) -> torch.Tensor:
        """The SGNS loss summed over a whole corpus, negatives taken in expectation.

        ``cooccurrence[c, o]`` counts the pairs (c, o); the corpus loss is

            −Σ_{c,o} #(c,o) log σ(v_c·u_o) − k Σ_c #c Σ_o P_n(o) log σ(−v_c·u_o),

        divided by the number of pairs ``|D|``. ``noise`` is ``P_n`` (default: the context
        marginal ``#o/|D|``, the setting of Levy & Goldberg's analysis). Full-batch gradient
        descent on it is deterministic; its optimum is :func:`shifted_pmi`.
        """
        counts = _check_cooccurrence(cooccurrence, self.vocab_size)
        noise = counts.sum(0) / counts.sum() if noise is None else _check_noise(noise, counts)
        s = self.scores().to(counts.dtype)
        positive = (counts * F.logsigmoid(s)).sum()
        negative = k * (counts.sum(1, keepdim=True) * noise[None, :] * F.logsigmoid(-s)).sum()
        return -(positive + negative) / counts.sum()

    def expected_softmax_loss(self, cooccurrence: torch.Tensor) -> torch.Tensor:
        """The full-softmax skip-gram loss of a whole corpus, per pair, with the same scores:

            −Σ_{c,o} #(c,o) log p(o | c) / |D|,   p(o | c) = softmax_o(v_c·u_o).

        Its optimum, with enough dimensions, is ``p(o | c) = #(c,o) / #c``: the scores equal
        ``log p(o | c)`` up to a constant per centre word. The SGNS optimum
        (:meth:`expected_loss`) is a different matrix, :func:`shifted_pmi`.
        """
        counts = _check_cooccurrence(cooccurrence, self.vocab_size)
        log_p = torch.log_softmax(self.scores().to(counts.dtype), dim=1)
        return -(counts * log_p).sum() / counts.sum()

    def word_vectors(self) -> torch.Tensor:
        """The input vectors ``V`` (a detached copy), one row per word."""
        return self.V.weight.detach().clone()


# ---------------------------------------------------------------------------- analysis


def cooccurrence_matrix(centers, contexts, vocab_size: int) -> torch.Tensor:
    """The (V, V) float64 matrix of pair counts ``#(c, o)``."""
    _check_ids("centers", centers, vocab_size, dim=1)
    _check_ids("contexts", contexts, vocab_size, dim=1)
    if len(centers) != len(contexts):
        raise ValueError(f"centers and contexts differ in length: {len(centers)}, {len(contexts)}")
    flat = centers.long() * vocab_size + contexts.long()
    counts = torch.bincount(flat, minlength=vocab_size * vocab_size)
    return counts.view(vocab_size, vocab_size).double()


def _check_cooccurrence(cooccurrence, vocab_size: int | None = None) -> torch.Tensor:
    counts = torch.as_tensor(cooccurrence, dtype=torch.float64)
    if counts.dim() != 2 or (vocab_size is not None and counts.shape != (vocab_size,) * 2):
        want = "(V, V)" if vocab_size is None else f"({vocab_size}, {vocab_size})"
        raise ValueError(f"cooccurrence must have shape {want}, got {tuple(counts.shape)}")
    if (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("cooccurrence must hold non-negative counts, not all zero")
    return counts


def _check_noise(noise, counts) -> torch.Tensor:
    noise = torch.as_tensor(noise, dtype=torch.float64)
    if noise.shape != counts.shape[1:] or (noise < 0).any() or abs(noise.sum() - 1) > 1e-6:
        raise ValueError(f"noise must be a distribution over the {counts.shape[1]} contexts")
    return noise


def shifted_pmi(cooccurrence, k: int, noise=None) -> torch.Tensor:
    """The matrix SGNS factorises (Levy & Goldberg 2014): ``PMI(c, o) − log k``.

    ``PMI(c, o) = log( #(c,o) · |D| / (#c · #o) )`` with ``#c`` the row sums, ``#o`` the
    column sums and ``|D|`` the total of ``cooccurrence``. With a noise distribution
    ``P_n`` other than the context marginal it is ``log( #(c,o) / (#c · k · P_n(o)) )``.
    Pairs never seen get ``-inf`` (the objective pushes their dot product down forever).
    """
    counts = _check_cooccurrence(cooccurrence)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1 (the number of negatives), got {k!r}")
    noise = counts.sum(0) / counts.sum() if noise is None else _check_noise(noise, counts)
    rows = counts.sum(1, keepdim=True)
    return torch.log(counts) - torch.log(rows * k * noise[None, :])


def most_similar(word_vectors: torch.Tensor, idx: int, k: int = 5):
    """The ``k`` words whose vectors have the highest cosine similarity to word ``idx``
    (itself excluded). Returns ``(indices, similarities)``, best first."""
    _check_most_similar_args(word_vectors, idx, k)
    unit = F.normalize(word_vectors.detach().double(), dim=1)
    sims = unit @ unit[idx]
    sims[idx] = -math.inf
    best = torch.topk(sims, k)
    return best.indices, best.values


def _check_most_similar_args(word_vectors, idx, k):
    if not torch.is_tensor(word_vectors) or word_vectors.dim() != 2:
        raise ValueError("word_vectors must be a 2-D tensor (one row per word)")
    n = len(word_vectors)
    if not isinstance(idx, int) or not 0 <= idx < n:
        raise ValueError(f"idx must be an int in [0, {n}), got {idx!r}")
    if not isinstance(k, int) or not 1 <= k < n:
        raise ValueError(f"k must be an int in [1, {n - 1}], got {k!r}")
