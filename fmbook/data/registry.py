"""The data sets of the book, with their provenance, and a checked way to get them.

Every data set is one :class:`Dataset` record in :data:`REGISTRY`: where it comes from,
its license, how to cite it, and the SHA-256 of its bytes. :func:`fetch` returns a local
path to the file and guarantees that its bytes are exactly the recorded ones. It looks in
three places, in order:

1. a read-only **mirror** folder (argument ``mirror`` or the environment variable
   ``FMBOOK_DATA_MIRROR``), which CI and offline machines use;
2. the **cache** (argument ``cache`` or ``FMBOOK_CACHE``; default ``~/.cache/fmbook``);
3. the **network**: each URL of the record in turn, with a few retries, into the cache.

Downloads are atomic: the bytes go to a temporary file next to the target, are checked,
and only then renamed into place. Whatever goes wrong -- a dropped connection, a wrong
checksum, Ctrl-C -- no partial or wrong file is left behind.

Data sets without a download URL. The English-French sentence pairs (``fra-eng``) in the
book are a *derived* file: the first part of the Tatoeba/Anki list, without the upstream
attribution column. No URL serves those exact bytes, so the record has no URL and a
``manual`` note instead; :func:`fetch` then raises :class:`ManualDownloadError` (a
:class:`DownloadError`) that says where the upstream archive is and how the file is
derived from it. The Free Spoken Digit Dataset is described per recording by a manifest
(see :mod:`fmbook.data.fsdd`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

MIRROR_ENV = "FMBOOK_DATA_MIRROR"
CACHE_ENV = "FMBOOK_CACHE"
DEFAULT_CACHE = "~/.cache/fmbook"
BACKOFF_SECONDS = 0.5  # wait before retry k (k = 1, 2, ...): BACKOFF_SECONDS * 2 ** (k - 1)
_CHUNK = 1 << 16


class DataError(Exception):
    """Base class of every error of :mod:`fmbook.data`."""


class UnknownDatasetError(DataError, ValueError):
    """The name is not in the registry."""


class ChecksumError(DataError):
    """A file's bytes are not the recorded ones."""

    def __init__(self, message: str, *, expected: str, got: str):
        super().__init__(message)
        self.expected = expected
        self.got = got


class DownloadError(DataError):
    """No URL of a data set could be downloaded."""


class ManualDownloadError(DownloadError):
    """The data set has no download URL: the reader has to get (or derive) the file by hand."""


@dataclass(frozen=True)
class Dataset:
    """One data file and its provenance.

    ``path`` is the file's place inside the mirror and the cache (``tinyshakespeare/input.txt``);
    ``urls`` are tried in order; ``sha256`` and ``size`` describe the exact bytes.
    A record without URLs needs ``manual``: how to obtain the file by hand.
    """

    name: str
    urls: tuple[str, ...]
    sha256: str
    path: str
    size: int
    license: str
    citation: str
    bibtex_key: str
    description: str
    manual: str = ""

    def __post_init__(self):
        object.__setattr__(self, "urls", tuple(self.urls))
        if not self.urls and not self.manual:
            raise ValueError(
                f"data set {self.name!r}: needs at least one URL, or a manual note on how "
                "to obtain the file"
            )
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"data set {self.name!r}: sha256 must be 64 lowercase hex digits")
        parts = PurePosixPath(self.path).parts
        if not parts or PurePosixPath(self.path).is_absolute() or ".." in parts:
            raise ValueError(f"data set {self.name!r}: path {self.path!r} must be relative")
        if self.size < 0:
            raise ValueError(f"data set {self.name!r}: size must be >= 0, got {self.size}")


TINY_SHAKESPEARE = Dataset(
    name="tinyshakespeare",
    urls=(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    ),
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    path="tinyshakespeare/input.txt",
    size=1_115_394,
    license="public-domain text (plays of William Shakespeare)",
    citation=(
        "Karpathy, A. (2015). char-rnn: multi-layer recurrent neural networks for "
        "character-level language models. https://github.com/karpathy/char-rnn"
    ),
    bibtex_key="karpathy2015charrnn",
    description=(
        "40,000 lines of Shakespeare's plays concatenated into one text file "
        "(about 1.1 million characters): the 'tiny shakespeare' character-level benchmark."
    ),
)

FRA_ENG = Dataset(
    name="fra-eng",
    urls=(),
    sha256="253b377b164d4da0cac71b8ae38487c3e9ac5eedd32aebb4c60a29a958aa79d2",
    path="fra-eng/fra.txt",
    size=3_996_875,
    license="CC-BY 2.0 (France); sentences and translations from tatoeba.org",
    citation=(
        "Tatoeba (https://tatoeba.org), English-French sentence pairs as packaged by "
        "manythings.org (https://www.manythings.org/anki/, fra-eng.zip). Licensed CC-BY 2.0 "
        "(France); each pair's contributors are listed in the upstream attribution column."
    ),
    bibtex_key="tatoeba_fra_eng",
    description=(
        "76,036 English<TAB>French sentence pairs, shortest first: the first part of the "
        "Tatoeba/Anki fra-eng list, without the upstream attribution column."
    ),
    manual=(
        "The book's file is derived from the upstream archive "
        "https://www.manythings.org/anki/fra-eng.zip (Tatoeba sentences, CC-BY 2.0 France); "
        "no URL serves these exact bytes. Download the archive, unzip fra.txt, keep the first "
        "76,036 lines and only their first two tab-separated columns (English, French), and "
        "check the result against the recorded size and sha256. The upstream list changes "
        "over time, so a fresh download may not reproduce the checksum; in that case use "
        "the project's data mirror."
    ),
)

REGISTRY: dict[str, Dataset] = {d.name: d for d in (TINY_SHAKESPEARE, FRA_ENG)}


def fetch(
    name: str | Dataset,
    *,
    mirror: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    timeout: float = 30,
    retries: int = 3,
    registry: Mapping[str, Dataset] | None = None,
) -> Path:
    """Return the local path of data set ``name``, with its checksum verified.

    ``name`` is a key of ``registry`` (default :data:`REGISTRY`) or a :class:`Dataset`.
    ``retries`` is how many times each URL is tried again after a failure.
    Raises :class:`UnknownDatasetError`, :class:`ChecksumError` or :class:`DownloadError`.
    """
    record = lookup(name, registry)
    if retries < 0 or timeout <= 0:
        raise ValueError(f"need retries >= 0 and timeout > 0, got {retries=}, {timeout=}")
    mirror_dir = _mirror_dir(mirror)
    if mirror_dir is not None and (mirror_dir / record.path).is_file():
        return _verified(mirror_dir / record.path, record)
    target = _cache_dir(cache) / record.path
    if target.is_file():
        if _sha256_of(target) == record.sha256:
            return target
        warnings.warn(f"cached {target} has the wrong checksum; downloading it again", stacklevel=2)
        target.unlink()
    _download(record, target, timeout=timeout, retries=retries, mirror_dir=mirror_dir)
    return target


def lookup(name: str | Dataset, registry: Mapping[str, Dataset] | None = None) -> Dataset:
    """The record of ``name`` (a record passes through unchanged)."""
    if isinstance(name, Dataset):
        return name
    registry = REGISTRY if registry is None else registry
    if name not in registry:
        known = ", ".join(sorted(registry)) or "(none)"
        raise UnknownDatasetError(f"unknown data set {name!r}; known data sets: {known}")
    return registry[name]


def _mirror_dir(mirror) -> Path | None:
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    return None if mirror is None else Path(mirror).expanduser()


def _cache_dir(cache) -> Path:
    cache = cache if cache is not None else os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(cache).expanduser()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path: Path, record: Dataset) -> Path:
    """``path`` if its bytes match the record; else ChecksumError (the file is left alone)."""
    got = _sha256_of(path)
    if got != record.sha256:
        raise ChecksumError(
            f"{path} is not the recorded {record.name!r}: sha256 {got}, expected "
            f"{record.sha256}. Replace the file or unset {MIRROR_ENV}.",
            expected=record.sha256,
            got=got,
        )
    return path


def _download(record: Dataset, target: Path, *, timeout, retries, mirror_dir) -> None:
    """Try every URL (each ``1 + retries`` times) until one yields the recorded bytes."""
    if not record.urls:
        raise ManualDownloadError(_manual_help(record, target, mirror_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    failures, checksum_error = [], None
    for url in record.urls:
        for attempt in range(1 + retries):
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                _download_once(url, target, record, timeout)
                return
            except ChecksumError as error:  # the server sends other bytes: try the next URL
                checksum_error = error
                break
            except (OSError, HTTPException) as error:
                failures.append(f"{url} (attempt {attempt + 1}): {error}")
                if _is_permanent(error):
                    break
    if checksum_error is not None:
        raise checksum_error
    raise DownloadError(_download_help(record, target, failures, mirror_dir))


def _download_once(url: str, target: Path, record: Dataset, timeout: float) -> None:
    """Download ``url`` into a temporary file, check it, then rename it to ``target``."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "fmbook"})
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(request, timeout=timeout) as response,
        ):
            got = _stream(response, out)
        if got != record.sha256:
            raise ChecksumError(
                f"{url} sent bytes with sha256 {got}, expected {record.sha256} for "
                f"{record.name!r}; the download was discarded.",
                expected=record.sha256,
                got=got,
            )
        os.replace(tmp, target)
    except BaseException:  # including KeyboardInterrupt: never leave a partial file
        tmp.unlink(missing_ok=True)
        raise


def _stream(response, out) -> str:
    """Copy the response body into ``out``; return its sha256. Short bodies are errors."""
    digest, received = hashlib.sha256(), 0
    for chunk in iter(lambda: response.read(_CHUNK), b""):
        out.write(chunk)
        digest.update(chunk)
        received += len(chunk)
    expected = response.headers.get("Content-Length")
    if expected is not None and received != int(expected):
        raise ConnectionError(f"connection closed after {received} of {expected} bytes")
    return digest.hexdigest()


def _is_permanent(error: BaseException) -> bool:
    """A client error (404, 403, ...) will not go away by trying again."""
    return isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500


def _mirror_note(record: Dataset, mirror_dir) -> str:
    if mirror_dir is None:
        return f"{MIRROR_ENV} is not set"
    return f"the mirror {mirror_dir} has no {record.path}"


def _manual_help(record: Dataset, target: Path, mirror_dir) -> str:
    return (
        f"data set {record.name!r} has no download URL ({_mirror_note(record, mirror_dir)}, "
        f"and it is not in the cache). {record.manual}\nThen set {MIRROR_ENV} to a folder "
        f"that contains {record.path}, or put the file at {target} "
        f"({record.size:,} bytes, sha256 {record.sha256})."
    )


def _download_help(record: Dataset, target: Path, failures: list[str], mirror_dir) -> str:
    mirror_note = _mirror_note(record, mirror_dir)
    tried = "\n".join(f"  - {line}" for line in failures)
    return (
        f"could not download data set {record.name!r} ({mirror_note}, and it is not in the "
        f"cache). Tried:\n{tried}\n"
        f"To work without the network, either set {MIRROR_ENV} to a folder that contains "
        f"{record.path}, or put the file by hand at {target} "
        f"({record.size:,} bytes, sha256 {record.sha256})."
    )
