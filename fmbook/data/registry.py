"""The data sets of the book, with their provenance, and a checked way to get them.

Every data set is one :class:`Dataset` record in :data:`REGISTRY`: where it comes from,
its license, how to cite it, and the SHA-256 of its bytes. :func:`fetch` returns a local
path to the file and guarantees that its bytes are exactly the recorded ones. It looks in
three places, in order:

1. a **mirror** (argument ``mirror`` or the environment variable ``FMBOOK_DATA_MIRROR``):
   either a read-only folder (CI, offline machines) or an ``http(s)://`` address that
   serves such a folder or the book's release assets -- a teacher can serve a classroom
   from one machine with ``python -m http.server`` in the mirror folder or in
   ``dist/data-v1``;
2. the **cache** (argument ``cache`` or ``FMBOOK_CACHE``; default ``~/.cache/fmbook``),
   laid out like a mirror folder;
3. the **network**: the book's own copy, a release asset of the book's repository
   (``<release URL>/<tag>/<file>``; the base is :data:`RELEASE_URL`, or
   ``FMBOOK_RELEASE_URL`` when set), then every upstream URL known to serve the same
   bytes, each tried a few times.

Every record has at least one URL that serves exactly its bytes. Where upstream is not
byte-stable -- the book's ``fra-eng`` file is derived from a list that changes, and the
3,000 FSDD recordings are separate files -- the book publishes its own copy in the
``data-v1`` release of its repository (``make data-release`` builds those assets).

Downloads are atomic: the bytes go to a temporary file next to the target, are checked,
and only then renamed into place. Whatever goes wrong -- a dropped connection, a wrong
checksum, Ctrl-C -- no partial or wrong file is left behind; wrong bytes raise
:class:`ChecksumError`, and a source that cannot be reached raises :class:`DownloadError`
after a few retries.

Many small files can come as *one archive* (:func:`fetch_members`; the FSDD recordings
do): each file in the archive is checked against its own record, so any archive that holds
the same files will do, whatever its compression or top-level folder.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

MIRROR_ENV = "FMBOOK_DATA_MIRROR"
CACHE_ENV = "FMBOOK_CACHE"
RELEASE_URL_ENV = "FMBOOK_RELEASE_URL"
DEFAULT_CACHE = "~/.cache/fmbook"
#: Where the book's release assets live: ``<RELEASE_URL>/<tag>/<file>`` (the repository of
#: ``_config.yml``; tests check that the two agree).
RELEASE_URL = "https://github.com/fmbook/fmbook/releases/download"
#: The release that holds the book's own copies of its data files.
DATA_TAG = "data-v1"
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
    ``sha256`` and ``size`` describe the exact bytes. ``asset`` (``"<tag>/<file>"``, e.g.
    ``"data-v1/fra-eng.txt"``) names the book's own copy among its release assets; ``urls``
    are further sources of the same bytes, tried in order after it. A record needs an
    asset or a URL, or else ``manual``: how to obtain the file by hand. ``manual`` may also
    explain how a derived file was made from its upstream source.
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
    asset: str = ""

    def __post_init__(self):
        object.__setattr__(self, "urls", tuple(self.urls))
        if not self.urls and not self.asset and not self.manual:
            raise ValueError(
                f"data set {self.name!r}: needs a release asset or a URL, or a manual note "
                "on how to obtain the file"
            )
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"data set {self.name!r}: sha256 must be 64 lowercase hex digits")
        _check_relative(self.name, "path", self.path)
        if self.asset:
            _check_relative(self.name, "asset", self.asset)
            if len(PurePosixPath(self.asset).parts) != 2:
                raise ValueError(f"data set {self.name!r}: asset must be '<tag>/<file>'")
        if self.size < 0:
            raise ValueError(f"data set {self.name!r}: size must be >= 0, got {self.size}")


def _check_relative(name: str, field: str, value: str) -> None:
    parts = PurePosixPath(value).parts
    if not parts or PurePosixPath(value).is_absolute() or ".." in parts:
        raise ValueError(f"data set {name!r}: {field} {value!r} must be a relative path")


TINY_SHAKESPEARE = Dataset(
    name="tinyshakespeare",
    asset=f"{DATA_TAG}/tinyshakespeare-input.txt",
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
    asset=f"{DATA_TAG}/fra-eng.txt",
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
        "no upstream URL serves these exact bytes, so the book publishes its copy as a "
        "release asset. To derive it yourself: download the archive, unzip fra.txt, keep the "
        "first 76,036 lines and only their first two tab-separated columns (English, "
        "French), and check the result against the recorded size and sha256. The upstream "
        "list changes over time, so a fresh download may not reproduce the checksum."
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
    ``mirror`` is a folder or an ``http(s)://`` address (default ``$FMBOOK_DATA_MIRROR``).
    ``retries`` is how many times each URL is tried again after a failure.
    Raises :class:`UnknownDatasetError`, :class:`ChecksumError` or :class:`DownloadError`.
    """
    record = lookup(name, registry)
    _check_options(timeout, retries)
    mirror_dir, mirror_url = _mirror(mirror)
    if mirror_dir is not None and (mirror_dir / record.path).is_file():
        return _verified(mirror_dir / record.path, record)
    target = _cache_dir(cache) / record.path
    if target.is_file():
        if _sha256_of(target) == record.sha256:
            return target
        warnings.warn(f"cached {target} has the wrong checksum; downloading it again", stacklevel=2)
        target.unlink()
    _download(record, target, timeout=timeout, retries=retries, mirror=mirror_dir or mirror_url)
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


def release_url(asset: str) -> str:
    """The download address of a release asset ``"<tag>/<file>"`` of the book."""
    base = os.environ.get(RELEASE_URL_ENV) or RELEASE_URL
    return f"{base.rstrip('/')}/{asset}"


def candidate_urls(record: Dataset, mirror_url: str | None = None) -> list[str]:
    """Every address that should serve ``record``'s bytes, in the order they are tried:
    an HTTP mirror (as a mirror folder: ``<mirror>/<path>``; as a release folder:
    ``<mirror>/<tag>/<file>`` or ``<mirror>/<file>``), the release asset, the upstream URLs."""
    urls = []
    if mirror_url is not None:
        prefix = mirror_url.rstrip("/")
        urls.append(f"{prefix}/{record.path}")
        if record.asset:
            urls += [f"{prefix}/{record.asset}", f"{prefix}/{PurePosixPath(record.asset).name}"]
    if record.asset:
        urls.append(release_url(record.asset))
    urls += record.urls
    return list(dict.fromkeys(urls))


def is_url(location) -> bool:
    return isinstance(location, str) and location.lower().startswith(("http://", "https://"))


def _check_options(timeout, retries) -> None:
    if retries < 0 or timeout <= 0:
        raise ValueError(f"need retries >= 0 and timeout > 0, got {retries=}, {timeout=}")


def _mirror(mirror) -> tuple[Path | None, str | None]:
    """(mirror folder, mirror URL): at most one of them is set."""
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if mirror is None:
        return None, None
    if is_url(str(mirror)):
        return None, str(mirror)
    return Path(mirror).expanduser(), None


def _mirror_dir(mirror) -> Path | None:
    return _mirror(mirror)[0]


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


def _retrying(urls: Sequence[str], attempt_once, *, retries: int):
    """Call ``attempt_once(url)`` for each URL (each ``1 + retries`` times) until one returns.

    Returns ``(True, None, failures)`` on success, else ``(False, checksum_error, failures)``:
    a ChecksumError moves on to the next URL at once (the same server sends the same bytes),
    a client error (404, ...) too; other failures are retried with exponential backoff.
    """
    failures, checksum_error = [], None
    for url in urls:
        for attempt in range(1 + retries):
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                attempt_once(url)
                return True, None, failures
            except ChecksumError as error:
                checksum_error = error
                failures.append(f"{url}: {error}")
                break
            except (OSError, HTTPException, tarfile.TarError) as error:
                failures.append(f"{url} (attempt {attempt + 1}): {error}")
                if _is_permanent(error):
                    break
    return False, checksum_error, failures


def _download(record: Dataset, target: Path, *, timeout, retries, mirror) -> None:
    """Try every candidate URL until one yields the recorded bytes."""
    urls = candidate_urls(record, mirror if is_url(mirror) else None)
    if not urls:
        raise ManualDownloadError(_manual_help(record, target, mirror))
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, checksum_error, failures = _retrying(
        urls, lambda url: _download_once(url, target, record, timeout), retries=retries
    )
    if ok:
        return
    if checksum_error is not None:
        raise checksum_error
    raise DownloadError(_download_help(record, target, failures, mirror))


def _download_once(url: str, target: Path, record: Dataset, timeout: float) -> None:
    """Download ``url`` into a temporary file, check it, then rename it to ``target``."""
    with _downloaded(url, target.parent, target.name, timeout) as (tmp, got):
        if got != record.sha256:
            raise ChecksumError(
                f"{url} sent bytes with sha256 {got}, expected {record.sha256} for "
                f"{record.name!r}; the download was discarded.",
                expected=record.sha256,
                got=got,
            )
        os.replace(tmp, target)


class _downloaded:
    """``with _downloaded(url, folder, name, timeout) as (tmp, sha256):`` -- the body of
    ``url`` in a temporary file of ``folder``; the file is removed on leaving the block
    (unless it was renamed away), whatever happens, Ctrl-C included."""

    def __init__(self, url: str, folder: Path, name: str, timeout: float):
        self.url, self.folder, self.name, self.timeout = url, folder, name, timeout

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.folder, prefix=f".{self.name}.", suffix=".part")
        self.tmp = Path(tmp_name)
        try:
            request = urllib.request.Request(self.url, headers={"User-Agent": "fmbook"})
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(request, timeout=self.timeout) as response,
            ):
                got = _stream(response, out)
        except BaseException:  # including KeyboardInterrupt: never leave a partial file
            self.tmp.unlink(missing_ok=True)
            raise
        return self.tmp, got

    def __exit__(self, *exc):
        self.tmp.unlink(missing_ok=True)
        return False


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


# --- many files in one archive --------------------------------------------------------------


def fetch_members(
    records: Sequence[Dataset],
    archive_urls: Sequence[str],
    *,
    cache: str | os.PathLike | None = None,
    timeout: float = 60,
    retries: int = 3,
) -> list[Path]:
    """Get the files of ``records`` from one archive into the cache; return their paths.

    Files already in the cache with the right bytes are kept. For the others, the first
    of ``archive_urls`` that works is downloaded (a tar file, compressed or not) and each
    member whose last two path parts match a record's (``recordings/0_george_0.wav``) is
    checked against that record's sha256 and written, atomically, to ``<cache>/<path>``.
    A member with other bytes rejects the archive (:class:`ChecksumError`, next URL);
    an archive that lacks some files is an error too. The archive itself is not kept.
    """
    _check_options(timeout, retries)
    cache_dir = _cache_dir(cache)
    targets = [cache_dir / r.path for r in records]
    missing = {
        _member_key(r.path): (r, t)
        for r, t in zip(records, targets, strict=True)
        if not (t.is_file() and _sha256_of(t) == r.sha256)
    }
    if not missing:
        return targets
    if not archive_urls:
        raise DownloadError("no archive URL to download the missing files from")
    folder = cache_dir / ".downloads"

    def attempt(url):
        _extract_members(url, folder, missing, timeout)

    ok, checksum_error, failures = _retrying(archive_urls, attempt, retries=retries)
    if ok:
        return targets
    if checksum_error is not None:
        raise checksum_error
    tried = "\n".join(f"  - {line}" for line in failures)
    raise DownloadError(
        f"could not download the archive with {len(missing):,} missing files (first: "
        f"{next(iter(missing.values()))[0].name!r}). Tried:\n{tried}\nTo work without the "
        f"network, set {MIRROR_ENV} to a folder that contains them, or to an http(s):// "
        "address that serves one."
    )


def _member_key(path: str) -> tuple[str, ...]:
    return PurePosixPath(path).parts[-2:]


def _extract_members(url, folder: Path, wanted: dict, timeout: float) -> None:
    """Download the archive at ``url``; write every wanted member, checked, into its target."""
    with _downloaded(url, folder, PurePosixPath(url).name or "archive", timeout) as (tmp, _):
        found = set()
        with tarfile.open(tmp, "r:*") as archive:
            for member in archive:
                key = _member_key(member.name)
                if not member.isfile() or key not in wanted or key in found:
                    continue
                record, target = wanted[key]
                _write_checked(
                    archive.extractfile(member), target, record, f"{url} ({member.name})"
                )
                found.add(key)
        lacking = [wanted[k][0].path for k in wanted if k not in found]
        if lacking:
            raise DataError(
                f"the archive {url} lacks {len(lacking):,} of the files (e.g. {lacking[0]})"
            )


def _write_checked(source, target: Path, record: Dataset, where: str) -> None:
    """Copy ``source`` to ``target`` through a temporary file, if its sha256 is the record's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
        got = digest.hexdigest()
        if got != record.sha256:
            raise ChecksumError(
                f"{where} has sha256 {got}, expected {record.sha256} for {record.name!r}; "
                "the archive was discarded.",
                expected=record.sha256,
                got=got,
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# --- messages -------------------------------------------------------------------------------


def _mirror_note(record: Dataset, mirror) -> str:
    if mirror is None:
        return f"{MIRROR_ENV} is not set"
    if is_url(mirror):
        return f"the mirror {mirror} does not serve it"
    return f"the mirror {mirror} has no {record.path}"


def _manual_help(record: Dataset, target: Path, mirror) -> str:
    return (
        f"data set {record.name!r} has no download URL ({_mirror_note(record, mirror)}, "
        f"and it is not in the cache). {record.manual}\nThen set {MIRROR_ENV} to a folder "
        f"that contains {record.path}, or put the file at {target} "
        f"({record.size:,} bytes, sha256 {record.sha256})."
    )


def _download_help(record: Dataset, target: Path, failures: list[str], mirror) -> str:
    mirror_note = _mirror_note(record, mirror)
    tried = "\n".join(f"  - {line}" for line in failures)
    return (
        f"could not download data set {record.name!r} ({mirror_note}, and it is not in the "
        f"cache). Tried:\n{tried}\n"
        f"To work without the network, either set {MIRROR_ENV} to a folder that contains "
        f"{record.path} (or to an http(s):// address that serves one), or put the file by "
        f"hand at {target} ({record.size:,} bytes, sha256 {record.sha256})."
    )
