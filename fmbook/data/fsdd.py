"""The Free Spoken Digit Dataset (FSDD): 3,000 recordings of the digits 0-9, 8 kHz mono WAV.

6 speakers x 10 digits x 50 recordings, named ``{digit}_{speaker}_{index}.wav``
(Jackson, Z. et al., https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0).

**Provenance, per file.** The book's copy is described by a committed manifest,
``fsdd_manifest.tsv`` (file name, SHA-256, size: metadata, not audio), and every recording
is checked against it. :func:`fetch_fsdd` takes the recordings from the data mirror folder
(``FMBOOK_DATA_MIRROR``) if it holds them all, else from the cache; the missing ones come
as *one archive* (:func:`~fmbook.data.registry.fetch_members`), not 3,000 requests: the
book's release asset ``data-v1/fsdd-recordings.tar`` (from an HTTP mirror, then from the
release), else the upstream archive of the FSDD repository at tag ``v1.0.10``, whose 3,000
recordings are byte-identical to the manifest (checked against the repository's files).
A recording with other bytes rejects the archive with a
:class:`~fmbook.data.registry.ChecksumError`, so nothing unverified is ever used. Only an
HTTP mirror that serves a mirror *folder* (no archive) is asked for the files one by one.

**Splits** (:func:`split_names`):

* ``"recording"``: FSDD's official convention (its README: "Recordings numbered 0-4
  (inclusive) are in the test and 5-49 are in the training set"); of the training
  recordings, those numbered 5-9 are held out for validation, so train = 10-49.
  Every speaker appears in every part.
* ``"speaker"``: all recordings of ``held_out_speaker`` are the test set (a voice never
  heard in training); of the other speakers, recordings 0-4 validate and 5-49 train.

**Features** (:func:`log_mels`) are computed once per process and setting and cached, so
that the six folds of a speaker cross-validation read the 3,000 files once.
**Augmentation** (``SpokenDigitsDataModule(augment=True)``): each training batch gets
SpecAugment's masks (:func:`~fmbook.data.audio.spec_augment`); with ``speeds``, each
training example is also drawn at one of the speeds ``(1.0, *speeds)``
(:func:`~fmbook.data.audio.change_speed`).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data import Dataset as TorchDataset

from .audio import change_speed, log_mel_spectrogram, read_wav, spec_augment
from .datamodules import SplitDataModule
from .registry import (
    DATA_TAG,
    DataError,
    Dataset,
    DownloadError,
    _cache_dir,
    _mirror,
    _verified,
    fetch,
    fetch_members,
    release_url,
)

MANIFEST = Path(__file__).with_name("fsdd_manifest.tsv")
#: The upstream release whose recordings are the manifest's, byte for byte.
UPSTREAM_TAG = "v1.0.10"
_REPO = "Jakobovski/free-spoken-digit-dataset"
UPSTREAM = f"https://raw.githubusercontent.com/{_REPO}/{UPSTREAM_TAG}/recordings/"
UPSTREAM_ARCHIVE = f"https://github.com/{_REPO}/archive/refs/tags/{UPSTREAM_TAG}.tar.gz"
#: The book's archive of the recordings (members ``fsdd/recordings/<name>``).
ARCHIVE_ASSET = f"{DATA_TAG}/fsdd-recordings.tar"
FOLDER = "fsdd/recordings"
SAMPLE_RATE = 8000
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
LICENSE = "CC BY-SA 4.0"
CITATION = (
    "Jackson, Z., Souza, C., Flaks, J., Pan, Y., Nicolas, H., & Thite, A. Free Spoken Digit "
    "Dataset (FSDD). https://github.com/Jakobovski/free-spoken-digit-dataset"
)
#: Recording indices of the parts of the ``"recording"`` split: (val, test); the rest trains.
VAL_INDICES, TEST_INDICES = range(5, 10), range(0, 5)
#: Added to the mel power before the log; ``log(EPS)`` is the value of silence (padding).
EPS = 1e-6


def read_manifest(path: str | os.PathLike = MANIFEST) -> list[tuple[str, str, int]]:
    """The (file name, sha256, size) rows of the manifest, in file order."""
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if not line.startswith("#")]
    if not lines or lines[0] != "name\tsha256\tsize":
        raise ValueError(f"{path}: the first line must be the header 'name<TAB>sha256<TAB>size'")
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3 or not fields[2].isdigit():
            raise ValueError(f"{path}, row {number}: expected name<TAB>sha256<TAB>size")
        rows.append((fields[0], fields[1], int(fields[2])))
    return rows


def parse_name(name: str) -> tuple[int, str, int]:
    """(digit, speaker, index) of a file name ``{digit}_{speaker}_{index}.wav``."""
    stem = name[:-4] if name.endswith(".wav") else None
    parts = stem.split("_") if stem else []
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
        raise ValueError(f"not an FSDD file name ({{digit}}_{{speaker}}_{{index}}.wav): {name!r}")
    return int(parts[0]), parts[1], int(parts[2])


def recording_record(name: str, sha256: str, size: int) -> Dataset:
    """The registry record of one recording (mirror/cache path ``fsdd/recordings/<name>``)."""
    return Dataset(
        name=f"fsdd/{name}",
        urls=(UPSTREAM + name,),
        sha256=sha256,
        path=f"{FOLDER}/{name}",
        size=size,
        license=LICENSE,
        citation=CITATION,
        bibtex_key="jackson2018fsdd",
        description=f"Free Spoken Digit Dataset recording {name} (8 kHz mono WAV)",
    )


def archive_urls(mirror_url: str | None = None) -> list[str]:
    """Where the archive of the recordings is looked for, in order (see the module doc)."""
    urls = []
    if mirror_url is not None:
        prefix = mirror_url.rstrip("/")
        urls += [f"{prefix}/{ARCHIVE_ASSET}", f"{prefix}/{Path(ARCHIVE_ASSET).name}"]
    return urls + [release_url(ARCHIVE_ASSET), UPSTREAM_ARCHIVE]


def fetch_fsdd(
    names: Sequence[str] | None = None,
    *,
    mirror=None,
    cache=None,
    timeout: float = 60,
    retries: int = 3,
) -> Path:
    """The folder holding the recordings ``names`` (default: all 3,000), each checked.

    ``mirror`` (a folder or an ``http(s)://`` address; default ``$FMBOOK_DATA_MIRROR``),
    ``cache``, ``timeout`` and ``retries`` mean what they mean for
    :func:`~fmbook.data.registry.fetch`.
    """
    rows = read_manifest()
    if names is not None:
        known = {r[0]: r for r in rows}
        missing = [n for n in names if n not in known]
        if missing:
            raise ValueError(f"not FSDD recordings of the manifest: {missing[:5]}")
        rows = [known[n] for n in names]
    records = [recording_record(*row) for row in rows]
    mirror_dir, mirror_url = _mirror(mirror)
    if mirror_dir is not None and all((mirror_dir / r.path).is_file() for r in records):
        for record in records:
            _verified(mirror_dir / record.path, record)
        return mirror_dir / FOLDER
    try:
        fetch_members(
            records, archive_urls(mirror_url), cache=cache, timeout=timeout, retries=retries
        )
    except DownloadError:
        if mirror_url is None:
            raise
        # an HTTP mirror that serves a mirror folder has no archive: ask it file by file
        for record in records:
            fetch(record, mirror=mirror_url, cache=cache, timeout=timeout, retries=retries)
    return _cache_dir(cache) / FOLDER


def split_names(
    names: Sequence[str], split: str = "recording", held_out_speaker: str = "theo"
) -> tuple[list[str], list[str], list[str]]:
    """(train, val, test) file names; see the module docstring for the two splits."""
    if split not in ("recording", "speaker"):
        raise ValueError(f"split must be 'recording' or 'speaker', got {split!r}")
    if split == "speaker" and held_out_speaker not in SPEAKERS:
        raise ValueError(f"held_out_speaker must be one of {SPEAKERS}, got {held_out_speaker!r}")
    parts: tuple[list[str], list[str], list[str]] = ([], [], [])
    for name in names:
        _, speaker, index = parse_name(name)
        if split == "speaker" and speaker == held_out_speaker:
            parts[2].append(name)
        elif split == "speaker":
            parts[1 if index in TEST_INDICES else 0].append(name)
        elif index in TEST_INDICES:
            parts[2].append(name)
        else:
            parts[1 if index in VAL_INDICES else 0].append(name)
    return parts


def log_mels(names: Sequence[str], n_mels: int = 40, speed: float = 1.0) -> list[torch.Tensor]:
    """The log-mel spectrograms ``(n_mels, frames)`` of the recordings ``names`` (not cut or
    padded), each read at ``speed`` (1.0: as recorded). The first call for a setting
    computes all 3,000 and caches them for the process."""
    table = _all_log_mels(n_mels, float(speed))
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"not FSDD recordings of the manifest: {missing[:5]}")
    return [table[n] for n in names]


@functools.lru_cache(maxsize=4)
def _all_log_mels(n_mels: int, speed: float) -> dict[str, torch.Tensor]:
    names = [row[0] for row in read_manifest()]
    folder = fetch_fsdd(names)
    specs = {}
    for name in names:
        audio, rate = read_wav(folder / name)
        if rate != SAMPLE_RATE:
            raise DataError(f"{name}: sample rate {rate}, expected {SAMPLE_RATE}")
        if speed != 1.0:
            audio = change_speed(audio, speed)
        specs[name] = log_mel_spectrogram(audio, SAMPLE_RATE, n_mels=n_mels, eps=EPS)
    return specs


class RandomSpeed(TorchDataset):
    """Item ``i`` is ``(x, y)`` with ``x`` drawn at random from ``copies[:, i]`` (one copy
    per speed): a speed-perturbed data set of precomputed spectrograms."""

    def __init__(self, copies: torch.Tensor, labels: torch.Tensor):
        if copies.dim() < 2 or copies.shape[1] != len(labels):
            raise ValueError(
                f"copies must have shape (speeds, N, ...) with N = {len(labels)}, "
                f"got {tuple(copies.shape)}"
            )
        self.copies, self.labels = copies, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        k = int(torch.randint(len(self.copies), ()))
        return self.copies[k, i], self.labels[i]


def fix_frames(spec: torch.Tensor, n_frames: int, pad_value: float) -> torch.Tensor:
    """Crop ``spec`` (..., frames) to its first ``n_frames`` frames, or pad it at the end."""
    frames = spec.shape[-1]
    if frames >= n_frames:
        return spec[..., :n_frames]
    return torch.nn.functional.pad(spec, (0, n_frames - frames), value=pad_value)


class SpokenDigitsDataModule(SplitDataModule):
    """Spoken-digit classification: batches ``(x, y)``, ``x`` the log-mel spectrograms
    ``(B, n_mels, n_frames)`` (float32) and ``y`` the digits ``(B,)``.

    Spectrograms: 32 ms Hann windows every 10 ms (``n_fft=256``, ``hop_length=80`` at
    8 kHz), HTK mel filters, ``log(power + 1e-6)`` (:func:`~fmbook.data.audio.log_mel_spectrogram`).
    Recordings are trimmed to the spoken digit and mostly shorter than 0.8 s, so each is
    cut to its first ``n_frames`` frames (default 80 = 0.8 s, more than 95 % of the
    recordings fit) or padded at the end with ``log(1e-6)``, the value of silence.
    ``speakers`` restricts the data to some speakers (for quick experiments).
    ``augment=True`` masks training batches with SpecAugment (``max_freq``, ``max_time``)
    and, if ``speeds`` are given (e.g. ``(0.9, 1.1)``), draws each training example at one
    of the speeds ``(1.0, *speeds)``; validation and test data are never augmented.
    """

    def __init__(
        self,
        split: str = "recording",
        held_out_speaker: str = "theo",
        n_mels: int = 40,
        n_frames: int = 80,
        batch_size: int = 64,
        speakers: Sequence[str] | None = None,
        num_workers: int = 0,
        augment: bool = False,
        speeds: Sequence[float] = (),
        max_freq: int = 6,
        max_time: int = 8,
    ):
        super().__init__()
        split_names([], split, held_out_speaker)  # validates both
        for name, value in (("n_mels", n_mels), ("n_frames", n_frames), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        unknown = sorted(set(speakers or ()) - set(SPEAKERS))
        if unknown:
            raise ValueError(f"speakers must be among {SPEAKERS}, got {unknown}")
        self.split, self.held_out_speaker = split, held_out_speaker
        self.n_mels, self.n_frames, self.batch_size = n_mels, n_frames, batch_size
        self.speakers, self.num_workers = speakers, num_workers
        for factor in speeds:
            change_speed(torch.zeros(2), factor)  # validates the factor
        self.augment, self.speeds = bool(augment), tuple(speeds)
        self.max_freq, self.max_time = max_freq, max_time
        self.datasets: list[TorchDataset] | None = None

    def _names(self) -> list[str]:
        names = [row[0] for row in read_manifest()]
        if self.speakers is not None:
            names = [n for n in names if parse_name(n)[1] in self.speakers]
        return names

    def prepare_data(self):
        fetch_fsdd(self._names())

    def setup(self, stage: str | None = None):
        if self.datasets is not None:
            return
        names = self._names()
        self.names = split_names(names, self.split, self.held_out_speaker)
        self.datasets = [self._encode(part) for part in self.names]
        if self.augment and self.speeds:
            copies = [self._encode(self.names[0], speed) for speed in self.speeds]
            stacked = torch.stack([d.tensors[0] for d in [self.datasets[0], *copies]])
            self.datasets[0] = RandomSpeed(stacked, self.datasets[0].tensors[1])

    def _encode(self, names: list[str], speed: float = 1.0) -> TensorDataset:
        silence = math.log(EPS)
        specs = [fix_frames(s, self.n_frames, silence) for s in log_mels(names, self.n_mels, speed)]
        digits = [parse_name(name)[0] for name in names]
        x = torch.stack(specs) if specs else torch.empty(0, self.n_mels, self.n_frames)
        return TensorDataset(x, torch.tensor(digits, dtype=torch.long))

    def _masked(self, batch):
        x, y = torch.utils.data.default_collate(batch)
        return spec_augment(x, self.max_freq, self.max_time), y

    def train_dataloader(self):
        if not self.augment:
            return super().train_dataloader()
        return DataLoader(
            self.datasets[0],
            batch_size=self.batch_size,
            shuffle=True,
            collate_fn=self._masked,
            num_workers=self.num_workers,
        )
