"""Build the book's pretrained weights as release assets: ``make weights-release``.

    python tools/build_weights.py [--out dist/weights-v1] [--profiles smoke full]

Trains each profile's recipe of :mod:`fmbook.pretrained` deterministically on the CPU
(:func:`fmbook.pretrained.build_weights`), writes ``<out>/shakespeare-bert-<hash>.pt`` and
``<out>/SHA256SUMS``, and compares each file with its record in ``fmbook.pretrained.WEIGHTS``
(a different hash is reported, not an error: it means a new asset to register). The data
come through :func:`fmbook.data.fetch` (set ``FMBOOK_DATA_MIRROR`` to work offline).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's fmbook, also without `pip install -e .`


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    from fmbook import pretrained

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / pretrained.WEIGHTS_TAG)
    parser.add_argument("--profiles", nargs="+", default=["smoke", "full"])
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.profiles:
        start = time.perf_counter()
        path = pretrained.build_weights(name, args.out)
        digest, record = sha256(path), pretrained.WEIGHTS[name]
        status = "as registered" if digest == record.sha256 else "NOT the registered sha256"
        print(
            f"{name}: {path.name} {path.stat().st_size:,} bytes sha256 {digest} ({status}) "
            f"in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    files = sorted(p for p in args.out.glob("*.pt"))
    sums = "".join(f"{sha256(p)}  {p.name}\n" for p in files)
    (args.out / "SHA256SUMS").write_text(sums)
    print(sums, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
