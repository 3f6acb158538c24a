"""The course assignments: the student pack has every solution removed, its autograders fail
on the stubs, and they pass on the reference solutions (``make checks`` also runs
``assignments/`` itself)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from student_pack import MarkerError, build, strip_solutions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "assignments").glob("a*/test_*.py"))


def test_strip_solutions_keeps_the_signature_and_docstring():
    source = (
        "def f(x):\n"
        '    """Double x."""\n'
        "    # BEGIN SOLUTION\n"
        "    y = 2 * x\n"
        "    return y\n"
        "    # END SOLUTION\n"
        "\n"
        "z = 1\n"
    )
    student = strip_solutions(source)
    assert "2 * x" not in student and "Double x." in student and "z = 1" in student
    assert '    raise NotImplementedError("your code here: see the docstring")\n' in student
    namespace = {}
    exec(student, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n# END SOLUTION\n", "without a BEGIN"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside the block"),
    ],
)
def test_unpaired_markers_are_refused(source, problem):
    with pytest.raises(MarkerError, match=problem):
        strip_solutions(source, "a.py")


def test_there_are_at_least_four_assignments():
    assert len(ASSIGNMENTS) >= 4 or os.environ.get("FMBOOK_PARTIAL_ASSIGNMENTS"), ASSIGNMENTS


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    out = tmp_path_factory.mktemp("student-pack")
    stubbed = build(out)
    return out, stubbed


def test_the_pack_holds_no_solution_code(pack):
    out, stubbed = pack
    for name in ASSIGNMENTS:
        reference = {p.name: p.read_text() for p in (ROOT / "assignments" / name).glob("*.py")}
        student = {p.name: p.read_text() for p in (out / "assignments" / name).glob("*.py")}
        assert student.keys() == reference.keys()
        assert any(p.parent.name == name for p in stubbed), f"{name} has no stubs"
        for file, text in student.items():
            assert "BEGIN SOLUTION" not in text, file
            lines = set(reference[file].splitlines()) - set(text.splitlines())
            solution = [line for line in lines if line.strip() and "SOLUTION" not in line]
            assert all(line not in text for line in solution)


def pytest_summary(folder: Path, cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(cwd), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-o",
            "addopts=",
            str(folder),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_autograder_test_fails_on_the_stubs(pack, name):
    out, _ = pack
    summary = pytest_summary(out / "assignments" / name, out)
    assert " failed" in summary and "passed" not in summary and "error" not in summary, summary
