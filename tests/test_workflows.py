"""The GitHub Actions workflows in .github/workflows, checked offline; nothing runs on GitHub.

* every workflow validates against the GitHub workflow schema that check-jsonschema ships
  (``--builtin-schema vendor.github-workflows``, no network), and a broken one is rejected;
* every action is pinned to a major version (``@v4``, ``@release/v1``), not to a branch;
* what each workflow is for: ci.yml runs the README's ``make test``; book.yml builds with
  ``make book`` and publishes ``_build/html`` to GitHub Pages; release.yml checks the tag
  against the package version and publishes to PyPI by trusted publishing
  (``id-token: write``) and to a GitHub release; data-release.yml runs ``make data-release``
  and uploads ``dist/<tag>/`` as release assets.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
EXPECTED = ["book.yml", "ci.yml", "data-release.yml", "release.yml"]


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    """Validate workflow files with check-jsonschema's vendored schema (offline)."""
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        pytest.fail("check-jsonschema is missing: pip install -r requirements.txt")
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema"]
    command += ["vendor.github-workflows", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(workflow, dict), f"{name} is not a YAML mapping"
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def runs(workflow: dict) -> str:
    """Every shell command of the workflow, one script."""
    return "\n".join(step.get("run", "") for step in steps(workflow))


def job_using(workflow: dict, action: str) -> dict:
    found = [
        job
        for job in workflow["jobs"].values()
        if any(step.get("uses", "").startswith(action + "@") for step in job.get("steps", []))
    ]
    assert len(found) == 1, f"expected one job that uses {action}, found {len(found)}"
    return found[0]


def test_the_workflows_are_there():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == EXPECTED
    assert not list(WORKFLOWS.glob("*.yaml")), "use the .yml extension, as the others do"


@pytest.mark.parametrize("name", EXPECTED)
def test_workflow_matches_the_schema(name):
    done = check_jsonschema(WORKFLOWS / name)
    assert done.returncode == 0, f"{name}:\n{done.stdout}\n{done.stderr}"


def test_the_validator_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    # no `on:`, a job without `runs-on`, and a step that is neither `uses` nor `run`
    broken.write_text(
        "name: broken\njobs:\n  test:\n    steps:\n      - name: nothing\n        runn: make test\n"
    )
    done = check_jsonschema(broken)
    assert done.returncode != 0, "check-jsonschema accepted a broken workflow"
    assert "broken.yml" in done.stdout + done.stderr


@pytest.mark.parametrize("name", EXPECTED)
def test_actions_are_pinned_to_a_major_version(name):
    for step in steps(load(name)):
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert re.fullmatch(r"(release/)?v\d+", ref), f"{name}: {step['uses']} is not @vN"


def test_ci_runs_the_readme_test_command():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert "make test" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert any(step.get("run", "").strip() == "make test" for step in steps(ci))
    job = ci["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["container"].startswith("python:3.11-"), "CI tests with Python 3.11"
    script = runs(ci)
    assert re.search(r"apt-get install .*\bchromium\b.*\bfonts-noto-cjk\b", script)
    assert any(step.get("uses", "").startswith("actions/setup-node@") for step in steps(ci))


def test_ci_caches_the_data_and_rebuilds_the_mirror():
    ci = load("ci.yml")
    caches = [s for s in steps(ci) if s.get("uses", "").startswith("actions/cache@")]
    data = [s["with"] for s in caches if s["with"]["path"] == "~/.cache/fmbook"]
    assert len(data) == 1, "the book's data (~/.cache/fmbook) is cached once"
    assert "hashFiles('fmbook/data/registry.py'" in data[0]["key"]
    script = runs(ci)
    assert "FMBOOK_DATA_MIRROR=" in script, "the mirror is set for `make test`"
    assert "sha256sum -c" in script, "downloaded data is checked"


def test_book_builds_and_publishes_the_website():
    book = load("book.yml")
    assert book["on"]["push"]["branches"] == ["main"]
    assert book["permissions"]["pages"] == "write"
    assert book["permissions"]["id-token"] == "write"
    assert book["concurrency"]["group"]
    assert "make book" in runs(book)
    build = job_using(book, "actions/upload-pages-artifact")
    upload = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages")]
    assert upload[0]["with"]["path"] == "_build/html"
    assert any(s.get("uses", "").startswith("actions/configure-pages@") for s in build["steps"])
    deploy = job_using(book, "actions/deploy-pages")
    assert deploy["environment"]["name"] == "github-pages"


def test_release_publishes_by_trusted_publishing():
    release = load("release.yml")
    assert release["on"]["push"]["tags"] == ["v*.*.*"]
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert version and re.fullmatch(r"\d+\.\d+\.\d+", version[1]), "a tag v*.*.* names it"
    script = runs(release)
    assert "python -m build" in script
    assert 'test "$GITHUB_REF_NAME" = "v$version"' in script, "the tag is checked"
    assert 'version("fmbook")' in script
    pypi = job_using(release, "pypa/gh-action-pypi-publish")
    assert pypi["permissions"]["id-token"] == "write"
    assert pypi["environment"]["name"] == "pypi"
    publish = [s for s in pypi["steps"] if s.get("uses", "").startswith("pypa/")]
    assert "password" not in publish[0].get("with", {}), "no token: trusted publishing"
    assert "id-token" not in release.get("permissions", {}), "only the PyPI job gets a token"
    assert re.search(r"gh release create .*dist/\*", script)


def test_data_release_uploads_the_data_release_folder():
    data = load("data-release.yml")
    tag = data["on"]["workflow_dispatch"]["inputs"]["tag"]
    assert tag["required"] and tag["default"] == "data-v1"
    job = data["jobs"]["data-release"]
    assert "self-hosted" in job["runs-on"], "the data mirror is only on a self-hosted runner"
    script = runs(data)
    assert "make data-release" in script
    assert re.search(r'gh release upload "\$TAG" "dist/\$TAG"/\*', script)
    assert data["permissions"]["contents"] == "write"
