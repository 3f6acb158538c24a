"""Audio for the book: reading WAV files and log-mel spectrograms, with torch only.

* :func:`read_wav` reads PCM WAV with the standard library's :mod:`wave` and numpy
  (8-bit unsigned, 16- and 32-bit signed samples; mono, or several channels averaged),
  scaled to floats in [-1, 1].
* :func:`mel_filterbank` builds triangular filters on the **HTK mel scale**
  ``mel(f) = 2595 * log10(1 + f / 700)`` (inverse ``f = 700 * (10 ** (m / 2595) - 1)``):
  ``n_mels + 2`` points equally spaced in mel between ``f_min`` and ``f_max`` give the
  left edge, centre and right edge of each triangle. Each triangle is 1 at its centre
  frequency and 0 at its neighbours' centres (no area normalisation), so between the first
  and the last centre the weights of every frequency sum to 1.
* :func:`log_mel_spectrogram` is ``log(mel_filterbank @ |STFT|^2 + eps)``, the STFT taken
  with :func:`torch.stft` (Hann window, centred frames).
"""

from __future__ import annotations

import math
import os
import wave

import numpy as np
import torch

_DTYPES = {1: np.uint8, 2: np.int16, 4: np.int32}


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(samples as float32 in [-1, 1], sample rate) of a PCM WAV file; channels averaged."""
    try:
        with wave.open(str(path), "rb") as f:
            width, channels, rate = f.getsampwidth(), f.getnchannels(), f.getframerate()
            raw = f.readframes(f.getnframes())
    except wave.Error as err:
        raise ValueError(f"{path} is not a PCM WAV file: {err}") from None
    if width not in _DTYPES:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported (8, 16 or 32 bit)")
    samples = np.frombuffer(raw, dtype=np.dtype(_DTYPES[width]).newbyteorder("<"))
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        audio = (samples.astype(np.float32) - 128) / 128
    else:
        audio = samples.astype(np.float32) / float(2 ** (8 * width - 1))
    return audio.reshape(-1, channels).mean(axis=1), rate


def hz_to_mel(f):
    """HTK mel scale: ``2595 * log10(1 + f / 700)`` (numbers or tensors)."""
    if torch.is_tensor(f):
        return 2595 * torch.log10(1 + f / 700)
    return 2595 * math.log10(1 + f / 700)


def mel_to_hz(m):
    """Inverse of :func:`hz_to_mel`: ``700 * (10 ** (m / 2595) - 1)``."""
    return 700 * (10 ** (m / 2595) - 1)


def mel_center_frequencies(n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """The ``n_mels + 2`` edge/centre frequencies (Hz), equally spaced in mel."""
    mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    return mel_to_hz(mels)


def mel_filterbank(
    n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular HTK-mel filters, shape ``(n_mels, n_fft // 2 + 1)`` (float32).

    Row ``i`` rises linearly from 0 at point ``i`` to 1 at point ``i + 1`` (its centre)
    and falls to 0 at point ``i + 2`` of :func:`mel_center_frequencies`.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if n_mels < 1 or n_fft < 2 or sample_rate <= 0:
        raise ValueError(
            f"need n_mels >= 1, n_fft >= 2, sample_rate > 0, got {n_mels}, {n_fft}, {sample_rate}"
        )
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got {f_min}, {f_max}")
    points = mel_center_frequencies(n_mels, f_min, f_max)  # (n_mels + 2,)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    left, centre, right = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (freqs - left) / (centre - left)
    falling = (right - freqs) / (right - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0).float()


def log_mel_spectrogram(
    audio: torch.Tensor | np.ndarray,
    sample_rate: int = 8000,
    n_fft: int = 256,
    hop_length: int = 80,
    n_mels: int = 40,
    eps: float = 1e-6,
) -> torch.Tensor:
    """``log(mel power + eps)`` of ``audio`` (shape ``(..., n_samples)``): ``(..., n_mels, frames)``.

    Frames are centred (``frames = 1 + n_samples // hop_length``); defaults are 32 ms
    windows every 10 ms at 8 kHz.
    """
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if audio.shape[-1] == 0:
        raise ValueError("audio must have at least one sample")
    batch_shape = audio.shape[:-1]
    flat = audio.reshape(-1, audio.shape[-1])
    if flat.shape[-1] <= n_fft // 2:  # reflect padding needs more samples than half a window
        flat = torch.nn.functional.pad(flat, (0, n_fft // 2 + 1 - flat.shape[-1]))
    spec = torch.stft(
        flat,
        n_fft=n_fft,
        hop_length=hop_length,
        window=torch.hann_window(n_fft),
        center=True,
        return_complex=True,
    )
    power = spec.abs() ** 2  # (B, n_fft // 2 + 1, frames)
    mel = mel_filterbank(n_mels, n_fft, sample_rate) @ power
    return torch.log(mel + eps).reshape(*batch_shape, n_mels, mel.shape[-1])
