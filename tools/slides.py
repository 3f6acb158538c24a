"""Lecture slides, one reveal.js deck per part, generated from the chapters.

A deck is made from what the chapters already contain, so it never drifts from the book:

* a title slide for the part, with its chapters;
* for each chapter: a title slide with its learning goals; one slide per section (``##``)
  with the section's first paragraph, its first display equation and its first figure
  (further figures of the section follow as vertical slides); the summary; a pointer to
  the exercises;
* any cell tagged ``slide`` is shown whole, on its own slide, where it stands (teachers can
  add slides this way without touching this script).

MyST markup is turned into plain Markdown by the Colab converter (``tools/colab.py``:
citations as text, links to the website), then into HTML with markdown-it. Figures are the
notebooks' stored PNG outputs. The decks load reveal.js and MathJax from the website itself
(``../reveal.js/``, ``../mathjax/``), so that they work offline, like the site.

Usage: ``python tools/slides.py --out .cache/site-extra/slides`` (``make slides``; the site
serves the folder at ``slides/``).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

sys.path.insert(0, str(Path(__file__).resolve().parent))
import colab  # noqa: E402  (the one MyST -> Markdown converter)

ROOT = Path(__file__).resolve().parents[1]
PARAGRAPH_CHARS = 600  # a longer first paragraph is cut at a sentence end
SKIP_SECTIONS = {"exercises", "references", "summary"}


def _render_math(self, tokens, idx, options, env) -> str:
    content = html.escape(tokens[idx].content.strip())
    if tokens[idx].type == "math_inline":
        return f'<span class="math">\\({content}\\)</span>'
    return f'<div class="math">\\[{content}\\]</div>\n'


def markdown_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table").use(dollarmath_plugin)
    for rule in ("math_inline", "math_block", "math_block_label"):
        md.add_render_rule(rule, _render_math)
    return md


@dataclass
class Slide:
    title: str
    body: list[str] = field(default_factory=list)  # HTML fragments
    below: list[Slide] = field(default_factory=list)  # vertical slides

    def html(self) -> str:
        own = f"<section><h2>{html.escape(self.title)}</h2>\n" + "\n".join(self.body) + "</section>"
        if not self.below:
            return own
        return "<section>\n" + own + "\n" + "\n".join(s.html() for s in self.below) + "\n</section>"


def _figure(cell: dict, md: MarkdownIt) -> str | None:
    """The cell's stored PNG as an <img>, with its caption; None if it has none."""
    for output in cell.get("outputs", []):
        png = output.get("data", {}).get("image/png")
        if png:
            meta = cell.get("metadata", {}).get("mystnb", {})
            alt = html.escape(meta.get("image", {}).get("alt", "figure"))
            caption = meta.get("figure", {}).get("caption", "")
            src = "data:image/png;base64," + "".join(png).replace("\n", "")
            cap = f"<figcaption>{md.renderInline(caption)}</figcaption>" if caption else ""
            return f'<figure><img src="{src}" alt="{alt}">{cap}</figure>'
    return None


def _first_paragraph(blocks: list[str]) -> str | None:
    for block in blocks:
        text = block.strip()
        if not text or text.startswith(("#", ">", "$$", "```", "|", "<", "*", "-", "!")):
            continue
        if re.match(r"^\d+\.", text):
            continue
        if len(text) > PARAGRAPH_CHARS:
            cut = text.rfind(". ", 0, PARAGRAPH_CHARS)
            text = text[: cut + 1] if cut > 0 else text[:PARAGRAPH_CHARS] + " ..."
        return text
    return None


def _display_math(blocks: list[str]) -> str | None:
    return next((b.strip() for b in blocks if b.strip().startswith("$$")), None)


def _quote_titled(blocks: list[str], title: str) -> str | None:
    """The body of an admonition the converter made into ``> **title**`` (a quote)."""
    for block in blocks:
        if block.startswith(f"> **{title}**"):
            lines = [
                line[2:] if line.startswith("> ") else line.lstrip(">")
                for line in block.splitlines()
            ]
            return "\n".join(lines[1:]).strip()
    return None


@dataclass
class Section:
    title: str
    blocks: list[str] = field(default_factory=list)  # Markdown blocks
    figures: list[str] = field(default_factory=list)  # HTML


def chapter_slides(
    book: colab.Book, doc: str, md: MarkdownIt, nb: dict | None = None
) -> list[Slide]:
    """The slides of one chapter (see the module docstring); ``nb``: the notebook, if not
    the one on disk."""
    nb = nb or json.loads((ROOT / f"{doc}.ipynb").read_text(encoding="utf-8"))
    chapter = colab.Chapter(book, doc, colab.glued_values(nb))
    number = book.chapters.get(doc, "")
    title = f"{number} {book.titles.get(doc, doc)}".strip()
    intro = Section(title)
    sections: list[Section] = [intro]
    tagged: list[tuple[int, Slide]] = []
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown":
            segments = colab.convert_markdown(chapter, "".join(cell["source"]))
            text = "\n\n".join(t for solution, t in segments if not solution)
            for block in re.split(r"\n\s*\n(?=\S)", text):
                heading = re.match(r"^##\s+(.*)$", block.strip())
                if heading:
                    sections.append(Section(heading[1].strip()))
                    continue
                sections[-1].blocks.append(block)
            if "slide" in tags:
                tagged.append((len(sections), Slide(sections[-1].title, [md.render(text)])))
        elif cell["cell_type"] == "code" and not chapter.solution:
            figure = _figure(cell, md)
            if figure:
                sections[-1].figures.append(figure)
    slides = [_title_slide(intro, md)]
    for k, section in enumerate(sections[1:], start=1):
        name = section.title.lower()
        if name == "summary":
            slides.append(
                Slide(
                    f"Summary: {book.titles.get(doc, doc)}",
                    [md.render("\n\n".join(section.blocks))],
                )
            )
        elif name == "exercises":
            n = sum("**Exercise" in b for b in section.blocks)
            slides.append(
                Slide(
                    "Exercises",
                    [
                        md.render(
                            f"{n} exercises with solutions in the chapter: [{title}]({book.url(doc)})"
                        )
                    ],
                )
            )
        elif name not in SKIP_SECTIONS:
            slides.append(_section_slide(section, md))
        slides += [slide for at, slide in tagged if at == k]
    return slides


def _title_slide(intro: Section, md: MarkdownIt) -> Slide:
    body = []
    goals = _quote_titled(intro.blocks, "Learning goals")
    if goals:
        body.append("<h3>Learning goals</h3>" + md.render(goals))
    else:
        first = _first_paragraph(intro.blocks)
        body += [md.render(first)] if first else []
    slide = Slide(intro.title, body)
    slide.below = [Slide(intro.title, [f]) for f in intro.figures[:1]]
    return slide


def _section_slide(section: Section, md: MarkdownIt) -> Slide:
    body = []
    for part in (_first_paragraph(section.blocks), _display_math(section.blocks)):
        if part:
            body.append(md.render(part))
    if section.figures:
        body.append(section.figures[0])
    slide = Slide(section.title, body)
    slide.below = [Slide(section.title, [f]) for f in section.figures[1:]]
    return slide


# ------------------------------------------------------------------------------ decks

STYLE = """
.reveal { font-size: 26px; }
.reveal h2 { font-size: 1.5em; }
.reveal section img { max-height: 430px; max-width: 92%; }
.reveal figcaption { font-size: 0.6em; color: #555; }
.reveal .deck-part { color: #777; font-size: 0.7em; }
.reveal section p, .reveal section li { text-align: left; }
"""


def parts(root: Path = ROOT) -> list[tuple[str, list[str]]]:
    """(landing page, chapter docs) of each numbered part of _toc.yml."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    out = []
    for part in toc["parts"]:
        if not part.get("numbered"):
            continue
        for landing in part["chapters"]:
            docs = [s["file"] for s in landing.get("sections", [])]
            out.append((landing["file"], [d for d in docs if (root / f"{d}.ipynb").exists()]))
    return out


def deck(book: colab.Book, landing: str, docs: list[str], md: MarkdownIt) -> str:
    number = book.chapters.get(landing, "")
    title = f"Part {number}: {book.titles.get(landing, landing)}"
    chapters = "".join(
        f"<li>{html.escape(book.chapters.get(d, ''))} {html.escape(book.titles.get(d, d))}</li>"
        for d in docs
    )
    slides = [
        f'<section><p class="deck-part">Foundation Models — from research to practice</p>'
        f"<h1>{html.escape(title)}</h1><ol>{chapters}</ol></section>"
    ]
    for doc in docs:
        slides += [s.html() for s in chapter_slides(book, doc, md)]
    body = "\n".join(slides)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} (slides)</title>
<link rel="stylesheet" href="../reveal.js/dist/reveal.css">
<link rel="stylesheet" href="../reveal.js/dist/theme/white.css">
<style>{STYLE}</style>
<script src="../mathjax/tex-chtml.js" defer></script>
</head>
<body>
<div class="reveal"><div class="slides">
{body}
</div></div>
<script src="../reveal.js/dist/reveal.js"></script>
<script>Reveal.initialize({{hash: true, width: 1280, height: 800, slideNumber: "c/t"}});</script>
</body>
</html>
"""


def build(out: Path, root: Path = ROOT) -> list[Path]:
    book = colab.load_book(root)
    md = markdown_renderer()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for landing, docs in parts(root):
        if not docs:
            continue
        name = Path(landing).parent.name.split("-", 1)[0]  # "chapters/4-math/index" -> "4"
        path = out / f"part-{name}.html"
        path.write_text(deck(book, landing, docs, md), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "site-extra" / "slides")
    args = parser.parse_args(argv)
    written = build(args.out)
    print(f"{len(written)} slide decks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
