"""An LSTM encoder-decoder (Sutskever et al. 2014) for sequence-to-sequence tasks.

The encoder reads the source (embedding + LSTM) and its **final (h, c) state initialises
the decoder**, which then predicts the target one token at a time. Training uses teacher
forcing: the decoder reads the gold target shifted right (``tgt_in = [BOS, y1, ..., y_{n-1}]``)
and is scored on ``tgt_out = [y1, ..., y_n, EOS]`` with ``cross_entropy(...,
ignore_index=pad_id)`` on *integer* class ids (:func:`seq2seq_loss`).

What this fixes
---------------
The code example of the book's source outline had two bugs that this module avoids:

1. **The decoder was not conditioned on the source.** Its LSTM started from the default zero
   state instead of the encoder's final ``(h, c)``, so it was a language model of the targets
   that never saw the input: it can learn the target distribution but cannot translate.
   Here ``forward`` passes the encoder state to the decoder; ``tests/test_lstm_seq2seq.py``
   checks that changing the source changes the logits.
2. **The loss and the targets did not match.** The outline used a one-hot loss
   (Keras' ``categorical_crossentropy``, which expects a ``V``-wide probability vector per
   token) with *integer* target ids. The loss here takes integer ids, as
   ``F.cross_entropy`` does, with ``ignore_index=pad_id``, so padded positions contribute
   nothing (a one-hot target has no ``ignore_index``: pads are either trained on or
   silently counted in the mean). The chapter ``5-practice/lstm-seq2seq`` shows what each
   mismatch does.

Reproducing bug 1
-----------------
``LSTMSeq2Seq(..., condition_on_source=False)`` rebuilds the first bug on purpose: the
encoder is built (as in the buggy code) but its state is dropped, so the decoder starts
from zeros. The model is then a language model of the targets: its logits do not depend on
``src`` at all, and greedy decoding returns the same sentence for every source. The
encoder's parameters receive no gradient.

Padding
-------
Sources are right-padded. ``src_pad_mask`` is a boolean ``(B, T_src)`` tensor that is
**True for real tokens** (the ``fmbook.nn`` convention, as made by
:func:`fmbook.nn.attention.padding_mask`); if it is omitted it is ``src != pad_id``. The
encoder packs the embedded sources with ``pack_padded_sequence``, so each row's final state
is taken after its *last real token*, not after the padding. Padded target positions are
handled by the loss (``ignore_index``); the decoder may run over them harmlessly because
LSTMs are causal.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from .. import _checks


def seq2seq_loss(logits: torch.Tensor, tgt_out: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean cross-entropy over non-pad target positions: ``logits`` (B, T, V) and integer
    targets ``tgt_out`` (B, T)."""
    _checks.class_ids(logits, tgt_out, "tgt_out")
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=pad_id)


class LSTMSeq2Seq(nn.Module):
    """Embedding + LSTM encoder, embedding + LSTM decoder started from the encoder's final
    ``(h, c)``, and a linear head to target-vocabulary logits.

    ``condition_on_source=False`` reproduces the outline's bug: the decoder starts from the
    zero state, so the model ignores the source (a language model of the targets).

    ``forward(src, tgt_in, src_pad_mask=None) -> logits (B, T_tgt, tgt_vocab_size)``;
    :meth:`translate` decodes greedily.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        emb_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        pad_id: int = 0,
        condition_on_source: bool = True,
    ):
        super().__init__()
        if not isinstance(condition_on_source, bool):
            raise ValueError(
                f"condition_on_source must be True or False, got {condition_on_source!r}"
            )
        self.condition_on_source = condition_on_source
        _checks.positive_ints(
            src_vocab_size=src_vocab_size,
            tgt_vocab_size=tgt_vocab_size,
            emb_dim=emb_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
        )
        _checks.dropout(dropout)
        _checks.token_id(
            "pad_id", pad_id, min(src_vocab_size, tgt_vocab_size), "the smaller vocab_size"
        )
        self.src_vocab_size, self.tgt_vocab_size, self.pad_id = (
            src_vocab_size,
            tgt_vocab_size,
            pad_id,
        )
        between = dropout if num_layers > 1 else 0.0  # nn.LSTM drops only between layers
        self.src_embed = nn.Embedding(src_vocab_size, emb_dim, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, emb_dim, padding_idx=pad_id)
        self.encoder = nn.LSTM(emb_dim, hidden_size, num_layers, batch_first=True, dropout=between)
        self.decoder = nn.LSTM(emb_dim, hidden_size, num_layers, batch_first=True, dropout=between)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, tgt_vocab_size)

    # ------------------------------------------------------------------ encoder

    def _lengths(self, src: torch.Tensor, src_pad_mask) -> torch.Tensor:
        mask = _checks.right_padding(src, src_pad_mask, self.pad_id)  # (B, T), True = real
        return mask.sum(1)  # (B,)

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor | None = None):
        """The encoder's final ``(h, c)``, each ``(num_layers, B, hidden_size)``, taken after
        each source's last real token."""
        _checks.ids(src, self.src_vocab_size, "src", any_int=True)
        lengths = self._lengths(src, src_pad_mask)
        embedded = self.dropout(self.src_embed(src))
        packed = pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (h, c) = self.encoder(packed)
        return h, c

    def initial_state(self, src: torch.Tensor, src_pad_mask: torch.Tensor | None = None):
        """The decoder's starting state: the encoder's final ``(h, c)``, or ``None`` (zeros,
        the bug) when ``condition_on_source`` is False."""
        if not self.condition_on_source:
            _checks.ids(src, self.src_vocab_size, "src", any_int=True)
            return None
        return self.encode(src, src_pad_mask)

    # ------------------------------------------------------------------ decoder

    def decode(self, tgt_in: torch.Tensor, state):
        """Run the decoder from ``state`` over ``tgt_in``; returns ``(logits, new_state)``."""
        _checks.ids(tgt_in, self.tgt_vocab_size, "tgt_in", any_int=True)
        out, state = self.decoder(self.dropout(self.tgt_embed(tgt_in)), state)
        return self.head(self.dropout(out)), state

    def forward(self, src, tgt_in, src_pad_mask=None) -> torch.Tensor:
        """Teacher-forced logits ``(B, T_tgt, tgt_vocab_size)``, conditioned on ``src``
        (unless ``condition_on_source`` is False)."""
        _checks.seq2seq_call(self, src, tgt_in)
        logits, _ = self.decode(tgt_in, self.initial_state(src, src_pad_mask))
        return logits

    def loss(self, src, tgt_in, tgt_out, src_pad_mask=None) -> torch.Tensor:
        """Teacher-forced :func:`seq2seq_loss` (pad positions of ``tgt_out`` ignored)."""
        return seq2seq_loss(self(src, tgt_in, src_pad_mask), tgt_out, self.pad_id)

    @torch.no_grad()
    def translate(
        self, src, max_len: int, bos_id: int, eos_id: int, src_pad_mask=None
    ) -> torch.Tensor:
        """Greedy decoding: start from ``bos_id``, feed back the arg-max token, stop a row at
        ``eos_id``. Returns ``(B, <= max_len)`` ids without the BOS; each row ends with its
        EOS (if produced within ``max_len``) followed by ``pad_id``. Runs in eval mode
        (dropout off) and restores the previous mode."""
        _checks.decoding(max_len, bos_id, eos_id, self.tgt_vocab_size)
        was_training = self.training
        self.eval()
        try:
            state = self.initial_state(src, src_pad_mask)
            token = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
            done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
            out = []
            for _ in range(max_len):
                logits, state = self.decode(token, state)
                token = logits[:, -1].argmax(-1, keepdim=True)
                token[done] = self.pad_id
                out.append(token)
                done |= token.squeeze(1) == eos_id
                if done.all():
                    break
            return torch.cat(out, dim=1)
        finally:
            self.train(was_training)
