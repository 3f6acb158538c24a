"""Static checks of every chapter notebook: the setup cell, stored outputs, teaching parts."""

import ast
import json
import re

import pytest
import setup_cell

NOTEBOOKS = setup_cell.notebooks()
IDS = [str(p.relative_to(setup_cell.ROOT)) for p in NOTEBOOKS]


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def markdown(nb):
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebook found under chapters/"


def test_setup_cell_template_reads_the_one_repository_url():
    cell = setup_cell.render()
    assert setup_cell.repository_url() in cell and setup_cell.version() in cell
    compile(cell, "<setup cell>", "exec")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_is_the_setup_cell(path):
    first = code_cells(load(path))[0]
    assert "".join(first["source"]) == setup_cell.render(), (
        f"{path.name}: the first code cell is not the setup cell; run `python tests/setup_cell.py`"
    )
    assert first["metadata"].get("tags") == setup_cell.TAGS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_stored(path):
    """The website shows stored outputs: every code cell has been run, in order."""
    counts = [c["execution_count"] for c in code_cells(load(path))]
    assert None not in counts, f"{path.name}: cells without stored outputs"
    assert counts == sorted(counts), f"{path.name}: cells were not run top to bottom"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_error_outputs_are_stored(path):
    for cell in code_cells(load(path)):
        kinds = [o["output_type"] for o in cell.get("outputs", [])]
        assert "error" not in kinds, f"{path.name}: a stored output is an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_has_the_teaching_parts(path):
    nb = load(path)
    text = markdown(nb)
    assert "Learning goals" in text
    assert text.count("{exercise}") >= 2, "at least two exercises"
    assert text.count("{solution-start}") + text.count("{solution}") >= 2, "with solutions"
    assert ":class: dropdown" in text, "solutions are hidden behind a toggle"
    assert "## Summary" in text and "## References" in text and "{cite}" in text
    assert any("assert " in "".join(c["source"]) for c in code_cells(nb)), "asserts on results"
    tags = [t for c in code_cells(nb) for t in c["metadata"].get("tags", [])]
    assert "nbval-check-output" in tags, "deterministic cells are checked by nbval"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_plot_cells_end_with_show(path):
    """nbval and the website want figures shown with plt.show(), not a trailing ';'."""
    for cell in code_cells(load(path)):
        src = "".join(cell["source"]).rstrip()
        assert not src.endswith(";"), f"{path.name}: a cell ends with ';'"
        if "plt." in src or "sns." in src:
            assert "plt.show()" in src, f"{path.name}: a plot cell without plt.show()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_cell_ends_with_a_bare_glue_call(path):
    """glue() returns its value, so a cell ending in ``glue(...)`` shows it as a stray Out[]
    number under the cell; assign it instead (``x = glue("x", ...)``)."""
    for cell in code_cells(load(path)):
        source = "".join(cell["source"])
        try:
            body = ast.parse(source).body
        except SyntaxError:  # IPython syntax (%pip, !cmd): not a glue cell
            continue
        last = body[-1] if body else None
        bare = (
            isinstance(last, ast.Expr)
            and isinstance(last.value, ast.Call)
            and getattr(last.value.func, "id", None) == "glue"
        )
        assert not bare, f"{path.name}: a cell ends with a bare glue call:\n{source[-200:]}"


def figure_cells(nb):
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and any(
            "image/png" in o.get("data", {}) for o in cell.get("outputs", [])
        ):
            yield cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_has_a_name_caption_and_alt_text(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in figure_cells(nb):
        where = f"{path.relative_to(setup_cell.ROOT)} cell {cell.get('id')}"
        meta = cell["metadata"].get("mystnb", {})
        fig, img = meta.get("figure", {}), meta.get("image", {})
        assert str(fig.get("name", "")).startswith("fig-"), f"{where}: no mystnb.figure.name"
        assert fig.get("caption"), f"{where}: no mystnb.figure.caption"
        assert img.get("alt"), f"{where}: no mystnb.image.alt"
        # myst-nb wraps every rich output of the cell in the figure: only one is allowed
        # (glue records are stored, never shown: myst-nb leaves them out of the page)
        rich = [
            o
            for o in cell["outputs"]
            if o["output_type"] in ("display_data", "execute_result")
            and "scrapbook" not in o.get("metadata", {})
        ]
        assert len(rich) == 1, f"{where}: {len(rich)} rich outputs would share one figure label"


def test_figure_names_are_unique_book_wide():
    names = [
        c["metadata"]["mystnb"]["figure"]["name"]
        for p in NOTEBOOKS
        for c in figure_cells(json.loads(p.read_text(encoding="utf-8")))
        if "name" in c["metadata"].get("mystnb", {}).get("figure", {})
    ]
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)


def test_no_chapter_types_in_another_chapters_result():
    """Results one chapter quotes from another come from fmbook.results, which
    tests/test_results.py checks against the stored run; none is typed into a notebook."""
    for path in NOTEBOOKS:
        code = "\n".join("".join(c["source"]) for c in code_cells(load(path)))
        assert not re.search(r"GPT_VAL_LOSS\s*=\s*[\d.]", code), f"{path.name} types GPT_VAL_LOSS"


# What readers see on the site, GitHub and Colab: no stderr, warnings, machine paths or
# object reprs in any stored output.
MACHINE_PATH = re.compile(r"(/home/|/work/|/tmp/|/usr/|site-packages|\.venv|[A-Z]:\\\\)")
BARE_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>|^<[\w.]+(Styler|Markdown|HTML|Figure)\b")
WARNING = re.compile(r"\b\w*Warning\b:|^\s*warnings\.warn", re.M)


def output_texts(output: dict) -> list[str]:
    if output["output_type"] == "stream":
        return ["".join(output["text"])]
    data = output.get("data", {})
    return ["".join(v) for k, v in data.items() if k.startswith("text/") or k.endswith("+json")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_outputs_are_clean(path):
    for number, cell in enumerate(code_cells(load(path)), start=1):
        where = f"{path.name}, code cell {number}"
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"{where}: stderr in a stored output"
            for text in output_texts(output):
                assert not MACHINE_PATH.search(text), f"{where}: a machine path: {text[:200]}"
                assert not WARNING.search(text), f"{where}: a warning: {text[:200]}"
                plain = "".join(output.get("data", {}).get("text/plain", ""))
                if plain and len(output.get("data", {})) == 1:
                    assert not BARE_REPR.search(plain), f"{where}: a bare object repr: {plain}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_code_lines_fit_the_column(path):
    """88 characters fit the website's content column (tests/test_site.py measures it)."""
    for number, cell in enumerate(code_cells(load(path)), start=1):
        for line in "".join(cell["source"]).splitlines():
            assert len(line) <= 88, f"{path.name}, code cell {number}: {len(line)} chars: {line}"
