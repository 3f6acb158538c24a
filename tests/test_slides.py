"""The slide decks (tools/slides.py): one per part, made from the chapters, with no MyST
markup, no solution, and math and figures where the chapters have them. (The site test
opens a deck in Chromium: reveal.js and MathJax run offline.)"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import colab  # noqa: E402
import slides  # noqa: E402


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> dict[str, BeautifulSoup]:
    out = tmp_path_factory.mktemp("slides")
    paths = slides.build(out)
    return {p.name: BeautifulSoup(p.read_text(encoding="utf-8"), "html.parser") for p in paths}


def written_parts() -> list[str]:
    return sorted(
        p.parent.name.split("-", 1)[0]
        for p in ROOT.glob("chapters/*/index.md")
        if any(p.parent.glob("*.ipynb"))
    )


def test_one_deck_per_written_part(decks):
    assert sorted(decks) == [f"part-{n}.html" for n in written_parts()]


def test_each_chapter_has_a_title_slide_with_its_goals_and_a_summary(decks):
    book = colab.load_book()
    for landing, docs in slides.parts():
        if not docs:
            continue
        soup = decks[f"part-{Path(landing).parent.name.split('-', 1)[0]}.html"]
        titles = [h.get_text() for h in soup.find_all("h2")]
        for doc in docs:
            title = f"{book.chapters[doc]} {book.titles[doc]}"
            assert title in titles, f"{doc}: no title slide"
            assert f"Summary: {book.titles[doc]}" in titles, f"{doc}: no summary slide"
        assert len(soup.find_all("h3", string="Learning goals")) == len(docs), landing


def test_no_myst_markup_and_no_solution_in_the_decks(decks):
    for name, soup in decks.items():
        text = soup.get_text(" ")
        assert not re.search(r"\{[a-z][a-z:-]*\}`", text), f"{name}: a MyST role"
        assert "```{" not in text and ":::{" not in text, f"{name}: a MyST directive"
        assert "Solution to" not in text, f"{name}: a solution"


def test_math_and_figures_are_there(decks):
    maths = decks["part-4.html"].select(".math")
    assert len(maths) > 50
    assert all(re.fullmatch(r"\\\(.*\\\)|\\\[.*\\\]", m.get_text(), re.S) for m in maths)
    for name, soup in decks.items():
        images = soup.select("figure img[src^='data:image/png;base64,']")
        assert images, f"{name}: no figure"
        assert all(len(img.get("alt", "")) > 20 for img in images), name


def test_decks_load_reveal_and_mathjax_from_the_site(decks):
    for name, soup in decks.items():
        scripts = [s["src"] for s in soup.find_all("script", src=True)]
        assert scripts == ["../mathjax/tex-chtml.js", "../reveal.js/dist/reveal.js"], name
        assert all("://" not in link["href"] for link in soup.find_all("link", href=True))


def test_a_cell_tagged_slide_becomes_a_slide():
    doc = "chapters/4-math/attention"
    nb = json.loads((ROOT / f"{doc}.ipynb").read_text(encoding="utf-8"))
    md = slides.markdown_renderer()
    book = colab.load_book()
    before = slides.chapter_slides(book, doc, md, nb)
    cell = next(c for c in nb["cells"][5:] if c["cell_type"] == "markdown")
    cell.setdefault("metadata", {})["tags"] = ["slide"]
    cell["source"] = "".join(cell["source"]) + "\n\nA sentence only a teacher's slide has.\n"
    after = slides.chapter_slides(book, doc, md, nb)
    assert len(after) == len(before) + 1
    assert any("only a teacher" in "".join(s.body) for s in after)
