"""Notebooks for Colab and downloads, generated from the book's sources.

The chapters are written in MyST for the website: ``{cite}`` roles, directive fences,
exercises with solutions folded by the theme, links between pages. Opened as they are in
Colab, all of that shows as raw markup and every solution is in plain view. This script
writes, for each chapter of ``_toc.yml``, a notebook that reads well anywhere:

* citations become text (``Devlin et al., 2019``) linked to the website's bibliography;
* ``{doc}``/``{ref}``/``{term}`` and relative links point to the website;
* glued numbers are filled in from the notebook's stored outputs;
* exercises keep the website's numbers (part.chapter.k); admonitions become quotes;
* solutions are folded: text inside ``<details>``, code in a Colab form cell with no outputs.

Three editions, from the same conversion (``--edition``):

* ``colab`` (the default; the launch buttons open it): solutions folded, as above;
* ``student``: every solution removed, text and code; each exercise gets one empty code
  cell for the answer;
* ``teacher``: every solution in plain view, its code cells with their stored outputs.

Usage: ``python tools/colab.py [--out _build/colab] [--edition colab]`` (``make colab``
writes all three: the student and teacher editions under ``editions/``). Unknown roles or
directives are errors, so that new markup cannot leak into the notebooks unnoticed.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ADMONITIONS = {
    "admonition", "note", "warning", "tip", "important", "hint", "caution", "attention",
    "danger", "error", "seealso",
}  # fmt: skip
ROLE = re.compile(r"\{([a-z][a-z:-]*)\}`([^`]*)`")
FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|:{3,})\{([a-z][a-z:-]*)\}\s*(.*)$")
LITERAL_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
LABEL_LINE = re.compile(r"^\(([A-Za-z0-9_.:-]+)\)=\s*$")
CHECK_CALL = re.compile(r"`(check\.exercise\([^`]*\))`")  # an exercise's check (fmbook.check)


class MarkupError(ValueError):
    """A role or directive the generator does not know how to turn into plain Markdown."""


# --------------------------------------------------------------------------- the book
@dataclass
class Book:
    """What the conversion needs to know about the whole book."""

    root: Path
    site: str  # the website's address, ending in "/"
    chapters: dict[str, str] = field(default_factory=dict)  # docname -> "3.2"
    titles: dict[str, str] = field(default_factory=dict)  # docname -> title
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (doc, text)
    cites: dict[str, str] = field(default_factory=dict)  # bib key -> "Author et al., 2019"
    terms: dict[str, str] = field(default_factory=dict)  # lower-case term -> term

    def url(self, docname: str, anchor: str = "") -> str:
        return f"{self.site}{docname}.html" + (f"#{anchor}" if anchor else "")


def load_book(root: Path = ROOT) -> Book:
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    site = config["html"]["baseurl"].rstrip("/") + "/"
    book = Book(root, site)
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    docs = [toc["root"]]
    for part in toc["parts"]:
        for number, chapter in enumerate(part["chapters"], start=1):
            docs.append(chapter["file"])
            if part.get("numbered"):
                book.chapters[chapter["file"]] = str(number)
            for sub, section in enumerate(chapter.get("sections", []), start=1):
                docs.append(section["file"])
                if part.get("numbered"):
                    book.chapters[section["file"]] = f"{number}.{sub}"
    for doc in docs:
        _index_document(book, doc)
    book.cites = _citations(root / "book" / "references.bib")
    glossary = (root / "book" / "glossary.md").read_text(encoding="utf-8")
    for term in re.findall(r"^([^\s:#`{][^\n]*)\n:\s", glossary, flags=re.M):
        book.terms[term.strip().lower()] = term.strip()
    return book


def _document_text(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return [path.read_text(encoding="utf-8")]


def _source_path(root: Path, doc: str) -> Path:
    for suffix in (".ipynb", ".md"):
        if (root / f"{doc}{suffix}").exists():
            return root / f"{doc}{suffix}"
    raise MarkupError(f"_toc.yml names {doc!r}, but neither {doc}.ipynb nor {doc}.md exists")


def _index_document(book: Book, doc: str) -> None:
    path = _source_path(book.root, doc)
    texts = _document_text(path)
    number = book.chapters.get(doc)
    if path.suffix == ".ipynb":  # figures of code cells (myst-nb), numbered in page order
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        names = [c["metadata"].get("mystnb", {}).get("figure", {}).get("name") for c in cells]
        for k, name in enumerate(filter(None, names), start=1):
            book.labels[name] = (doc, f"Figure {number}.{k}" if number else f"Figure {k}")
    exercise = 0
    for text in texts:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            heading = re.match(r"^#\s+(.*)$", line)
            if heading and doc not in book.titles:
                book.titles[doc] = heading[1].strip()
            label = LABEL_LINE.match(line)
            if label:
                following = next((x for x in lines[i + 1 :] if x.strip()), "")
                book.labels[label[1]] = (doc, following.lstrip("# ").strip())
            if re.match(r"^\s*(`{3,}|:{3,})\{exercise\}", line):
                exercise += 1
                name = f"Exercise {number}.{exercise}" if number else f"Exercise {exercise}"
                for option in lines[i + 1 : i + 6]:
                    found = re.match(r"^\s*:label:\s*(\S+)", option)
                    if found:
                        book.labels[found[1]] = (doc, name)
    book.titles.setdefault(doc, doc.rsplit("/", 1)[-1])


def _citations(bibfile: Path) -> dict[str, str]:
    from pybtex.database import parse_file

    cites = {}
    for key, entry in parse_file(str(bibfile)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
        if not names:
            who = entry.fields.get("organization", entry.fields.get("title", key))
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        cites[key] = f"{who}, {entry.fields.get('year', 'n.d.')}"
    return cites


# ----------------------------------------------------------------------- one chapter
@dataclass
class Chapter:
    book: Book
    doc: str  # e.g. "chapters/3-algorithms/masked-lm"
    glue: dict[str, object]
    exercises: int = 0
    solution: str | None = None  # the exercise number whose solution is open
    edition: str = "colab"
    answered: set[str] = field(default_factory=set)  # student edition: answer cells made
    checks: dict[str, str] = field(default_factory=dict)  # exercise -> its check.exercise call

    @property
    def number(self) -> str | None:
        return self.book.chapters.get(self.doc)


def glued_values(nb: dict) -> dict[str, object]:
    values = {}
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if not record:
                continue
            text = output["data"].get("application/papermill.record/text/plain")
            if text is None:
                continue
            try:
                values[record["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[record["name"]] = text.strip("'\"")
    return values


def _resolve_doc(chapter: Chapter, target: str) -> str:
    target = re.sub(r"\.(ipynb|md)$", "", target)
    if target.startswith("/"):
        return target.lstrip("/")
    base = Path(chapter.doc).parent
    parts: list[str] = []
    for piece in (base / target).as_posix().split("/"):
        if piece == "..":
            parts.pop()
        elif piece not in (".", ""):
            parts.append(piece)
    return "/".join(parts)


def _text_and_target(content: str) -> tuple[str | None, str]:
    found = re.match(r"^(.*?)\s*<([^>]+)>$", content, flags=re.S)
    return (found[1], found[2]) if found else (None, content)


def _format_glue(chapter: Chapter, content: str) -> str:
    name, _, spec = content.partition(":")
    if name not in chapter.glue:
        raise MarkupError(f"{chapter.doc}: glue {name!r} is not stored in the notebook's outputs")
    value = chapter.glue[name]
    return format(value, spec) if spec else str(value)


def convert_role(chapter: Chapter, role: str, content: str) -> str:
    book = chapter.book
    if role.startswith("cite"):
        keys = [k.strip() for k in content.split(",") if k.strip()]
        missing = [k for k in keys if k not in book.cites]
        if missing:
            raise MarkupError(f"{chapter.doc}: unknown citation key(s) {missing}")
        link = book.url("book/references")
        items = "; ".join(f"[{book.cites[k]}]({link})" for k in keys)
        return items if role == "cite:t" else f"({items})"
    if role == "doc":
        text, target = _text_and_target(content)
        doc = _resolve_doc(chapter, target)
        return f"[{text or book.titles.get(doc, doc)}]({book.url(doc)})"
    if role in ("ref", "numref"):
        text, label = _text_and_target(content)
        if label not in book.labels:
            raise MarkupError(f"{chapter.doc}: unknown label {label!r} in {{{role}}}")
        doc, title = book.labels[label]
        return f"[{text or title}]({book.url(doc, label.lower().replace('_', '-'))})"
    if role == "term":
        text, term = _text_and_target(content)
        name = book.terms.get(term.lower(), term)
        return f"[{text or term}]({book.url('book/glossary', 'term-' + name.replace(' ', '-'))})"
    if role in ("glue", "glue:", "glue:text", "glue:md"):
        return _format_glue(chapter, content)
    if role == "math":
        return f"${content}$"
    if role == "eq":
        return f"({content})"
    raise MarkupError(f"{chapter.doc}: no Colab form for the role {{{role}}}")


def _convert_inline(chapter: Chapter, text: str) -> str:
    """Roles, then relative links outside inline code spans."""

    def role(match: re.Match) -> str:
        return convert_role(chapter, match[1], match[2])

    def link(match: re.Match) -> str:
        label, target = match[1], match[2]
        if re.match(r"^[a-z]+:|^#", target):
            return match[0]
        path, _, anchor = target.partition("#")
        return f"[{label}]({chapter.book.url(_resolve_doc(chapter, path), anchor)})"

    text = ROLE.sub(role, text)  # a role's body is in backticks, so roles go first
    parts = re.split(r"(`[^`\n]*`)", text)
    return "".join(p if i % 2 else LINK.sub(link, p) for i, p in enumerate(parts))


def _options(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    options = {}
    while lines and re.match(r"^\s*:[a-z-]+:", lines[0]):
        key, _, value = lines.pop(0).strip()[1:].partition(":")
        options[key] = value.strip()
    return options, lines


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


def convert_markdown(chapter: Chapter, text: str) -> list[tuple[str | None, str]]:
    """Markdown cell -> segments (solution number or None, plain Markdown)."""
    segments: list[tuple[str | None, list[str]]] = [(chapter.solution, [])]

    def emit(line: str) -> None:
        segments[-1][1].append(line)

    plain: list[str] = []

    def flush() -> None:
        if plain:
            emit(_convert_inline(chapter, "\n".join(plain)))
            plain.clear()

    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if LABEL_LINE.match(line) or re.match(r"^%", line):
            i += 1
            continue
        fence = FENCE_OPEN.match(line)
        literal = LITERAL_OPEN.match(line) if not fence else None
        if not fence and not literal:
            plain.append(line)
            i += 1
            continue
        flush()
        if literal:
            end = _closing(lines, i, literal[2])
            emit("\n".join(lines[i : end + 1]))
            i = end + 1
            continue
        end = _closing(lines, i, fence[2])
        name, argument = fence[3], fence[4].strip()
        options, body = _options(lines[i + 1 : end])
        i = end + 1
        if name == "solution-start":
            chapter.solution = chapter_exercise_name(chapter, argument)
            segments.append((chapter.solution, []))
            continue
        if name == "solution-end":
            chapter.solution = None
            segments.append((None, []))
            continue
        inner = _join(convert_markdown_nested(chapter, "\n".join(body)))
        if name == "exercise":
            chapter.exercises += 1
            title = f" ({_convert_inline(chapter, argument)})" if argument else ""
            emit(f"**Exercise {chapter_number(chapter)}**{title}\n\n{inner}")
            call = CHECK_CALL.search(inner)
            if call:
                chapter.checks[f"Exercise {chapter_number(chapter)}"] = call[1]
        elif name == "solution":
            emit(_details(f"Solution to {chapter_exercise_name(chapter, argument)}", inner))
        elif name in ADMONITIONS:
            title = _convert_inline(chapter, argument) if argument else name.capitalize()
            emit(_quote(f"**{title}**\n\n{inner}"))
        elif name == "dropdown":
            emit(_details(_convert_inline(chapter, argument) or "Details", inner))
        elif name == "math":
            emit(f"$$\n{chr(10).join(body)}\n$$")
        elif name in ("code-block", "code", "code-cell"):
            emit(f"```{argument}\n{chr(10).join(body)}\n```")
        else:
            raise MarkupError(f"{chapter.doc}: no Colab form for the directive {{{name}}}")
    flush()
    return [(sol, "\n".join(body).strip("\n")) for sol, body in segments if "".join(body).strip()]


def convert_markdown_nested(chapter: Chapter, text: str) -> list[tuple[str | None, str]]:
    saved = chapter.solution
    chapter.solution = None
    try:
        return convert_markdown(chapter, text)
    finally:
        chapter.solution = saved


def _join(segments: list[tuple[str | None, str]]) -> str:
    return "\n\n".join(text for _, text in segments)


def _details(summary: str, body: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"


def _closing(lines: list[str], start: int, fence: str) -> int:
    """Index of the line that closes the fence opened at ``start`` (nested fences skipped)."""
    char, depth = re.escape(fence[0]), 0
    for j in range(start + 1, len(lines)):
        if re.fullmatch(rf"\s*{char}{{{len(fence)},}}\s*", lines[j]):
            if depth == 0:
                return j
            depth -= 1
        elif re.match(rf"^\s*{char}{{{len(fence)},}}\S", lines[j]):
            depth += 1
    raise MarkupError(f"unclosed fence {fence!r} opened by: {lines[start]!r}")


def chapter_number(chapter: Chapter) -> str:
    return f"{chapter.number}.{chapter.exercises}" if chapter.number else str(chapter.exercises)


def chapter_exercise_name(chapter: Chapter, label: str) -> str:
    label = label.strip()
    if label in chapter.book.labels:
        return chapter.book.labels[label][1]
    raise MarkupError(f"{chapter.doc}: a solution refers to the unknown exercise {label!r}")


# ------------------------------------------------------------------------- notebooks
def _markdown_cell(cell_id: str, text: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


EDITIONS = ("colab", "student", "teacher")


def _answer_cell(chapter: Chapter, solution: str) -> list[dict]:
    """Student edition: one empty code cell per exercise, where its solution was."""
    if solution in chapter.answered:
        return []
    chapter.answered.add(solution)
    cell_id = "answer-" + re.sub(r"[^A-Za-z0-9]+", "-", solution).strip("-").lower()
    source = f"# {solution}: your answer here\n"
    if solution in chapter.checks:
        source += f"from fmbook import check\n\n{chapter.checks[solution]}\n"
    return [{"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {},
             "outputs": [], "source": source}]  # fmt: skip


def _solution_cells(chapter: Chapter, cell: dict, source: str) -> list[dict]:
    """A code cell inside a solution, in the chapter's edition."""
    if chapter.edition == "student":
        return _answer_cell(chapter, chapter.solution)
    new = {key: value for key, value in cell.items()}
    new["metadata"] = dict(cell.get("metadata", {}))
    if chapter.edition == "teacher":
        new["source"] = f"# Solution to {chapter.solution}\n{source}"
        return [new]
    title = f"#@title Solution to {chapter.solution} (double-click to show the code)"
    new["source"] = f"{title}\n{source}"
    new["metadata"]["cellView"] = "form"
    new["outputs"], new["execution_count"] = [], None
    return [new]


def _solution_text(chapter: Chapter, solution: str, text: str, cell_id: str) -> list[dict]:
    """Markdown of a solution, in the chapter's edition."""
    if chapter.edition == "student":
        return _answer_cell(chapter, solution)
    if chapter.edition == "teacher":
        return [_markdown_cell(cell_id, f"**Solution to {solution}**\n\n{text}")]
    return [_markdown_cell(cell_id, _details(f"Solution to {solution}", text))]


def convert_notebook(book: Book, doc: str, edition: str = "colab") -> dict:
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {', '.join(EDITIONS)}, got {edition!r}")
    path = _source_path(book.root, doc)
    nb = json.loads(path.read_text(encoding="utf-8"))
    chapter = Chapter(book, doc, glued_values(nb), edition=edition)
    header = (
        f"*Generated for Colab from the book "
        f"[Foundation Models — from research to practice]({book.site}). "
        f"Read this chapter with its figures and cross-references on the "
        f"[website]({book.url(doc)}). Run the first code cell to install the book's library.*"
    )
    header += {
        "colab": "",
        "student": "\n\n**Student edition**: the solutions are removed; each exercise has an "
        "empty cell for your answer.",
        "teacher": "\n\n**Teacher edition**: every solution is shown, with its outputs.",
    }[edition]
    cells = [_markdown_cell("colab-header", header)]
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            for k, (solution, text) in enumerate(convert_markdown(chapter, source)):
                cell_id = f"{cell.get('id', 'md')}-{k}"
                if solution:
                    cells += _solution_text(chapter, solution, text, cell_id)
                else:
                    cells.append(_markdown_cell(cell_id, text))
        elif cell["cell_type"] == "code" and chapter.solution:
            cells += _solution_cells(chapter, cell, source)
        elif cell["cell_type"] == "code":
            new = {key: value for key, value in cell.items()}
            new["metadata"] = dict(cell.get("metadata", {}))
            cells.append(new)
        else:
            cells.append(cell)
    if chapter.solution:
        raise MarkupError(f"{doc}: a solution-start has no solution-end")
    nb = dict(nb)
    nb["cells"] = cells
    nb.setdefault("metadata", {})["colab"] = {"provenance": [], "toc_visible": True}
    return nb


def build(out: Path, root: Path = ROOT, edition: str = "colab") -> list[Path]:
    book = load_book(root)
    written = []
    for doc in book.chapters:
        if not (root / f"{doc}.ipynb").exists():
            continue
        target = out / f"{doc}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = convert_notebook(book, doc, edition)
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "colab")
    parser.add_argument("--edition", choices=EDITIONS, default="colab")
    args = parser.parse_args(argv)
    written = build(args.out, edition=args.edition)
    print(f"{len(written)} notebooks ({args.edition} edition) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
