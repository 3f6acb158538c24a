"""fmbook.book.show_source: the whole object, or a part cut by marker comments."""

import importlib.util
import textwrap

import pytest

from fmbook.book import show_source, source

MODULE = '''
def attend(q, k, v):
    """A function with two marked parts."""
    scale = q.shape[-1] ** -0.5
    # <show scores>
    scores = q @ k.transpose(-2, -1) * scale  # (T, T)
    # <show softmax>
    weights = scores.softmax(dim=-1)
    # </show softmax>
    # </show scores>
    if weights is not None:
        # <show mix>
        out = weights @ v  # (T, C)
        # </show mix>
    return out


def unclosed():
    # <show body>
    return 1


def unopened():
    return 1
    # </show body>


def twice():
    # <show a>
    x = 1
    # </show a>
    # <show a>
    return x
    # </show a>
'''


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    path = tmp_path_factory.mktemp("marked") / "marked_module.py"
    path.write_text(textwrap.dedent(MODULE), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("marked_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_part_is_shown_dedented_without_markers(marked):
    assert source(marked.attend, "mix") == "out = weights @ v  # (T, C)"
    assert source(marked.attend, "softmax") == "weights = scores.softmax(dim=-1)"
    md = show_source(marked.attend, part="scores").data
    assert md == (
        "```python\n# marked_module.attend (scores)\n"
        "scores = q @ k.transpose(-2, -1) * scale  # (T, T)\n"
        "weights = scores.softmax(dim=-1)\n```"
    )


def test_the_whole_object_is_shown_without_markers(marked):
    md = show_source(marked.attend).data
    assert md.startswith("```python\n# marked_module.attend\ndef attend(q, k, v):")
    assert "<show" not in md and "</show" not in md
    assert "        out = weights @ v  # (T, C)\n    return out\n```" in md
    assert "\n    if weights is not None:\n        out = weights" in md


def test_a_missing_part_names_the_parts_there_are(marked):
    with pytest.raises(ValueError, match=r"no part 'mask'.*\['mix', 'scores', 'softmax'\]"):
        show_source(marked.attend, part="mask")


@pytest.mark.parametrize(
    "name, message",
    [("unclosed", "never closed"), ("unopened", "has no '# <show body>'"), ("twice", "twice")],
)
def test_bad_markers_are_clear_errors(marked, name, message):
    with pytest.raises(ValueError, match=message):
        source(getattr(marked, name))


def test_show_source_has_no_line_numbers():
    with pytest.raises(TypeError):
        show_source(source, lines=(0, 2))


def test_long_listings_fold_behind_a_toggle_short_ones_do_not():
    import fmbook.book as book
    from fmbook.nn.attention import MultiHeadAttention

    long = show_source(MultiHeadAttention).data
    assert long.count("\n") > book.FOLD_AFTER
    assert long.startswith("<details>\n<summary>") and long.rstrip().endswith("</details>")
    assert "```python\n# fmbook.nn.attention.MultiHeadAttention" in long
    short = show_source(book.glue).data
    assert short.count("\n") <= book.FOLD_AFTER and short.startswith("```python")
