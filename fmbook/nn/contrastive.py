"""Contrastive learning of a shared embedding space (CLIP, CLAP): the symmetric InfoNCE loss
and what is measured with it, zero-shot prediction and retrieval recall@k.

>>> loss = info_nce(audio_emb, text_emb, temperature)  # (B, D), (B, D), scalar -> scalar

Row ``i`` of the two batches is a *pair* (a recording and its caption); every other row
of the batch is a negative. InfoNCE (van den Oord et al. 2018) is a cross-entropy over the
batch whose correct class is the diagonal, taken in both directions as in CLIP (Radford
et al. 2021). The common mistakes: one direction only, targets other than
``arange(B)``, forgetting to normalise (a dot product, not a cosine), and a temperature
that may become negative (store its log).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import describe


def similarity_logits(a: torch.Tensor, b: torch.Tensor, temperature) -> torch.Tensor:
    """Cosine similarities of every row of ``a`` (N, D) with every row of ``b`` (M, D),
    divided by ``temperature`` > 0: (N, M)."""
    _check_embeddings(a, b, same_batch=False)
    _check_temperature(temperature)
    # <show logits>
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)  # unit rows: dot = cosine
    return a @ b.T / temperature  # (N, M)
    # </show logits>


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature) -> torch.Tensor:
    """The symmetric InfoNCE loss of CLIP for a batch of pairs ``(a[i], b[i])``:
    the mean of the cross-entropies a -> b (each row of ``a`` must pick its partner among
    the B rows of ``b``) and b -> a. ``a`` and ``b`` are (B, D); ``temperature`` > 0."""
    _check_embeddings(a, b, same_batch=True)
    # <show info_nce>
    logits = similarity_logits(a, b, temperature)  # (B, B); pair i is on the diagonal
    targets = torch.arange(len(a), device=a.device)  # row i's correct column is i
    a_to_b = F.cross_entropy(logits, targets)  # each a picks its b among the batch
    b_to_a = F.cross_entropy(logits.T, targets)  # each b picks its a
    return (a_to_b + b_to_a) / 2
    # </show info_nce>


@torch.no_grad()
def zero_shot_predict(items: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
    """The class of each row of ``items`` (N, D): the index of the most cosine-similar row
    of ``class_embeddings`` (K, D), e.g. the embeddings of K text prompts. Returns (N,)."""
    return similarity_logits(items, class_embeddings, 1.0).argmax(dim=-1)


@torch.no_grad()
def recall_at_k(
    similarity: torch.Tensor,
    query_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    k: int,
) -> float:
    """Retrieval recall@k: the share of queries (rows of ``similarity`` (Q, G)) with at
    least one *relevant* item among their ``k`` most similar gallery items (columns),
    an item being relevant when its label equals the query's label.

    With one relevant item per query this is the usual recall@k of image-text retrieval;
    with classes (every recording of a seven answers "the digit seven") it asks whether a
    right answer is among the first ``k``."""
    _check_recall(similarity, query_labels, gallery_labels, k)
    top = similarity.topk(k, dim=1).indices  # (Q, k) gallery indices
    hits = gallery_labels[top] == query_labels[:, None]  # (Q, k)
    return hits.any(dim=1).float().mean().item()


def _check_embeddings(a, b, same_batch: bool) -> None:
    for name, x in (("a", a), ("b", b)):
        if not torch.is_tensor(x) or x.dim() != 2 or not x.is_floating_point():
            raise ValueError(f"{name} must be a float tensor (batch, dim), got {describe(x)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"the two embeddings must have the same width, got {a.shape[1]} and {b.shape[1]}"
        )
    if same_batch and len(a) != len(b):
        raise ValueError(
            f"info_nce needs pairs: a and b must have the same batch size (row i of a goes "
            f"with row i of b), got {len(a)} and {len(b)}"
        )


def _check_temperature(temperature) -> None:
    value = temperature
    if torch.is_tensor(temperature):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a scalar, got {describe(temperature)}")
        value = temperature.detach().item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"temperature must be > 0 (store it as a log and exponentiate), got {value!r}"
        )


def _check_recall(similarity, query_labels, gallery_labels, k) -> None:
    if not torch.is_tensor(similarity) or similarity.dim() != 2:
        raise ValueError(
            f"similarity must be a (queries, gallery) tensor, got {describe(similarity)}"
        )
    Q, G = similarity.shape
    for name, labels, n in (
        ("query_labels", query_labels, Q),
        ("gallery_labels", gallery_labels, G),
    ):
        if not torch.is_tensor(labels) or labels.shape != (n,):
            raise ValueError(f"{name} must be a tensor of shape ({n},), got {describe(labels)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= G:
        raise ValueError(f"k must be an integer from 1 to the gallery size {G}, got {k!r}")


__all__ = ["info_nce", "recall_at_k", "similarity_logits", "zero_shot_predict"]
