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
* Augmentation: :func:`change_speed` (resampling, which changes tempo and pitch together,
  as in Ko et al., 2015) and :func:`spec_augment` (frequency and time masks, Park et al., 2019).
* Back to audio: :func:`mel_to_power` (least-squares inverse of the filterbank) and
  :func:`griffin_lim` (phase from magnitudes, Griffin & Lim, 1984), both in torch;
  :func:`wav_bytes` writes a WAV file in memory and :class:`AudioPlayers` shows clips as
  HTML ``<audio>`` players in a notebook.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import wave
from collections.abc import Sequence

import numpy as np
import torch

_DTYPES = {1: np.uint8, 2: np.int16, 4: np.int32}


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(samples as float32 in [-1, 1], sample rate) of a PCM WAV file; channels averaged."""
    try:
        with wave.open(str(path), "rb") as f:
            width, channels, rate = f.getsampwidth(), f.getnchannels(), f.getframerate()
            raw = f.readframes(f.getnframes())
    except (wave.Error, EOFError) as err:  # EOFError: a header cut short
        reason = str(err) or "the file ends inside its header"
        raise ValueError(f"{path} is not a PCM WAV file: {reason}") from None
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


def change_speed(audio: torch.Tensor | np.ndarray, factor: float) -> torch.Tensor:
    """``audio`` (..., n) played ``factor`` times faster: linear resampling to ``n / factor``
    samples, which shortens the clip and raises every frequency by ``factor`` (speed
    perturbation)."""
    if not (isinstance(factor, (int, float)) and 0.5 <= factor <= 2.0):
        raise ValueError(f"factor must be a number in [0.5, 2], got {factor!r}")
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if audio.shape[-1] < 2:
        raise ValueError("audio must have at least two samples to be resampled")
    n_out = max(2, round(audio.shape[-1] / factor))
    flat = audio.reshape(-1, 1, audio.shape[-1])
    out = torch.nn.functional.interpolate(flat, size=n_out, mode="linear", align_corners=True)
    return out.reshape(*audio.shape[:-1], n_out)


def spec_augment(
    spec: torch.Tensor,
    max_freq: int = 6,
    max_time: int = 8,
    n_masks: int = 1,
    fill: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment's masks on a batch of spectrograms ``(B, n_mels, frames)``: ``n_masks``
    bands of up to ``max_freq`` mel channels and ``n_masks`` stretches of up to ``max_time``
    frames, each of random width and position per example, set to ``fill`` (default: the
    example's mean value, the zero of normalised features)."""
    if spec.dim() != 3:
        raise ValueError(f"spec must have shape (B, n_mels, frames), got {tuple(spec.shape)}")
    batch, n_mels, n_frames = spec.shape
    masked = torch.zeros_like(spec, dtype=torch.bool)
    # <show spec_augment>
    for size, limit, shape in ((n_mels, max_freq, (1, -1, 1)), (n_frames, max_time, (1, 1, -1))):
        index = torch.arange(size).view(shape)  # along mel channels, then along frames
        for _ in range(n_masks):
            width = torch.randint(0, limit + 1, (batch, 1, 1), generator=generator)
            start = (torch.rand(batch, 1, 1, generator=generator) * (size - width + 1)).long()
            masked |= (index >= start) & (index < start + width)  # a band per example
    # </show spec_augment>
    if fill is None:
        return torch.where(masked, spec.mean(dim=(1, 2), keepdim=True), spec)
    return spec.masked_fill(masked, fill)


def mel_to_power(mel_power: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    """Least-squares inverse of ``mel = filterbank @ power``: ``pinv(filterbank) @ mel``,
    negative values set to 0. Shapes ``(..., n_mels, frames)`` -> ``(..., n_freqs, frames)``.

    40 mel values cannot determine 129 frequency bins: the pseudo-inverse picks the
    smallest-norm power spectrum that has these mel energies, a smooth one."""
    if mel_power.shape[-2] != filterbank.shape[0]:
        raise ValueError(
            f"mel_power has {mel_power.shape[-2]} mel channels, the filterbank {filterbank.shape[0]}"
        )
    return (torch.linalg.pinv(filterbank) @ mel_power).clamp(min=0)


def griffin_lim(
    magnitude: torch.Tensor,
    n_fft: int = 256,
    hop_length: int = 80,
    n_iter: int = 32,
    momentum: float = 0.99,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Audio whose STFT magnitude is close to ``magnitude`` ``(..., n_fft // 2 + 1, frames)``.

    Griffin & Lim's iteration: start from random phases; repeatedly turn the complex
    spectrogram into audio (:func:`torch.istft`), take that audio's STFT, and keep its
    phase with the wanted magnitude. ``momentum`` is the "fast Griffin-Lim" extrapolation
    of Perraudin et al. (2013); 0 gives the original algorithm."""
    if magnitude.shape[-2] != n_fft // 2 + 1:
        raise ValueError(
            f"magnitude must have n_fft // 2 + 1 = {n_fft // 2 + 1} rows, got {magnitude.shape[-2]}"
        )
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    window = torch.hann_window(n_fft, device=magnitude.device)
    length = hop_length * (magnitude.shape[-1] - 1)
    stft = dict(n_fft=n_fft, hop_length=hop_length, window=window, center=True)
    # <show griffin_lim>
    phase = torch.rand(magnitude.shape, generator=generator).to(magnitude.device)
    angles = torch.polar(torch.ones_like(magnitude), 2 * math.pi * phase)
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        audio = torch.istft(magnitude * angles, length=length, **stft)
        rebuilt = torch.stft(audio, return_complex=True, **stft)  # a consistent STFT
        angles = rebuilt + momentum * (rebuilt - previous)  # fast Griffin-Lim step
        previous = rebuilt
        angles = angles / angles.abs().clamp(min=1e-8)  # keep the phase only
    return torch.istft(magnitude * angles, length=length, **stft)
    # </show griffin_lim>


def wav_bytes(audio: torch.Tensor | np.ndarray, sample_rate: int = 8000) -> bytes:
    """A 16-bit mono PCM WAV file (in memory) of ``audio`` (1-D, floats, clipped to [-1, 1])."""
    audio = np.asarray(torch.as_tensor(audio, dtype=torch.float32).cpu())
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"audio must be a non-empty 1-D signal, got shape {audio.shape}")
    samples = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(samples.tobytes())
    return buffer.getvalue()


class AudioPlayers:
    """A table of labelled ``<audio>`` players for a notebook (the WAV data embedded),
    ``columns`` to a row.

    ``clips`` are 1-D signals, each scaled to a peak of 0.9; the plain-text form of the
    object (what a text-only viewer shows) lists the labels."""

    def __init__(
        self, clips: Sequence, labels: Sequence[str], sample_rate: int = 8000, columns: int = 4
    ):
        if len(clips) != len(labels) or not clips:
            raise ValueError(
                f"need as many labels as clips (>= 1), got {len(clips)}, {len(labels)}"
            )
        self.labels = [str(label) for label in labels]
        self.columns = max(1, int(columns))
        self.wavs = []
        for clip in clips:
            clip = torch.as_tensor(clip, dtype=torch.float32)
            self.wavs.append(wav_bytes(0.9 * clip / clip.abs().max().clamp(min=1e-8), sample_rate))

    def _repr_html_(self) -> str:
        cells = []
        for label, wav in zip(self.labels, self.wavs, strict=True):
            data = base64.b64encode(wav).decode("ascii")
            cells.append(
                f'<td style="text-align:center">{html.escape(label)}<br>'
                f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio></td>'
            )
        rows = [cells[i : i + self.columns] for i in range(0, len(cells), self.columns)]
        return "<table>" + "".join(f"<tr>{''.join(r)}</tr>" for r in rows) + "</table>"

    def __repr__(self) -> str:
        return "audio clips: " + ", ".join(self.labels)
