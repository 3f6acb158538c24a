"""The notebooks generated for Colab (tools/colab.py) contain no raw MyST and no visible solution."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import colab  # noqa: E402
import fmbook_site  # noqa: E402

ROLE = re.compile(r"\{[a-z][a-z:-]*\}`")
DIRECTIVE = re.compile(r"^\s*(`{3,}|:{3,})\{", re.M)
LINK = re.compile(r"(?<!!)\[[^\]]+\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("colab")
    paths = colab.build(out)
    return {p.relative_to(out).as_posix(): json.loads(p.read_text()) for p in paths}


def sources() -> list[Path]:
    return sorted(ROOT.glob("chapters/*/*.ipynb"))


def markdown(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def visible(text: str) -> str:
    return re.sub(r"<details>.*?</details>", "", text, flags=re.S)


def solution_regions(nb: dict) -> tuple[list[str], list[int]]:
    """Source lines of solution text, and indices of code cells inside solutions."""
    lines, code, inside = [], [], False
    for i, cell in enumerate(nb["cells"]):
        text = "".join(cell["source"])
        if cell["cell_type"] == "code":
            if inside:
                code.append(i)
            continue
        for line in text.splitlines():
            if "{solution-start}" in line:
                inside = True
            elif "{solution-end}" in line:
                inside = False
            elif inside and len(line.strip()) > 30 and not line.startswith("```"):
                lines.append(line.strip())
    return lines, code


def test_every_chapter_gets_a_notebook(generated):
    expected = {p.relative_to(ROOT).as_posix() for p in sources()}
    assert set(generated) == expected


def test_no_raw_myst_and_only_absolute_links(generated):
    for name, nb in generated.items():
        for text in markdown(nb):
            assert not ROLE.search(text), f"{name}: a MyST role is left: {ROLE.search(text)}"
            assert not DIRECTIVE.search(text), f"{name}: a directive fence is left"
            assert not re.search(r"^\([\w.:-]+\)=\s*$", text, re.M), f"{name}: a label line"
            for target in LINK.findall(text):
                assert re.match(r"https?://|#", target), f"{name}: relative link {target}"


def test_solutions_are_hidden(generated):
    for path in sources():
        source = json.loads(path.read_text())
        lines, code_cells = solution_regions(source)
        nb = generated[path.relative_to(ROOT).as_posix()]
        shown = "\n".join(visible(t) for t in markdown(nb))
        leaked = [line for line in lines if line in shown]
        assert not leaked, f"{path.name}: solution text in plain view: {leaked[:2]}"
        forms = [c for c in nb["cells"] if c.get("metadata", {}).get("cellView") == "form"]
        assert len(forms) == len(code_cells), path.name
        for cell in forms:
            assert cell["source"].startswith("#@title Solution to Exercise")
            assert cell["outputs"] == []
        n_solutions = sum(t.count("{solution-start}") for t in markdown(source))
        summaries = re.findall(
            r"<summary>Solution to (Exercise [\d.]+)</summary>", "\n".join(markdown(nb))
        )
        assert len(set(summaries)) == n_solutions, path.name


def test_exercises_keep_the_website_numbers(generated):
    book = colab.load_book()
    for name, nb in generated.items():
        number = book.chapters[name.removesuffix(".ipynb")]
        found = re.findall(r"\*\*Exercise ([\d.]+)\*\*", "\n".join(markdown(nb)))
        assert found == [f"{number}.{k}" for k in range(1, len(found) + 1)], name
        source = json.loads((ROOT / name).read_text())
        assert len(found) == sum(t.count("{exercise}") for t in markdown(source)), name


def test_glued_numbers_are_filled_in(generated):
    for path in sources():
        source = json.loads(path.read_text())
        values = colab.glued_values(source)
        nb = generated[path.relative_to(ROOT).as_posix()]
        text = "\n".join(markdown(nb))
        for name, spec in re.findall(
            r"\{glue(?::text)?\}`([\w-]+):?([^`]*)`", "\n".join(markdown(source))
        ):
            assert format(values[name], spec) in text, f"{path.name}: glue {name} not filled in"


def test_conversion_of_each_kind_of_markup():
    book = colab.load_book()
    chapter = colab.Chapter(book, "chapters/4-math/attention", {"acc": 0.4567})
    text = (
        "See {doc}`/chapters/4-math/word2vec`, {cite}`vaswani2017attention` and "
        "[the notation](../../book/notation.md). Accuracy {glue:text}`acc:.1%`.\n"
        "```{admonition} Common mistake: X\n:class: warning\nWhy.\n```"
    )
    [(solution, out)] = colab.convert_markdown(chapter, text)
    assert solution is None
    assert f"]({book.site}chapters/4-math/word2vec.html)" in out
    assert "[Vaswani et al., 2017](" in out
    assert f"]({book.site}book/notation.html)" in out
    assert "Accuracy 45.7%." in out
    assert "> **Common mistake: X**" in out and "> Why." in out


@pytest.mark.parametrize(
    "text, message",
    [
        ("{footcite}`x`", "no Colab form for the role"),
        ("```{mermaid}\nA-->B\n```", "no Colab form for the directive"),
        ("{cite}`no-such-key`", "unknown citation"),
        ("{glue:text}`missing:.2f`", "not stored"),
        ("```{note}\nnever closed", "unclosed fence"),
    ],
)
def test_unknown_markup_is_an_error(text, message):
    chapter = colab.Chapter(colab.load_book(), "chapters/4-math/attention", {})
    with pytest.raises(colab.MarkupError, match=message):
        colab.convert_markdown(chapter, text)


def test_launch_button_points_at_the_colab_branch():
    url = "https://colab.research.google.com/github/fmbook/fmbook/blob/main/chapters/1-background/history.ipynb"
    assert fmbook_site.colab_branch_url(url, "colab") == url.replace("/blob/main/", "/blob/colab/")
    with pytest.raises(ValueError, match="not a Colab"):
        fmbook_site.colab_branch_url("https://example.org/x", "colab")


@pytest.fixture(scope="module")
def editions(tmp_path_factory) -> dict[str, dict[str, dict]]:
    out = {}
    for edition in ("student", "teacher"):
        folder = tmp_path_factory.mktemp(edition)
        paths = colab.build(folder, edition=edition)
        out[edition] = {p.relative_to(folder).as_posix(): json.loads(p.read_text()) for p in paths}
    return out


def test_student_edition_has_no_solution_and_one_answer_cell_per_exercise(editions):
    for path in sources():
        source = json.loads(path.read_text())
        lines, code_cells = solution_regions(source)
        nb = editions["student"][path.relative_to(ROOT).as_posix()]
        text = "\n".join("".join(c["source"]) for c in nb["cells"])
        leaked = [line for line in lines if line in text]
        assert not leaked, f"{path.name}: solution text in the student edition: {leaked[:2]}"
        for i in code_cells:  # no solution code, even without the title line
            solution_code = "".join(source["cells"][i]["source"]).strip()
            assert solution_code not in text, path.name
        n_solutions = sum(t.count("{solution-start}") for t in markdown(source))
        answers = [c for c in nb["cells"] if c["id"].startswith("answer-")]
        assert len(answers) == n_solutions, path.name
        assert all(c["cell_type"] == "code" and c["outputs"] == [] for c in answers)
        assert "Solution to" not in text and "Student edition" in text


def test_teacher_edition_shows_every_solution_with_its_outputs(editions):
    for path in sources():
        source = json.loads(path.read_text())
        lines, code_cells = solution_regions(source)
        nb = editions["teacher"][path.relative_to(ROOT).as_posix()]
        shown = "\n".join(markdown(nb))
        assert "<summary>Solution" not in shown
        plain = [line for line in lines if not re.search(r"[{}`$\[]", line)]  # no markup
        assert all(line in shown for line in plain), path.name
        n_solutions = sum(t.count("{solution-start}") for t in markdown(source))
        titles = set(re.findall(r"\*\*Solution to (Exercise [\d.]+)\*\*", shown))
        assert len(titles) == n_solutions, path.name
        solution_cells = [c for c in nb["cells"] if c["cell_type"] == "code"
                          and "".join(c["source"]).startswith("# Solution to Exercise")]  # fmt: skip
        assert len(solution_cells) == len(code_cells), path.name
        stored = [source["cells"][i]["outputs"] for i in code_cells]
        assert [c["outputs"] for c in solution_cells] == stored


def test_unknown_edition_is_refused():
    with pytest.raises(ValueError, match="edition must be one of colab, student, teacher"):
        colab.convert_notebook(colab.load_book(), "chapters/4-math/attention", "draft")


def test_student_answer_cells_call_the_exercise_checks(editions):
    nb = editions["student"]["chapters/3-algorithms/pretraining-gpt.ipynb"]
    cells = [c["source"] for c in nb["cells"] if c["id"].startswith("answer-")]
    calls = [s for s in cells if "check.exercise(" in s]
    assert calls == [
        "# Exercise 3.1.1: your answer here\nfrom fmbook import check\n\n"
        'check.exercise("ex-gpt-units", bits=..., perplexity=...)\n'
    ]
