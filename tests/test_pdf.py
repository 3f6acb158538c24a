"""The printable book (`make pdf`): the PDF exists, holds every chapter, and prints the
Chinese worked example and the mathematics (Jupyter Book's LaTeX builder with XeLaTeX).

Builds nothing: run `make pdf` (which runs this file after the build)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.pdf

ROOT = Path(__file__).resolve().parents[1]
LATEX = ROOT / "_build" / "latex"
PDF = LATEX / "fmbook.pdf"


@pytest.fixture(scope="module")
def text() -> str:
    if not PDF.is_file():
        pytest.fail(f"{PDF} is missing: run `make pdf` first")
    done = subprocess.run(["pdftotext", "-layout", str(PDF), "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def chapter_titles() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    titles = []
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            for doc in [chapter["file"], *(s["file"] for s in chapter.get("sections", []))]:
                path = next(ROOT.glob(f"{doc}.*"))
                source = path.read_text(encoding="utf-8")
                title = re.search(r"^(?:\"|\s)*#\s+([^\n\"]+?)(?:\\n|\n|\")", source, re.M)
                assert title, f"{doc}: no title"
                titles.append(title[1].strip())
    return titles


def test_the_pdf_has_every_chapter(text):
    pages = subprocess.run(["pdfinfo", str(PDF)], capture_output=True, text=True).stdout
    n_pages = int(re.search(r"Pages:\s+(\d+)", pages)[1])
    assert n_pages > 300, f"only {n_pages} pages"

    def flat(s: str) -> str:  # Sphinx prints straight quotes as curly ones
        return re.sub(r"\s+", " ", s).replace("’", "'")

    missing = [t for t in chapter_titles() if flat(t) not in flat(text)]
    assert not missing, f"chapters missing from the PDF: {missing}"


def test_the_chinese_example_prints(text):
    assert "我爱北京天安门" in text.replace(" ", "")
    log = (LATEX / "fmbook.log").read_text(encoding="utf-8", errors="replace")
    missing_cjk = re.findall(r"Missing character: There is no (\S) \(U\+([0-9A-F]{4,5})\)", log)
    cjk = {c for c, code in missing_cjk if 0x4E00 <= int(code, 16) <= 0x9FFF}
    assert not cjk, f"Chinese characters missing from the fonts: {sorted(cjk)}"


def test_math_is_typeset_not_left_as_tex(text):
    assert "softmax" in text and "√" in text and "∑" in text  # typeset symbols
    assert "$$" not in text and "\\begin{" not in text, "raw TeX in the PDF"


def test_curly_quotes_are_not_set_as_full_width_cjk_punctuation(text):
    assert "book’s" in text and "book’ s" not in text
