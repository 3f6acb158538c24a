"""Audio helpers (WAV reading, HTK mel filterbank, log-mel) and the FSDD loader and splits."""

import math
import wave

import numpy as np
import pytest
import torch

from fmbook.data import audio, fsdd
from fmbook.data import registry as reg

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def mirror_env(data_mirror, monkeypatch):
    monkeypatch.setenv(reg.MIRROR_ENV, str(data_mirror))
    return data_mirror


# --- audio -----------------------------------------------------------------------------------


def write_wav(path, samples, rate=8000, channels=1):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def test_read_wav_scales_and_averages_channels(tmp_path):
    write_wav(tmp_path / "m.wav", [0, 16384, -32768])
    x, rate = audio.read_wav(tmp_path / "m.wav")
    assert rate == 8000 and x.dtype == np.float32 and x.tolist() == [0.0, 0.5, -1.0]
    write_wav(tmp_path / "s.wav", [16384, 0, -16384, -16384], channels=2)
    assert audio.read_wav(tmp_path / "s.wav")[0].tolist() == [0.25, -0.5]
    (tmp_path / "bad.wav").write_bytes(b"not a wav file")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        audio.read_wav(tmp_path / "bad.wav")


def test_htk_mel_scale():
    assert audio.hz_to_mel(0.0) == 0.0
    assert audio.hz_to_mel(700.0) == pytest.approx(2595 * math.log10(2))
    assert audio.mel_to_hz(audio.hz_to_mel(1234.5)) == pytest.approx(1234.5)


def test_filterbank_triangles_peak_at_centres_and_sum_to_one():
    n_mels, n_fft, rate = 20, 512, 8000
    fb = audio.mel_filterbank(n_mels, n_fft, rate)
    assert fb.shape == (n_mels, n_fft // 2 + 1) and fb.min() >= 0 and fb.max() <= 1
    freqs = torch.linspace(0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    points = audio.mel_center_frequencies(n_mels, 0, rate / 2)
    for i, row in enumerate(fb):
        nonzero = torch.nonzero(row).flatten()
        assert freqs[nonzero].min() > points[i] and freqs[nonzero].max() < points[i + 2]
        peak = int(row.argmax())  # an FFT bin next to the centre frequency
        assert abs(freqs[peak] - points[i + 1]) < rate / n_fft  # closer than one bin
        assert row[peak] > 0.5
        up, down = row[: peak + 1], row[peak:]  # one rise, one fall: a triangle
        assert (up.diff() >= 0).all() and (down.diff() <= 0).all()
    inside = (freqs >= points[1]) & (freqs <= points[-2])
    assert torch.allclose(fb.sum(0)[inside], torch.ones(int(inside.sum())), atol=1e-5)
    widths = points[2:] - points[:-2]  # HTK triangles widen with frequency
    assert (widths.diff() > 0).all()
    with pytest.raises(ValueError, match="f_max"):
        audio.mel_filterbank(10, 256, 8000, f_max=5000)


def test_pure_tone_lands_in_the_mel_bin_of_its_frequency():
    rate, n_mels = 8000, 40
    points = audio.mel_center_frequencies(n_mels, 0, rate / 2)
    t = torch.arange(rate) / rate
    for k in (5, 17, 33):
        tone = torch.sin(2 * math.pi * float(points[k + 1]) * t)
        spec = audio.log_mel_spectrogram(tone, rate, n_fft=512, hop_length=160, n_mels=n_mels)
        assert spec.shape == (n_mels, 1 + rate // 160)
        assert int(spec[:, 10:-10].mean(-1).argmax()) == k


def test_log_mel_batches_and_short_input():
    x = torch.randn(3, 2000)
    spec = audio.log_mel_spectrogram(x)
    assert spec.shape == (3, 40, 1 + 2000 // 80)
    assert torch.allclose(spec[1], audio.log_mel_spectrogram(x[1]), atol=1e-5)
    assert audio.log_mel_spectrogram(torch.zeros(10)).shape[0] == 40


# --- FSDD ------------------------------------------------------------------------------------


def test_manifest_covers_the_data_set():
    rows = fsdd.read_manifest()
    assert len(rows) == 3000 and len({r[0] for r in rows}) == 3000
    parsed = [fsdd.parse_name(name) for name, _, _ in rows]
    assert {s for _, s, _ in parsed} == set(fsdd.SPEAKERS)
    assert {d for d, _, _ in parsed} == set(range(10)) and {i for *_, i in parsed} == set(range(50))
    with pytest.raises(ValueError, match="FSDD file name"):
        fsdd.parse_name("7_jackson.wav")


def test_manifest_matches_the_mirror(data_mirror):
    sums = {}
    for line in (data_mirror / "SHA256SUMS").read_text().splitlines():
        sha, path = line.split(maxsplit=1)
        sums[path.removeprefix("./")] = sha
    for name, sha, size in fsdd.read_manifest():
        assert sums[f"fsdd/recordings/{name}"] == sha
        assert (data_mirror / "fsdd" / "recordings" / name).stat().st_size == size


def test_fetch_fsdd_uses_the_mirror_and_checks_each_file(mirror_env, tmp_path):
    names = ["0_george_0.wav", "9_theo_49.wav"]
    assert fsdd.fetch_fsdd(names, cache=tmp_path) == mirror_env / "fsdd" / "recordings"
    record = fsdd.recording_record("0_george_0.wav", "0" * 64, 1)
    assert record.urls == (f"{fsdd.UPSTREAM}0_george_0.wav",)
    assert "/v1.0.10/recordings/" in fsdd.UPSTREAM  # a tag, not a branch that may move
    with pytest.raises(reg.ChecksumError):
        reg.fetch(record, cache=tmp_path)
    with pytest.raises(ValueError, match="not FSDD recordings"):
        fsdd.fetch_fsdd(["x.wav"])


def test_archive_urls_mirror_then_release_then_upstream(monkeypatch):
    monkeypatch.delenv(reg.RELEASE_URL_ENV, raising=False)
    assert fsdd.archive_urls("http://teacher:8000/") == [
        "http://teacher:8000/data-v1/fsdd-recordings.tar",
        "http://teacher:8000/fsdd-recordings.tar",
        f"{reg.RELEASE_URL}/data-v1/fsdd-recordings.tar",
        "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz",
    ]
    assert fsdd.archive_urls() == fsdd.archive_urls("http://x")[2:]


def test_recording_split_counts_and_convention():
    names = [r[0] for r in fsdd.read_manifest()]
    train, val, test = fsdd.split_names(names, "recording")
    assert (len(train), len(val), len(test)) == (2400, 300, 300)
    assert {fsdd.parse_name(n)[2] for n in test} == set(range(5))
    assert {fsdd.parse_name(n)[1] for n in test} == set(fsdd.SPEAKERS)


def test_speaker_split_holds_one_speaker_out():
    names = [r[0] for r in fsdd.read_manifest()]
    train, val, test = fsdd.split_names(names, "speaker", held_out_speaker="lucas")
    assert (len(train), len(val), len(test)) == (2250, 250, 500)
    assert {fsdd.parse_name(n)[1] for n in test} == {"lucas"}
    assert "lucas" not in {fsdd.parse_name(n)[1] for n in train + val}
    with pytest.raises(ValueError, match="held_out_speaker"):
        fsdd.split_names(names, "speaker", held_out_speaker="bob")
    with pytest.raises(ValueError, match="split"):
        fsdd.split_names(names, "random")


def test_datamodule_shapes_and_no_leakage(mirror_env):
    dm = fsdd.SpokenDigitsDataModule(
        split="speaker", held_out_speaker="george", n_mels=32, n_frames=50, batch_size=8,
        speakers=("george", "jackson"),
    )  # fmt: skip
    dm.setup()
    assert [len(d) for d in dm.datasets] == [450, 50, 500]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 32, 50) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert y.dtype == torch.long and 0 <= y.min() and y.max() <= 9
    assert all(fsdd.parse_name(n)[1] == "jackson" for n in dm.names[0] + dm.names[1])
    silence = math.log(fsdd.EPS)
    last = dm.datasets[0].tensors[0][..., -1]
    assert (last == silence).all(-1).any()  # short recordings are padded with silence
    with pytest.raises(ValueError, match="n_mels"):
        fsdd.SpokenDigitsDataModule(n_mels=0)
    with pytest.raises(ValueError, match="speakers"):
        fsdd.SpokenDigitsDataModule(speakers=("bob",))
