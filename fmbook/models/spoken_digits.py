"""Small models for spoken digits (8 kHz log-mel spectrograms, see :mod:`fmbook.data.fsdd`).

* :class:`DigitCNN` classifies one recording: a 2-D convolutional network over the
  (mel, time) image; convolution along the mel axis shares its weights across frequency,
  so a formant pattern moved up or down (a shorter or longer vocal tract) still matches.
* :class:`CTCRecognizer` reads a string of digits: convolutions over time, a
  bidirectional GRU, and per-frame log-probabilities over blank + 10 digits, for CTC.
* :class:`DigitToMel` generates a log-mel spectrogram from a digit (and a speaker).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks

#: The CTC label of the blank; digit ``d`` is label ``d + 1``.
BLANK = 0


class DigitCNN(nn.Module):
    """``(B, n_mels, frames)`` log-mels -> ``(logits (B, n_classes), loss or None)``.

    The input is standardised by a batch norm (so raw ``log`` values are fine), then
    ``n_blocks`` blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling
    (channels ``channels``, ``2 channels``, ``4 channels``, ...), then the maximum over the
    remaining positions and a linear layer."""

    def __init__(self, n_classes: int = 10, channels: int = 8, n_blocks: int = 4):
        super().__init__()
        _checks.positive_ints(n_classes=n_classes, channels=channels, n_blocks=n_blocks)
        # <show cnn>
        self.norm = nn.BatchNorm2d(1)  # standardises the log-mel values
        widths = [1] + [channels * 2**i for i in range(n_blocks)]
        self.blocks = nn.Sequential(*[
            nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2),
            )
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        ])  # fmt: skip
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, x, labels=None):
        _checks.floats("x", x, min_dim=3)
        h = self.blocks(self.norm(x[:, None]))  # (B, C, n_mels / 2^k, frames / 2^k)
        logits = self.head(h.amax(dim=(-2, -1)))  # strongest response anywhere: (B, K)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return logits, loss
        # </show cnn>


class CTCRecognizer(nn.Module):
    """``(B, n_mels, T)`` log-mels and their lengths -> ``(log_probs (T', B, n_labels),
    lengths (B,))`` with ``T' = ceil(T / 4)`` (one output per 40 ms), ready for
    :class:`torch.nn.CTCLoss`. Label 0 is the blank."""

    def __init__(self, n_mels: int = 40, n_labels: int = 11, channels: int = 64, hidden: int = 64):
        super().__init__()
        _checks.positive_ints(n_mels=n_mels, n_labels=n_labels, channels=channels, hidden=hidden)
        # <show ctc>
        self.norm = nn.BatchNorm1d(n_mels)
        self.conv = nn.Sequential(
            nn.Conv1d(n_mels, channels, 5, stride=2, padding=2), nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.BatchNorm1d(channels),
            nn.ReLU(),
        )  # fmt: skip
        self.rnn = nn.GRU(channels, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, n_labels)

    def forward(self, x, lengths):
        _checks.floats("x", x, min_dim=3)
        h = self.conv(self.norm(x)).transpose(1, 2)  # (B, T', C)
        lengths = ((lengths + 1) // 2 + 1) // 2  # frames after two stride-2 convolutions
        packed = nn.utils.rnn.pack_padded_sequence(
            h, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True)
        log_probs = self.out(h).log_softmax(-1)  # (B, T', n_labels)
        return log_probs.transpose(0, 1), lengths  # (T', B, n_labels): CTCLoss's layout
        # </show ctc>


class DigitToMel(nn.Module):
    """``(digits (B,), speakers (B,))`` -> log-mel spectrograms ``(B, n_mels, n_frames)``.

    Embeddings of the digit and the speaker, a linear layer to ``n_frames / 8`` frames of
    ``width`` channels, and three transposed convolutions that each double the frames.
    It predicts standardised log-mels; ``mean`` and ``std`` (buffers, set from the
    training data with :meth:`fit_scale`) map them back."""

    def __init__(self, n_mels: int = 40, n_frames: int = 80, n_speakers: int = 6, width: int = 128):
        super().__init__()
        _checks.positive_ints(n_mels=n_mels, n_frames=n_frames, n_speakers=n_speakers)
        if n_frames % 8:
            raise ValueError(f"n_frames must be a multiple of 8, got {n_frames}")
        self.n_mels, self.n_frames, self.width = n_mels, n_frames, width
        self.register_buffer("mean", torch.zeros(n_mels, 1))
        self.register_buffer("std", torch.ones(n_mels, 1))
        # <show generator>
        self.digit = nn.Embedding(10, 64)
        self.speaker = nn.Embedding(n_speakers, 32)
        self.start = nn.Linear(96, width * n_frames // 8)

        def up(c_in, c_out):  # doubles the number of frames
            return nn.ConvTranspose1d(c_in, c_out, kernel_size=4, stride=2, padding=1)

        self.upsample = nn.Sequential(
            up(width, width), nn.GELU(), up(width, width), nn.GELU(), up(width, n_mels)
        )

    def forward(self, digits, speakers, target=None):
        z = torch.cat([self.digit(digits), self.speaker(speakers)], -1)  # (B, 96)
        h = self.start(z).view(-1, self.width, self.n_frames // 8)  # (B, width, frames / 8)
        scaled = self.upsample(h)  # (B, n_mels, frames), standardised units
        loss = None
        if target is not None:
            loss = F.l1_loss(scaled, (target - self.mean) / self.std)
        return scaled * self.std + self.mean, loss  # log-mels
        # </show generator>

    @torch.no_grad()
    def fit_scale(self, specs: torch.Tensor) -> None:
        """Set ``mean`` and ``std`` per mel channel from training spectrograms (N, n_mels, T)."""
        if specs.dim() != 3 or specs.shape[1] != self.n_mels:
            raise ValueError(f"specs must be (N, {self.n_mels}, T), got {tuple(specs.shape)}")
        self.mean.copy_(specs.mean(dim=(0, 2))[:, None])
        self.std.copy_(specs.std(dim=(0, 2))[:, None].clamp(min=1e-3))


def digits_to_labels(digits: torch.Tensor) -> torch.Tensor:
    """Digits ``d`` (padding -1) -> CTC labels ``d + 1`` (padding stays -1)."""
    return torch.where(digits >= 0, digits + 1, digits)


__all__ = ["BLANK", "CTCRecognizer", "DigitCNN", "DigitToMel", "digits_to_labels"]
