"""Retrieval for open-book question answering: BM25 (sparse), a dense retriever built on an
encoder, and recall@k.

* :class:`BM25Retriever` scores documents by BM25 (Robertson & Zaragoza, 2009), computed
  by ``bm25s`` (Lu, 2024) over lower-cased word tokens (no stemming, no stop-word list: a
  quoted fragment of two words may consist of stop words only).
* :class:`DenseRetriever` embeds queries and documents with one encoder (the mean of its
  final hidden states over the characters) and ranks by cosine similarity, the shape of
  dense passage retrieval (Karpukhin et al., 2020) without its contrastive training.
* :func:`recall_at_k`: the fraction of queries whose relevant document is among the top k.

>>> bm25 = BM25Retriever(passages)
>>> ranks = bm25.search(["Speak, speak."], k=10)   # (1, 10) document indices
>>> recall_at_k(ranks, relevant=[[3]], k=5)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .nn.pooling import mean_pool


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits and apostrophes inside words)."""
    return re.findall(r"\w+(?:'\w+)*", text.lower())


def _check_k(k, n_docs: int) -> int:
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    return min(k, n_docs)


# <show bm25>
class BM25Retriever:
    """BM25 over ``docs`` with ``bm25s`` (defaults k1=1.5, b=0.75, Lucene's IDF)."""

    def __init__(self, docs: Sequence[str], k1: float = 1.5, b: float = 0.75):
        import bm25s

        if not docs:
            raise ValueError("docs must hold at least one document")
        self.n_docs = len(docs)
        self.index = bm25s.BM25(k1=k1, b=b)
        self.index.index([words(d) for d in docs], show_progress=False)

    def search(self, queries: Sequence[str], k: int = 10) -> np.ndarray:
        """(len(queries), k) document indices, best first."""
        k = _check_k(k, self.n_docs)
        vocab = self.index.vocab_dict
        tokens = [[w for w in words(q) if w in vocab and w] for q in queries]
        ranks = np.tile(np.arange(k), (len(queries), 1))  # no known word: all scores 0
        known = [i for i, t in enumerate(tokens) if t]
        if known:
            found, _ = self.index.retrieve(
                [tokens[i] for i in known], k=k, show_progress=False, n_threads=1
            )
            ranks[known] = found
        return ranks


# </show bm25>


class DenseRetriever:
    """Cosine similarity of mean-pooled final hidden states of ``encoder(ids) -> (B, T, C)``
    (e.g. the book's :class:`~fmbook.models.bert.BERT`); texts are encoded as characters
    by ``tokenizer``, cut to ``max_len`` and padded with ``pad_id``."""

    def __init__(
        self,
        encoder,
        tokenizer,
        docs: Sequence[str],
        *,
        max_len: int = 128,
        pad_id: int = 0,
        batch_size: int = 256,
    ):
        if not docs:
            raise ValueError("docs must hold at least one document")
        self.encoder, self.tokenizer = encoder, tokenizer
        self.max_len, self.pad_id, self.batch_size = max_len, pad_id, batch_size
        self.doc_vectors = self.embed(docs)  # (N, C), unit length

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        was_training = self.encoder.training
        self.encoder.eval()
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i : i + self.batch_size]
            ids = torch.full((len(batch), self.max_len), self.pad_id)  # (B, T)
            for j, text in enumerate(batch):
                row = self.tokenizer.encode(text)[: self.max_len]
                ids[j, : len(row)] = torch.tensor(row)
            keep = ids != self.pad_id  # (B, T)
            h = self.encoder(ids)  # (B, T, C)
            out.append(F.normalize(mean_pool(h, keep), dim=-1))  # (B, C)
        self.encoder.train(was_training)
        return torch.cat(out)

    def search(self, queries: Sequence[str], k: int = 10) -> np.ndarray:
        """(len(queries), k) document indices, most similar first."""
        k = _check_k(k, len(self.doc_vectors))
        scores = self.embed(queries) @ self.doc_vectors.T  # (Q, N) cosine similarities
        return scores.topk(k, dim=-1).indices.numpy()


def recall_at_k(ranks, relevant: Sequence[Sequence[int]], k: int) -> float:
    """The fraction of queries with at least one relevant document among their first k
    ranked ones. ``ranks``: (Q, >= k) document indices, best first; ``relevant[q]``: the
    indices of query q's relevant documents (at least one each)."""
    ranks = np.asarray(ranks)
    if ranks.ndim != 2 or len(ranks) != len(relevant):
        raise ValueError(
            f"ranks must be (n_queries, k) with one row per query: shape {ranks.shape}, "
            f"{len(relevant)} queries"
        )
    if not isinstance(k, int) or not 1 <= k <= ranks.shape[1]:
        raise ValueError(f"k must be an int in [1, {ranks.shape[1]}], got {k!r}")
    if any(len(r) == 0 for r in relevant):
        raise ValueError("every query needs at least one relevant document")
    hits = [
        bool(set(row[:k].tolist()) & set(rel)) for row, rel in zip(ranks, relevant, strict=True)
    ]
    return float(np.mean(hits))


__all__ = ["BM25Retriever", "DenseRetriever", "recall_at_k", "words"]
