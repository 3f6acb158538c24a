"""A bidirectional Transformer encoder (BERT, Devlin et al., 2019) and its two heads.

Shapes in comments: B batch, T time (tokens), C channels (d_model), V vocab, K classes.

Differences from the original BERT, chosen to share ``fmbook.nn`` with the rest of the book:
pre-norm :class:`~fmbook.nn.TransformerBlock` s with a final LayerNorm (the original is
post-norm, with a LayerNorm on the embeddings instead), and exact GELU everywhere.
What makes it BERT is kept: learned positions, optional segment (sentence A/B) embeddings,
attention in both directions with padded keys masked out, the masked-language-model head
tied to the token embeddings, and the 80/10/10 masking rule (:func:`mask_tokens`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks
from ..nn import LayerNorm, LearnedPositionalEmbedding, TransformerBlock
from ..nn.pooling import mean_pool


@dataclass
class BERTConfig:
    """Sizes of a :class:`BERT` encoder.

    ``n_segments``: number of segment types (2 for sentence pairs, 0 for none).
    ``pad_id``: the padding token; when a forward call gets no ``pad_mask``, the keys equal
    to ``pad_id`` are masked out (None: nothing is masked).
    """

    vocab_size: int
    max_len: int = 512
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.1
    n_segments: int = 2
    pad_id: int | None = 0
    bias: bool = True

    def __post_init__(self):
        _checks.transformer_config(self, "vocab_size", "max_len", "n_layer", "n_head", "d_model")
        if not isinstance(self.n_segments, int) or self.n_segments < 0:
            raise ValueError(f"n_segments must be an int >= 0, got {self.n_segments!r}")
        _checks.optional_id("pad_id", self.pad_id, self.vocab_size, "vocab_size")


def _init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for linear and embedding weights, zero biases (BERT's initialisation)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class BERT(nn.Module):
    """Token + position (+ segment) embeddings -> n_layer bidirectional blocks -> LayerNorm.

    ``forward(ids, pad_mask=None, segment_ids=None)`` maps ids (B, T) to hidden states
    (B, T, C). ``pad_mask`` (B, T) is boolean with True for real tokens; padded positions
    are never attended to (their own outputs are computed but meaningless).
    """

    def __init__(self, cfg: BERTConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = LearnedPositionalEmbedding(cfg.max_len, cfg.d_model)
        self.seg_emb = nn.Embedding(cfg.n_segments, cfg.d_model) if cfg.n_segments else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.d_model, cfg.n_head, dropout=cfg.dropout, bias=cfg.bias)
            for _ in range(cfg.n_layer)
        )
        self.ln_f = LayerNorm(cfg.d_model, bias=cfg.bias)
        self.apply(_init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # residual projections, as in GPT-2
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def resolve_pad_mask(self, ids: torch.Tensor, pad_mask) -> torch.Tensor | None:
        """The given pad_mask (checked), else ``ids != pad_id``, else None (no padding)."""
        return _checks.pad_mask(ids, pad_mask, self.config.pad_id)

    def forward(
        self,
        ids: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        _checks.bert_call(self, ids, segment_ids)
        pad_mask = self.resolve_pad_mask(ids, pad_mask)
        pos = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        x = self.tok_emb(ids) + self.pos_emb(pos)  # (B, T, C)
        if segment_ids is not None:
            x = x + self.seg_emb(segment_ids)  # (B, T, C)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, mask=pad_mask)  # pad_mask (B, T) is a key padding mask
        return self.ln_f(x)  # (B, T, C)


def _loss(logits: torch.Tensor, labels, n_classes: int, shape) -> torch.Tensor:
    """Mean cross-entropy over labels != -100, with the labels checked."""
    _checks.labels(labels, n_classes, shape)
    return F.cross_entropy(logits.flatten(0, -2), labels.flatten(), ignore_index=-100)


class BERTForMaskedLM(nn.Module):
    """BERT with the masked-language-model head: dense -> GELU -> LayerNorm -> a linear map to
    the vocabulary whose weight is the token embedding (tied), plus an output bias.

    ``forward(ids, labels=None, pad_mask=None, segment_ids=None)`` returns (logits (B, T, V),
    loss); the loss is the mean cross-entropy over positions whose label is not -100, i.e.
    over the masked positions when the labels come from :func:`mask_tokens`.
    """

    def __init__(self, cfg: BERTConfig):
        super().__init__()
        self.config = cfg
        self.bert = BERT(cfg)
        self.transform = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(), LayerNorm(cfg.d_model, bias=cfg.bias)
        )
        self.transform.apply(_init_weights)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, ids, labels=None, pad_mask=None, segment_ids=None):
        h = self.transform(self.bert(ids, pad_mask, segment_ids))  # (B, T, C)
        logits = F.linear(h, self.bert.tok_emb.weight, self.bias)  # (B, T, V), tied weights
        loss = None if labels is None else _loss(logits, labels, self.config.vocab_size, ids.shape)
        return logits, loss


class BERTForSequenceClassification(nn.Module):
    """BERT plus a linear classifier on one vector per sequence.

    ``pooling="cls"`` (BERT's choice): the final state of the first token (the ``[CLS]``
    token the data must put there) through a dense layer and tanh, as in the original
    pooler. ``pooling="mean"``: the mean of the final states over the non-pad tokens (as in
    Sentence-BERT); it needs no special first token and often works better without
    pretraining. ``forward(ids, labels=None, pad_mask=None, segment_ids=None)`` returns
    (logits (B, n_classes), loss).
    """

    def __init__(self, cfg: BERTConfig, n_classes: int, pooling: str = "cls"):
        super().__init__()
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        _checks.one_of("pooling", pooling, ("cls", "mean"))
        self.config, self.n_classes, self.pooling = cfg, n_classes, pooling
        self.bert = BERT(cfg)
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model) if pooling == "cls" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.d_model, n_classes)
        for module in (self.pooler, self.classifier):
            if module is not None:
                _init_weights(module)

    def pool(self, h: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        """Hidden states (B, T, C) -> one vector per sequence (B, C)."""
        if self.pooling == "cls":
            return torch.tanh(self.pooler(h[:, 0]))
        if pad_mask is None:
            return h.mean(dim=1)
        return mean_pool(h, pad_mask)  # (B, C)

    def forward(self, ids, labels=None, pad_mask=None, segment_ids=None):
        h = self.bert(ids, pad_mask, segment_ids)  # (B, T, C), ids checked here
        pad_mask = self.bert.resolve_pad_mask(ids, pad_mask)
        logits = self.classifier(self.drop(self.pool(h, pad_mask)))  # (B, n_classes)
        loss = None
        if labels is not None:
            loss = _loss(logits, labels, self.n_classes, ids.shape[:1])
        return logits, loss


class BERTForQuestionAnswering(nn.Module):
    """BERT plus a span head for extractive QA (Devlin et al., 2019, SQuAD): one linear map
    gives every token a start score and an end score.

    ``forward(ids, starts=None, ends=None, allowed=None)`` returns (start logits (B, T),
    end logits (B, T), loss). ``allowed`` (B, T) is True where an answer may lie (the
    context); other positions get -inf. The loss is the mean of the two cross-entropies
    of the true start and end positions, as in BERT.
    """

    def __init__(self, cfg: BERTConfig):
        super().__init__()
        self.config = cfg
        self.bert = BERT(cfg)
        self.span = nn.Linear(cfg.d_model, 2)
        _init_weights(self.span)

    def forward(self, ids, starts=None, ends=None, allowed=None):
        h = self.bert(ids)  # (B, T, C)
        start_logits, end_logits = self.span(h).unbind(-1)  # (B, T) each
        if allowed is not None:
            start_logits = start_logits.masked_fill(~allowed, float("-inf"))
            end_logits = end_logits.masked_fill(~allowed, float("-inf"))
        loss = None
        if starts is not None and ends is not None:
            loss = (F.cross_entropy(start_logits, starts) + F.cross_entropy(end_logits, ends)) / 2
        return start_logits, end_logits, loss


@torch.no_grad()
def best_span(start_logits, end_logits, max_answer_len: int = 30):
    """The span (s, e) with s <= e < s + max_answer_len that maximises
    start_logits[s] + end_logits[e], for each row; returns starts (B,), ends (B,)."""
    _checks.span_logits(start_logits, end_logits, max_answer_len)
    T = start_logits.shape[1]
    scores = start_logits[:, :, None] + end_logits[:, None, :]  # (B, T, T): [b, s, e]
    s, e = torch.arange(T)[:, None], torch.arange(T)[None, :]
    ok = (e >= s) & (e < s + max_answer_len)  # (T, T)
    scores = scores.masked_fill(~ok.to(scores.device), float("-inf")).flatten(1)  # (B, T*T)
    best = scores.argmax(-1)  # (B,)
    return best // T, best % T


# ---------------------------------------------------------------------------- masking


def mask_tokens(
    ids: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int] = (),
    p: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masking of BERT's masked-language-model objective (Devlin et al., 2019).

    Each token that is not special (not in ``special_ids``, not ``mask_id``) is *selected*
    independently with probability ``p``. A selected token is replaced by ``mask_id`` with
    probability 0.8, by a random token with probability 0.1, and kept with probability 0.1
    (the model must therefore predict every input token, not only ``[MASK]`` ones). Random
    tokens are drawn uniformly from the non-special ids, so a random replacement may
    happen to equal the original token.

    Returns (inputs, labels), both like ``ids``: labels hold the original id at selected
    positions and -100 (ignored by the loss) elsewhere. Random draws use ``generator``
    (on the device of ``ids``) for reproducible masks.
    """
    specials = _checks.masking(ids, mask_id, vocab_size, special_ids, p)  # special ids + mask_id
    device = ids.device

    def uniform() -> torch.Tensor:
        return torch.rand(ids.shape, generator=generator, device=device)

    maskable = ~torch.isin(ids, specials)
    selected = (uniform() < p) & maskable
    labels = ids.masked_fill(~selected, -100)
    action = uniform()  # [0, 0.8): mask, [0.8, 0.9): random, [0.9, 1): keep
    every_id = torch.arange(vocab_size, device=device)
    pool = every_id[~torch.isin(every_id, specials)]  # ordinary ids, for random replacements
    random_ids = pool[torch.randint(len(pool), ids.shape, generator=generator, device=device)]
    inputs = torch.where(selected & (action < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(selected & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    return inputs, labels
