"""Build the student pack of the course assignments: the reference solutions with every
solution removed.

Each assignment in ``assignments/`` is a reference solution whose solution code stands
between marker lines::

        # BEGIN SOLUTION
        ...
        # END SOLUTION

The pack replaces each marked block by ``raise NotImplementedError(...)`` at the block's
indentation, and copies everything else (docstrings, adapters, autograders, READMEs) as it
is. ``make student-pack`` runs this into ``dist/student-pack/``.

    python tools/student_pack.py --out dist/student-pack
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION[ \t]*$")
END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")
STUB = '{indent}raise NotImplementedError("your code here: see the docstring")\n'


class MarkerError(ValueError):
    """The solution markers of a file do not pair up."""


def strip_solutions(source: str, name: str = "<source>") -> str:
    """``source`` with every ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block replaced by a
    ``raise NotImplementedError`` at the block's indentation."""
    out: list[str] = []
    start: int | None = None
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        if (begin := BEGIN.match(line)) is not None:
            if start is not None:
                raise MarkerError(
                    f"{name}:{number}: BEGIN SOLUTION inside the block of line {start}"
                )
            start = number
            out.append(STUB.format(indent=begin["indent"]))
        elif END.match(line):
            if start is None:
                raise MarkerError(f"{name}:{number}: END SOLUTION without a BEGIN SOLUTION")
            start = None
        elif start is None:
            out.append(line)
    if start is not None:
        raise MarkerError(f"{name}:{start}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "".join(out)


def build(out: Path, source: Path = ROOT / "assignments") -> list[Path]:
    """Write the student pack to ``out/assignments`` (replacing it); returns the stubbed files."""
    target = out / "assignments"
    if target.exists():
        shutil.rmtree(target)
    stubbed: list[Path] = []
    for path in sorted(source.rglob("*")):
        if "__pycache__" in path.parts or path.is_dir():
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            text = path.read_text()
            student = strip_solutions(text, str(path.relative_to(ROOT)))
            compile(student, str(dest), "exec")  # the student version must be valid Python
            dest.write_text(student)
            if student != text:
                stubbed.append(dest)
        else:
            shutil.copy2(path, dest)
    return stubbed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "student-pack")
    args = parser.parse_args(argv)
    stubbed = build(args.out)
    print(f"student pack in {args.out / 'assignments'}: {len(stubbed)} files with stubs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
