"""Speech pieces: WAV writing and bad WAVs, augmentation, mel inversion and Griffin-Lim,
CTC decoding against brute force, WER, the digit models and the connected-digits data."""

import math
import wave

import numpy as np
import pytest
import torch

from fmbook import ctc
from fmbook.data import audio, fsdd
from fmbook.data import registry as reg
from fmbook.data.connected_digits import ConnectedDigitsDataModule, DigitStrings, collate_strings
from fmbook.metrics import word_error_rate
from fmbook.models.spoken_digits import CTCRecognizer, DigitCNN, DigitToMel, digits_to_labels
from fmbook.tasks.speech import CTCRecognition, SpectrogramGeneration, ctc_log_probs

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def mirror_env(data_mirror, monkeypatch):
    monkeypatch.setenv(reg.MIRROR_ENV, str(data_mirror))
    return data_mirror


# --- audio -----------------------------------------------------------------------------------


def test_wav_bytes_round_trip_and_malformed_wavs(tmp_path):
    x = torch.tensor([0.0, 0.5, -0.5, 1.0, -1.0, 2.0])
    (tmp_path / "ok.wav").write_bytes(audio.wav_bytes(x, 8000))
    back, rate = audio.read_wav(tmp_path / "ok.wav")
    assert rate == 8000 and np.allclose(back, [0, 0.5, -0.5, 1, -1, 1], atol=1e-4)  # clipped
    good = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(good[:20])  # header cut off
    (tmp_path / "riff.wav").write_bytes(b"RIFF" + b"\0" * 40)  # RIFF but not WAVE
    for name in ("truncated.wav", "riff.wav"):
        with pytest.raises(ValueError, match="not a PCM WAV"):
            audio.read_wav(tmp_path / name)
    with wave.open(str(tmp_path / "24bit.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(3)
        f.setframerate(8000)
        f.writeframes(b"\0" * 9)
    with pytest.raises(ValueError, match="24-bit samples are not supported"):
        audio.read_wav(tmp_path / "24bit.wav")
    with pytest.raises(ValueError, match="1-D"):
        audio.wav_bytes(torch.zeros(2, 3))


def test_change_speed_changes_length_and_pitch():
    rate = 8000
    t = torch.arange(rate) / rate
    tone = torch.sin(2 * math.pi * 500 * t)
    fast = audio.change_speed(tone, 1.25)
    assert fast.shape == (6400,)
    peak = np.fft.rfft(fast.numpy()).__abs__().argmax() * rate / len(fast)
    assert abs(peak - 625) < 5  # 500 Hz played 1.25 times faster
    with pytest.raises(ValueError, match="factor"):
        audio.change_speed(tone, 3.0)


def test_spec_augment_masks_bands_of_bounded_width():
    spec = torch.randn(16, 40, 80) + 5
    out = audio.spec_augment(spec, max_freq=6, max_time=8, fill=-100.0,
                             generator=torch.Generator().manual_seed(0))  # fmt: skip
    masked = out == -100.0
    rows = masked.all(-1)  # whole mel channels masked
    cols = masked.all(-2)  # whole frames masked
    assert rows.sum(-1).max() <= 6 and cols.sum(-1).max() <= 8
    assert rows.any() and cols.any()
    assert (masked == (rows[:, :, None] | cols[:, None, :])).all()  # nothing else changed
    assert torch.equal(out[~masked], spec[~masked])
    mean_filled = audio.spec_augment(spec, generator=torch.Generator().manual_seed(0))
    changed = mean_filled != spec
    assert torch.allclose(mean_filled[changed].mean(), spec.mean(), atol=0.2)
    with pytest.raises(ValueError, match="B, n_mels, frames"):
        audio.spec_augment(torch.zeros(40, 80))


def test_mel_inversion_and_griffin_lim_recover_the_spectrogram():
    fb = audio.mel_filterbank(40, 256, 8000)
    power = torch.rand(129, 30, generator=torch.Generator().manual_seed(0))
    approx = audio.mel_to_power(fb @ power, fb)
    assert approx.shape == (129, 30) and (approx >= 0).all()
    exact = torch.linalg.pinv(fb) @ (fb @ power)  # before negative powers are set to 0
    assert torch.allclose(fb @ exact, fb @ power, atol=1e-4)  # F F+ = I: same mel energies
    assert (fb @ approx - fb @ power).norm() < 0.1 * (fb @ power).norm()
    with pytest.raises(ValueError, match="mel channels"):
        audio.mel_to_power(torch.zeros(20, 5), fb)
    # a chirp: Griffin-Lim finds phases whose STFT has (nearly) the wanted magnitude
    t = torch.arange(4000) / 8000
    x = torch.sin(2 * math.pi * (300 + 1500 * t) * t)
    window = torch.hann_window(256)
    magnitude = torch.stft(x, 256, 80, window=window, return_complex=True).abs()

    def error(signal):
        rebuilt = torch.stft(signal, 256, 80, window=window, return_complex=True).abs()
        return float((rebuilt - magnitude).norm() / magnitude.norm())

    g = torch.Generator().manual_seed(0)
    start = audio.griffin_lim(magnitude, n_iter=0, generator=g)  # random phases only
    found = audio.griffin_lim(magnitude, n_iter=60, generator=torch.Generator().manual_seed(0))
    assert found.shape == (80 * (magnitude.shape[-1] - 1),)
    assert error(found) < 0.25 < error(start)
    with pytest.raises(ValueError, match="n_fft // 2 \\+ 1"):
        audio.griffin_lim(torch.ones(100, 10))


def test_audio_players_embed_wavs_and_print_only_labels():
    players = audio.AudioPlayers([torch.randn(800), torch.randn(400)], ["real 3", "<gen>"])
    page = players._repr_html_()
    assert page.count("<audio controls") == 2 and "data:audio/wav;base64," in page
    assert "&lt;gen&gt;" in page and repr(players) == "audio clips: real 3, <gen>"
    with pytest.raises(ValueError, match="labels"):
        audio.AudioPlayers([torch.zeros(3)], [])


# --- CTC decoding ----------------------------------------------------------------------------


def test_collapse_merges_repeats_then_drops_blanks():
    assert ctc.collapse([1, 1, 0, 2, 2, 0, 2]) == [1, 2, 2]
    assert ctc.collapse([0, 0]) == []


def test_beam_search_finds_the_most_probable_labelling_where_greedy_does_not():
    # frames x {blank, a}: the best alignment is "- - -" (empty), but the many alignments
    # of "a" together are more probable than the empty labelling
    probs = torch.tensor([[0.55, 0.45], [0.55, 0.45], [0.55, 0.45]]).log()
    assert ctc.greedy_decode(probs) == []
    p_empty = ctc.labelling_log_prob(probs, [])
    p_a = ctc.labelling_log_prob(probs, [1])
    assert p_a > p_empty
    assert ctc.prefix_beam_search(probs, beam=4) == [1]


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_matches_brute_force_on_random_tiny_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    log_probs = (torch.randn(5, 3, generator=g) * 2).log_softmax(-1)
    labellings = {tuple(ctc.collapse(p)) for p in np.ndindex(*(3,) * 5)}
    scores = {lab: ctc.labelling_log_prob(log_probs, lab) for lab in labellings}
    assert math.isclose(sum(math.exp(s) for s in scores.values()), 1.0, rel_tol=1e-6)
    best = max(scores, key=scores.get)
    found = tuple(ctc.prefix_beam_search(log_probs, beam=len(labellings)))
    assert found == best  # a beam wide enough is exact
    narrow = tuple(ctc.prefix_beam_search(log_probs, beam=1))
    assert scores[narrow] <= scores[best]


def test_ctc_decoders_reject_bad_input():
    with pytest.raises(ValueError, match="T, V"):
        ctc.greedy_decode(torch.zeros(3))
    with pytest.raises(ValueError, match="blank"):
        ctc.prefix_beam_search(torch.zeros(3, 2), blank=5)
    with pytest.raises(ValueError, match="beam"):
        ctc.prefix_beam_search(torch.zeros(3, 2), beam=0)


# --- WER -------------------------------------------------------------------------------------


def test_word_error_rate_counts_edits_over_reference_words():
    # one substitution, one deletion, one insertion over 3 + 2 reference words
    wer = word_error_rate(["1 2 4", "5 6 7"], ["1 2 3", "5 6"])
    assert wer == pytest.approx(2 / 5)
    assert word_error_rate(["1 2"], ["1 2"]) == 0.0
    with pytest.raises(ValueError, match="at least one hypothesis"):
        word_error_rate([], [])
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        word_error_rate(["1"], ["1", "2"])
    with pytest.raises(ValueError, match="lists of strings"):
        word_error_rate("1 2", "1 2")
    with pytest.raises(ValueError, match="no words"):
        word_error_rate([""], [""])


# --- models and tasks ------------------------------------------------------------------------


def test_digit_cnn_shapes_and_frequency_shift_tolerance():
    torch.manual_seed(0)
    model = DigitCNN(channels=4).eval()
    x = torch.randn(3, 40, 80)
    logits, loss = model(x, torch.tensor([0, 1, 2]))
    assert logits.shape == (3, 10) and loss.item() > 0
    assert model(x)[1] is None
    with pytest.raises(ValueError, match="x"):
        model(torch.zeros(3, 40, 80, dtype=torch.long))


def test_ctc_recognizer_lengths_and_training_step():
    torch.manual_seed(0)
    model = CTCRecognizer(n_mels=8, channels=8, hidden=8)
    x, lengths = torch.randn(2, 8, 21), torch.tensor([21, 10])
    log_probs, out = model(x, lengths)
    assert log_probs.shape == (6, 2, 11) and out.tolist() == [6, 3]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(6, 2), atol=1e-5)
    batch = (x, lengths, torch.tensor([[3, 1], [7, -1]]), torch.tensor([2, 1]))
    task = CTCRecognition(model, lr=1e-2, warmup_steps=1, max_steps=10)
    loss, n = task.loss(batch)
    assert n == 2 and loss.item() > 0
    assert digits_to_labels(torch.tensor([0, 9, -1])).tolist() == [1, 10, -1]


def test_digit_to_mel_learns_its_scale():
    model = DigitToMel(n_mels=8, n_frames=16, width=16)
    specs = torch.randn(10, 8, 16) * 3 + 2
    model.fit_scale(specs)
    assert torch.allclose(model.mean.squeeze(), specs.mean(dim=(0, 2)), atol=1e-5)
    out, loss = model(torch.tensor([1, 2]), torch.tensor([0, 5]), specs[:2])
    assert out.shape == (2, 8, 16) and loss.item() > 0
    task = SpectrogramGeneration(model, warmup_steps=1, max_steps=5)
    assert task.training_step((torch.tensor([1]), torch.tensor([0]), specs[:1]), 0) > 0
    with pytest.raises(ValueError, match="multiple of 8"):
        DigitToMel(n_frames=20)


# --- data ------------------------------------------------------------------------------------


def test_digit_strings_join_one_speakers_recordings(mirror_env):
    names = [f"{d}_jackson_{i}.wav" for d in range(10) for i in range(2)]
    data = DigitStrings(names, n_strings=5, min_len=3, max_len=4, gap_frames=2, seed=1)
    specs = fsdd.log_mels(names)
    x, digits = data[0]
    picks = data.strings[0][1]
    assert (
        3 <= len(digits) <= 4 and [fsdd.parse_name(names[k])[0] for k in picks] == digits.tolist()
    )
    assert x.shape[-1] == 2 * (len(picks) + 1) + sum(specs[k].shape[-1] for k in picks)
    x, x_lengths, targets, target_lengths = collate_strings([data[i] for i in range(5)])
    assert x.shape[-1] == x_lengths.max() and targets.shape[1] == target_lengths.max()
    assert (targets[targets < 0] == -1).all() and (x[:, :, -1] == math.log(fsdd.EPS)).any()
    with pytest.raises(ValueError, match="min_len"):
        DigitStrings(names, 5, min_len=4, max_len=3)
    with pytest.raises(ValueError, match="held_out"):
        ConnectedDigitsDataModule(held_out=("bob",))


def test_connected_digits_hold_speakers_out(mirror_env):
    dm = ConnectedDigitsDataModule(held_out=("theo",), n_train=20, n_val=5, n_test=5)
    dm.setup()
    test_speakers = {fsdd.parse_name(dm.datasets[2].names[k])[1]
                     for _, picks in dm.datasets[2].strings for k in picks}  # fmt: skip
    train_speakers = {fsdd.parse_name(dm.datasets[0].names[k])[1]
                      for _, picks in dm.datasets[0].strings for k in picks}  # fmt: skip
    assert test_speakers == {"theo"} and "theo" not in train_speakers
    model = CTCRecognizer(channels=8, hidden=8)
    out = ctc_log_probs(model, dm.test_dataloader())
    assert len(out) == 5 and all(lp.shape[1] == 11 for lp, _ in out)


def test_datamodule_augments_only_training_batches(mirror_env):
    dm = fsdd.SpokenDigitsDataModule(speakers=("george",), augment=True, speeds=(0.9,),
                                     batch_size=16)  # fmt: skip
    dm.setup()
    assert isinstance(dm.datasets[0], fsdd.RandomSpeed)
    assert dm.datasets[0].copies.shape[:2] == (2, 400)
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 40, 80)
    val_x, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(val_x, dm.datasets[1].tensors[0][:16])  # never masked
    with pytest.raises(ValueError, match="factor"):
        fsdd.SpokenDigitsDataModule(speeds=(5.0,))
