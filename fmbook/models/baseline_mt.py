"""A plain ``torch.nn.Transformer`` translator: the baseline of the translation chapter.

Shapes in comments: B batch, S source length, T target length, C channels (d_model),
V target vocabulary.

Everything is PyTorch's own: :class:`torch.nn.Transformer` (post-norm layers, as in
Vaswani et al., 2017, ReLU feed-forward), with the pieces it leaves to the user added in
the most common way, as in PyTorch's translation tutorial: separate source and target
embeddings scaled by ``sqrt(d_model)``, sinusoidal positions, an untied output layer, a
causal mask for the decoder and key-padding masks for the source. The embeddings start
at N(0, 1/d_model), like :class:`~fmbook.models.transformer.Transformer`'s, so that the
scaled embeddings and the positions have the same size. Decoding is greedy and recomputes
the whole prefix at every step (no key/value cache).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import _checks
from ..generation import greedy_search
from ..nn import SinusoidalPositionalEncoding


@dataclass
class BaselineMTConfig:
    """Sizes of a :class:`BaselineMT` (defaults: the chapter's baseline, 3 + 3 layers of
    width 256). ``pad_id`` marks padded source tokens when no mask is given."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 256
    n_head: int = 4
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    dim_feedforward: int = 1024
    dropout: float = 0.1
    max_len: int = 64
    pad_id: int = 1

    def __post_init__(self):
        _checks.transformer_config(
            self,
            "src_vocab_size",
            "tgt_vocab_size",
            "d_model",
            "n_head",
            "n_encoder_layers",
            "n_decoder_layers",
            "dim_feedforward",
            "max_len",
        )
        _checks.token_id("pad_id", self.pad_id, self.src_vocab_size, "src_vocab_size")


class BaselineMT(nn.Module):
    """``torch.nn.Transformer`` with embeddings, positions and an output layer:
    ``forward(src (B, S), tgt_in (B, T), src_pad_mask=None) -> logits (B, T, V)``.

    The interface is that of :class:`~fmbook.models.transformer.Transformer`, so the same
    :class:`~fmbook.tasks.Seq2Seq` task trains both; ``src_pad_mask`` is True for real
    tokens (default ``src != pad_id``).
    """

    def __init__(self, cfg: BaselineMTConfig):
        super().__init__()
        if not isinstance(cfg, BaselineMTConfig):
            raise ValueError(f"cfg must be a BaselineMTConfig, got {type(cfg).__name__}")
        self.config = cfg
        C = cfg.d_model
        self.src_emb = nn.Embedding(cfg.src_vocab_size, C)
        self.tgt_emb = nn.Embedding(cfg.tgt_vocab_size, C)
        self.pos = SinusoidalPositionalEncoding(C, cfg.max_len)
        self.drop = nn.Dropout(cfg.dropout)
        self.transformer = nn.Transformer(
            d_model=C,
            nhead=cfg.n_head,
            num_encoder_layers=cfg.n_encoder_layers,
            num_decoder_layers=cfg.n_decoder_layers,
            dim_feedforward=cfg.dim_feedforward,
            dropout=cfg.dropout,
            batch_first=True,
        )
        # no nested-tensor fast path in the encoder: it warns with padded batches, and the
        # model should compute the same thing in training and in evaluation
        self.transformer.encoder.enable_nested_tensor = False
        self.transformer.encoder.use_nested_tensor = False
        self.out = nn.Linear(C, cfg.tgt_vocab_size)
        for emb in (self.src_emb, self.tgt_emb):
            nn.init.normal_(emb.weight, std=C**-0.5)

    # <show forward>
    def _embed(self, ids: torch.Tensor, emb: nn.Embedding) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        return self.drop(emb(ids) * math.sqrt(self.config.d_model) + self.pos(pos))

    def forward(self, src, tgt_in, src_pad_mask=None) -> torch.Tensor:
        """src (B, S), tgt_in (B, T) -> logits (B, T, V) (teacher forcing)."""
        mask = self._check(src, tgt_in, src_pad_mask)  # (B, S), True = real token
        T = tgt_in.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(T, device=src.device)
        h = self.transformer(
            self._embed(src, self.src_emb),  # (B, S, C)
            self._embed(tgt_in, self.tgt_emb),  # (B, T, C)
            tgt_mask=causal,  # (T, T): -inf above the diagonal
            src_key_padding_mask=~mask,  # PyTorch: True = ignore
            memory_key_padding_mask=~mask,
            tgt_is_causal=True,
        )  # (B, T, C)
        return self.out(h)  # (B, T, V)

    # </show forward>

    def _check(self, src, tgt_in, src_pad_mask) -> torch.Tensor:
        cfg = self.config
        _checks.ids(src, cfg.src_vocab_size, "src", cfg.max_len)
        _checks.ids(tgt_in, cfg.tgt_vocab_size, "tgt_in", cfg.max_len)
        if src.shape[0] != tgt_in.shape[0]:
            raise ValueError(
                f"src and tgt_in must share the batch size, got {src.shape[0]} and "
                f"{tgt_in.shape[0]}"
            )
        return _checks.right_padding(src, src_pad_mask, cfg.pad_id)

    @torch.no_grad()
    def translate(
        self, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int, src_pad_mask=None
    ) -> torch.Tensor:
        """Greedy translation: src (B, S) -> ids (B, L), L <= max_len, without BOS, each
        row's EOS included and padded with ``eos_id`` after it."""
        cfg = self.config
        _checks.decoding(max_len, bos_id, eos_id, cfg.tgt_vocab_size, 1, cfg.max_len - 1)
        was_training = self.training
        self.eval()
        try:
            start = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
            mask = self._check(src, start, src_pad_mask)
            memory = self.transformer.encoder(
                self._embed(src, self.src_emb), src_key_padding_mask=~mask
            )  # (B, S, C), once for all steps

            def step(prefixes: torch.Tensor) -> torch.Tensor:  # (B, t) -> (B, V)
                t = prefixes.shape[1]
                causal = nn.Transformer.generate_square_subsequent_mask(t, device=src.device)
                h = self.transformer.decoder(
                    self._embed(prefixes, self.tgt_emb),
                    memory,
                    tgt_mask=causal,
                    memory_key_padding_mask=~mask,
                    tgt_is_causal=True,
                )  # (B, t, C)
                return self.out(h[:, -1]).log_softmax(dim=-1)

            out = greedy_search(step, start, max_len, eos_id)
        finally:
            self.train(was_training)
        return out[:, 1:]
