"""Rebuild a data mirror folder from the assets of a data release (CI uses it).

    python3 tools/mirror_from_release.py <folder with the release's assets> <mirror folder>

Needs only the standard library (it runs before fmbook is installed): it reads the records
of ``fmbook/data/registry.py`` and the FSDD manifest directly. Each data set's asset is
checked against its record and copied to its mirror path; the FSDD recordings are taken
from ``fsdd-recordings.tar``, each checked against ``fsdd_manifest.tsv``. Writes the
mirror's ``SHA256SUMS`` (``sha256sum -c`` format) of the files it placed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
import tarfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "fmbook" / "data"


def load_registry():
    spec = importlib.util.spec_from_file_location("fmbook_registry", DATA / "registry.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


def manifest() -> dict[str, str]:
    rows = [line.split("\t") for line in (DATA / "fsdd_manifest.tsv").read_text().splitlines()]
    return {r[0]: r[1] for r in rows if not r[0].startswith("#") and r[0] != "name"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit(__doc__)
    assets, mirror = Path(argv[0]), Path(argv[1])
    reg = load_registry()
    placed: dict[str, str] = {}
    for record in reg.REGISTRY.values():
        source = assets / PurePosixPath(record.asset).name
        digest = sha256(source.read_bytes())
        if digest != record.sha256:
            sys.exit(f"{source}: sha256 {digest}, expected {record.sha256} ({record.name})")
        (mirror / record.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, mirror / record.path)
        placed[record.path] = digest
    wanted = manifest()
    with tarfile.open(assets / "fsdd-recordings.tar") as tar:
        for member in tar:
            name = PurePosixPath(member.name).name
            if not member.isfile() or name not in wanted:
                continue
            data = tar.extractfile(member).read()
            if sha256(data) != wanted[name]:
                sys.exit(f"fsdd-recordings.tar: {member.name} is not the manifest's {name}")
            target = mirror / "fsdd" / "recordings" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            placed[f"fsdd/recordings/{name}"] = wanted[name]
    lacking = sorted(set(wanted) - {PurePosixPath(p).name for p in placed})
    if lacking:
        sys.exit(f"fsdd-recordings.tar lacks {len(lacking)} recordings, e.g. {lacking[0]}")
    sums = "".join(f"{digest}  ./{path}\n" for path, digest in sorted(placed.items()))
    (mirror / "SHA256SUMS").write_text(sums)
    print(f"{mirror}: {len(placed):,} files, checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
