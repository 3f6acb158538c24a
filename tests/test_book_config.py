"""Fast checks of the website's configuration (_config.yml, _toc.yml); nothing is built.

* every page the table of contents names exists, and every page and notebook is in it;
* the seven parts appear in the book's order, each with its landing page;
* the Colab link of every notebook, built the way Jupyter Book builds it, names a notebook
  that exists in the repository;
* the repository's address is written in exactly one tracked file, _config.yml.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# The seven parts, in order: one numbered toctree ("Chapters"), one landing page per part,
# the part's chapters as its sections. Planned parts say so in their title.
PARTS = [
    ("chapters/1-background/index", "Background"),
    ("chapters/2-concepts/index", "Core concepts"),
    ("chapters/3-algorithms/index", "Core algorithms"),
    ("chapters/4-math/index", "Mathematics"),
    ("chapters/5-practice/index", "Practice"),
    ("chapters/6-applications/index", "Applications"),
    ("chapters/7-trends/index", "Trends and challenges"),
]
FRONT_MATTER = ["book/how-to-use", "book/setup", "book/course-guide"]
BACK_MATTER = [
    "book/notation",
    "book/tools",
    "book/performance",
    "book/faq",
    "book/references",
    "book/glossary",
]


def load_yaml(name: str) -> dict:
    path = ROOT / name
    if not path.is_file():
        pytest.fail(f"{name} is missing from the repository root")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        pytest.fail(f"{name} is not a YAML mapping")
    return data


@pytest.fixture(scope="module")
def config() -> dict:
    return load_yaml("_config.yml")


@pytest.fixture(scope="module")
def toc() -> dict:
    return load_yaml("_toc.yml")


def toc_files(toc: dict) -> list[str]:
    """Every `file:` of the table of contents, root first, in reading order."""
    found = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                found.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return found


def source_of(entry: str) -> Path | None:
    """The file a toc entry names (Jupyter Book allows the suffix to be left out)."""
    path = ROOT / entry
    if path.suffix in (".md", ".ipynb"):
        return path if path.is_file() else None
    for suffix in (".md", ".ipynb"):
        if path.with_suffix(suffix).is_file():
            return path.with_suffix(suffix)
    return None


def without_suffix(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix()


def chapter_notebooks() -> list[Path]:
    return sorted(
        p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
    )


def test_toc_is_a_jupyter_book_toc(toc):
    assert toc.get("format") == "jb-book", "_toc.yml must use the jb-book format"
    assert toc.get("root") == "book/intro"


def test_every_toc_entry_exists(toc):
    missing = [entry for entry in toc_files(toc) if source_of(entry) is None]
    assert not missing, f"_toc.yml names pages that do not exist: {missing}"


def test_no_page_is_listed_twice(toc):
    entries = [e.removesuffix(".md").removesuffix(".ipynb") for e in toc_files(toc)]
    duplicates = sorted({e for e in entries if entries.count(e) > 1})
    assert not duplicates, f"_toc.yml lists these pages more than once: {duplicates}"


def test_every_notebook_is_in_the_toc(toc):
    listed = {e.removesuffix(".md").removesuffix(".ipynb") for e in toc_files(toc)}
    notebooks = chapter_notebooks()
    assert notebooks, "there is no notebook under chapters/"
    absent = [without_suffix(nb) for nb in notebooks if without_suffix(nb) not in listed]
    assert not absent, (
        f"notebooks missing from _toc.yml (the site would silently leave them out): {absent}"
    )


def test_every_markdown_page_is_in_the_toc(toc):
    listed = {e.removesuffix(".md").removesuffix(".ipynb") for e in toc_files(toc)}
    pages = sorted([*(ROOT / "book").rglob("*.md"), *(ROOT / "chapters").rglob("*.md")])
    absent = [without_suffix(p) for p in pages if without_suffix(p) not in listed]
    assert not absent, f"pages missing from _toc.yml: {absent}"


def chapters_part(toc) -> dict:
    [part] = [p for p in toc["parts"] if p.get("caption") == "Chapters"]
    return part


def test_parts_in_order_with_landing_pages(toc):
    parts = toc["parts"]
    assert [p["caption"] for p in parts] == ["Getting started", "Chapters", "Reference"]
    landing = [c["file"] for c in chapters_part(toc)["chapters"]]
    assert landing == [file for file, _ in PARTS]
    front = [c["file"] for c in parts[0]["chapters"]]
    back = [c["file"] for c in parts[-1]["chapters"]]
    assert front == FRONT_MATTER, f"front matter should be {FRONT_MATTER}, got {front}"
    assert back == BACK_MATTER, f"back matter should be {BACK_MATTER}, got {back}"


def test_parts_are_numbered_titled_once_and_planned_parts_marked(toc):
    """Sphinx numbers the parts (1, 2 ...) and chapters (1.1 ...): titles carry no number."""
    assert chapters_part(toc).get("numbered") is True
    for chapter, (file, title) in zip(chapters_part(toc)["chapters"], PARTS, strict=True):
        heading = (ROOT / f"{file}.md").read_text(encoding="utf-8").splitlines()[0]
        planned = not chapter.get("sections")
        assert heading == f"# {title}" + (" (planned)" if planned else ""), heading
        text = (ROOT / f"{file}.md").read_text(encoding="utf-8")
        assert not re.search(r"^##\s", text, re.M), f"{file}: a numbered subheading"


def test_each_part_has_its_chapters_as_sections(toc):
    for chapter in chapters_part(toc)["chapters"]:
        for section in chapter.get("sections", []):
            folder = PurePosixPath(chapter["file"]).parent
            assert PurePosixPath(section["file"]).parent == folder, (
                f"{section['file']} is listed under {chapter['file']} but lives elsewhere"
            )


def test_config_shows_stored_outputs_with_local_mathjax(config):
    assert config["execute"]["execute_notebooks"] == "off", "the site must not run notebooks"
    sphinx = config["sphinx"]["config"]
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]
    mathjax = sphinx["mathjax_path"]
    assert "://" not in mathjax and not mathjax.startswith("//"), (
        f"mathjax_path {mathjax!r} loads MathJax from the network; the site must serve its own"
    )
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    assert (ROOT / "book/references.bib").is_file()


def github_parts(config: dict) -> tuple[str, str, str]:
    """(owner, repository, branch) from `repository:` of _config.yml."""
    repo = config.get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch")
    assert url and branch, "_config.yml needs repository.url and repository.branch"
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    assert parsed.netloc == "github.com" and len(parts) == 2, (
        f"repository.url {url!r} must be https://github.com/<owner>/<repo> for Colab links"
    )
    return parts[0], parts[1], branch


def colab_url(config: dict, notebook: Path) -> str:
    """The Colab launch link of a notebook, as sphinx-book-theme builds it."""
    owner, repo, branch = github_parts(config)
    colab = config["launch_buttons"]["colab_url"].strip("/")
    book = (config["repository"].get("path_to_book") or "").strip("/")
    page = notebook.relative_to(ROOT).as_posix()
    path = f"{book}/{page}" if book else page
    return f"{colab}/github/{owner}/{repo}/blob/{branch}/{path}"


COLAB = re.compile(
    r"^https://colab\.research\.google\.com/github/([^/]+)/([^/]+)/blob/([^/]+)/(.+)$"
)


def test_colab_links_name_existing_notebooks(config):
    assert config["repository"]["branch"] == "main"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    for notebook in chapter_notebooks():
        url = colab_url(config, notebook)
        match = COLAB.match(url)
        assert match, f"{url} is not a Colab link to a notebook on GitHub"
        path = match.group(4)
        assert path.endswith(".ipynb") and (ROOT / path).is_file(), (
            f"the Colab link {url} names {path}, which is not a notebook of the repository"
        )


def repository_files() -> list[Path]:
    """Tracked files plus new files git does not ignore (so a file is checked before commit)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"not a git checkout, cannot list the repository's files: {err}")
    names = sorted({n for n in out.decode().split("\0") if n})
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def test_repository_url_is_written_only_in_config(config):
    """The address is authored in _config.yml alone. Notebooks carry it only inside the
    setup cell, which is generated from _config.yml (tests/setup_cell.py) and checked to
    equal that rendering, so a changed address is caught in every notebook."""
    import setup_cell

    owner, repo, _ = github_parts(config)
    address = f"github.com/{owner}/{repo}".lower().encode()
    files = repository_files()
    assert any(f.name == "_config.yml" for f in files), "_config.yml is not part of the repository"

    def holds_address(f):
        if f.suffix == ".ipynb":  # everything but the generated setup cell
            cells = json.loads(f.read_text(encoding="utf-8"))["cells"]
            rendered = setup_cell.render()
            text = "".join("".join(c["source"]) for c in cells if "".join(c["source"]) != rendered)
            return address in text.lower().encode()
        return address in f.read_bytes().lower()

    # The installed package has no _config.yml, so fmbook's registry carries the release
    # address itself; tests/test_data_registry.py pins it to _config.yml's.
    pinned = {"_config.yml", "fmbook/data/registry.py"}
    holders = [
        f.relative_to(ROOT).as_posix()
        for f in files
        if f.relative_to(ROOT).as_posix() not in pinned and holds_address(f)
    ]
    assert not holders, (
        f"the repository address {address.decode()} must live only in _config.yml "
        f"(read it from there); it is also written in: {holders}"
    )
