"""Pinned CI, loose readers: constraints.txt pins what requirements.txt only bounds.

* constraints.txt is a list of exact pins ``name==version``, one per package;
* every requirement of requirements.txt and of the package (pyproject.toml) is pinned there,
  to a version inside the requirement's range;
* the pins agree with each other, as far as the installed packages' metadata tells;
* torch's exact version is written down in one file only, constraints.txt.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.!]*)")


def lines(path: Path) -> list[str]:
    return [
        line.split("#", 1)[0].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.split("#", 1)[0].strip()
    ]


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in lines(ROOT / "constraints.txt"):
        match = PIN.fullmatch(line)
        assert match, f"constraints.txt: {line!r} is not an exact pin name==version"
        name = canonicalize_name(match[1])
        assert name not in found, f"constraints.txt pins {name} twice"
        found[name] = Version(match[2])
    return found


def requirements() -> list[Requirement]:
    return [Requirement(line) for line in lines(ROOT / "requirements.txt")]


def package_dependencies() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(dep) for dep in project["dependencies"]]


def check_pinned_inside_range(req: Requirement, pinned: dict[str, Version], source: str):
    name = canonicalize_name(req.name)
    assert name in pinned, f"{req} ({source}) is not in constraints.txt"
    assert req.specifier.contains(pinned[name], prereleases=True), (
        f"constraints.txt pins {name}=={pinned[name]}, outside the requirement {req} ({source})"
    )


def test_constraints_are_exact_pins():
    pinned = pins()
    assert len(pinned) > 20, "constraints.txt pins the whole environment, not a few packages"
    assert "fmbook" not in pinned, "the book's own package is installed from the checkout"
    for name, version in pinned.items():
        assert not version.local, f"{name}=={version}: no local label (+cpu) in a portable pin"


@pytest.mark.parametrize("req", requirements(), ids=str)
def test_every_requirement_is_pinned_inside_its_range(req):
    check_pinned_inside_range(req, pins(), "requirements.txt")


def test_every_package_dependency_is_pinned_inside_its_range():
    pinned = pins()
    for req in package_dependencies():
        check_pinned_inside_range(req, pinned, "pyproject.toml")


def test_pins_agree_with_each_other():
    """For each pinned package installed at its pinned version, its own requirements that
    are pinned too must be satisfied by those pins (a pip check of the pinned set)."""
    pinned, environment = pins(), default_environment()
    checked, conflicts = 0, []
    for name, version in pinned.items():
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if Version(dist.version).public != version.public:
            continue
        checked += 1
        for line in dist.requires or []:
            dep = Requirement(line)
            if dep.marker is not None and not dep.marker.evaluate({**environment, "extra": ""}):
                continue
            other = canonicalize_name(dep.name)
            if other in pinned and not dep.specifier.contains(pinned[other], prereleases=True):
                conflicts.append(f"{name}=={version} needs {dep}, pinned {pinned[other]}")
    if checked == 0:
        pytest.skip("none of the pinned versions is installed here")
    assert not conflicts, "\n".join(conflicts)


def test_torch_is_pinned_in_one_place():
    assert "torch" in pins()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    elsewhere = []
    for name in tracked.stdout.splitlines():
        path = ROOT / name
        if name == "constraints.txt" or not path.is_file() or path.suffix == ".ipynb":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if re.search(r"torch==\d", text):
            elsewhere.append(name)
    assert not elsewhere, (
        f"torch's exact version is also written in {elsewhere}; keep it in constraints.txt only"
    )
