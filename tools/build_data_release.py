"""Build the book's data release from the data mirror: ``make data-release``.

    python tools/build_data_release.py --mirror "$FMBOOK_DATA_MIRROR" --out dist/data-v1

writes into ``--out`` (one GitHub release's assets, a flat folder):

* one file per data set of :data:`fmbook.data.REGISTRY` that names a release asset, with the
  asset's file name (``tinyshakespeare-input.txt``, ``fra-eng.txt``), byte for byte the
  mirror's file, checked against the registry;
* ``fsdd-recordings.tar``: the 3,000 FSDD recordings (members ``fsdd/recordings/<name>``),
  each checked against ``fsdd_manifest.tsv``; an uncompressed tar with sorted members,
  owner 0 and time 0, so that it is byte-stable (WAV audio hardly compresses anyway);
* ``SHA256SUMS`` of all of them.

Then it *checks the folder as a reader would get it*: every data set is fetched through
``fmbook.data.fetch`` / ``fetch_fsdd`` from ``file://`` URLs of the folder (the release URL
pointed at it), into an empty cache, without the mirror.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's fmbook, also without `pip install -e .`


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_tar(out: Path, members: list[tuple[str, bytes]]) -> None:
    """An uncompressed tar of ``(name, bytes)`` with fixed metadata (byte-stable)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out.write_bytes(buffer.getvalue())


def build(mirror: Path, out: Path) -> list[Path]:
    from fmbook.data import REGISTRY, fsdd
    from fmbook.data.registry import _verified

    tag = out.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    assets = []
    for record in REGISTRY.values():
        if not record.asset:
            continue
        if record.asset.split("/")[0] != tag:
            raise SystemExit(f"{record.name}: registered as {record.asset}, but building {tag}")
        target = out / Path(record.asset).name
        shutil.copyfile(_verified(mirror / record.path, record), target)
        assets.append(target)
    members = []
    for name, digest, size in fsdd.read_manifest():
        record = fsdd.recording_record(name, digest, size)
        members.append((record.path, _verified(mirror / record.path, record).read_bytes()))
    target = out / Path(fsdd.ARCHIVE_ASSET).name
    write_tar(target, members)
    assets.append(target)
    sums = "".join(f"{sha256(p)}  {p.name}\n" for p in sorted(assets))
    (out / "SHA256SUMS").write_text(sums)
    return assets


def check(out: Path) -> None:
    """Fetch every data set from ``out`` as a reader would, into an empty cache."""
    from fmbook.data import REGISTRY, fetch, fsdd
    from fmbook.data.registry import MIRROR_ENV, RELEASE_URL_ENV

    saved = {k: os.environ.get(k) for k in (MIRROR_ENV, RELEASE_URL_ENV)}
    os.environ.pop(MIRROR_ENV, None)
    os.environ[RELEASE_URL_ENV] = out.resolve().parent.as_uri()
    try:
        with tempfile.TemporaryDirectory() as cache:
            for record in REGISTRY.values():
                if record.asset:
                    fetch(record, cache=cache, retries=0)
            folder = fsdd.fetch_fsdd(cache=cache, retries=0)
            n = len(list(folder.glob("*.wav")))
            if n != len(fsdd.read_manifest()):
                raise SystemExit(f"only {n} recordings came out of the archive")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=os.environ.get("FMBOOK_DATA_MIRROR"))
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "data-v1")
    args = parser.parse_args(argv)
    if args.mirror is None or not args.mirror.is_dir():
        parser.error(f"no data mirror folder at {args.mirror} (set FMBOOK_DATA_MIRROR)")
    build(args.mirror, args.out)
    check(args.out)
    print((args.out / "SHA256SUMS").read_text(), end="")
    print(f"{args.out}: checked (every data set fetched from it into an empty cache)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
