"""fmbook.book: tests shown by node id, tests run in a fresh process, the accelerator."""

import pytest
import torch

import fmbook
from fmbook import book

TESTS = '''
import pytest


def test_passes():
    """It passes."""
    assert 1 + 1 == 2


def test_fails():
    assert 1 + 1 == 3


@pytest.mark.parametrize("n", [1, 2])
def test_even(n):
    assert n % 2 == 0


class TestGroup:
    @pytest.mark.skip(reason="shown, not run")
    def test_skipped(self):
        # <show core>
        assert True
        # </show core>
'''


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_demo.py").write_text(TESTS.lstrip(), encoding="utf-8")
    return tmp_path


def test_a_test_is_shown_by_its_node_id_with_decorators(checkout, monkeypatch):
    monkeypatch.chdir(checkout)
    assert book.source("tests/test_demo.py::test_passes") == (
        'def test_passes():\n    """It passes."""\n    assert 1 + 1 == 2\n'
    )
    method = book.source("tests/test_demo.py::TestGroup::test_skipped")
    assert method.startswith('@pytest.mark.skip(reason="shown, not run")\ndef test_skipped')
    assert "<show" not in method  # marker comments are removed here too
    assert book.source("tests/test_demo.py::TestGroup::test_skipped", "core") == "assert True"
    assert "def test_even(n):" in book.source("tests/test_demo.py::test_even[2]")
    md = book.show_source("tests/test_demo.py::test_fails").data
    assert md.startswith("```python\n# tests/test_demo.py::test_fails\ndef test_fails():")


def test_a_missing_test_or_file_is_explained(checkout, monkeypatch):
    monkeypatch.chdir(checkout)
    with pytest.raises(ValueError, match=r"no 'test_gone'.*'test_fails', 'test_passes'"):
        book.source("tests/test_demo.py::test_gone")
    with pytest.raises(ValueError, match="tests live in the book's repository"):
        book.source("tests/test_nothing.py::test_passes")
    with pytest.raises(ValueError, match="not a node id"):
        book.node_source("tests/test_demo.py")


def test_this_checkout_shows_its_own_tests():
    root = book.repository_root()
    assert root is not None and (root / "fmbook" / "book.py").is_file()
    text = book.source("tests/test_book_environment.py::test_this_checkout_shows_its_own_tests")
    assert text.splitlines()[0] == "def test_this_checkout_shows_its_own_tests():"


@pytest.mark.slow  # a fresh Python process with pytest: a few seconds, more under load
def test_run_tests_reports_each_outcome_from_a_fresh_process(checkout):
    (checkout / "fmbook").mkdir()  # the fmbook of the root is the one the tests import
    (checkout / "fmbook" / "__init__.py").write_text("WHERE = 'the copy'\n")
    test = "import fmbook\n\n\ndef test_copy():\n    assert fmbook.WHERE == 'the copy'\n"
    (checkout / "tests" / "test_copy.py").write_text(test)
    ids = [
        "tests/test_demo.py::test_passes",
        "tests/test_demo.py::test_fails",
        "tests/test_demo.py::test_even",
        "tests/test_demo.py::TestGroup::test_skipped",
        "tests/test_copy.py::test_copy",
    ]
    assert book.run_tests(*ids, root=checkout) == {
        "tests/test_demo.py::test_passes": "passed",
        "tests/test_demo.py::test_fails": "failed",
        "tests/test_demo.py::test_even[1]": "failed",
        "tests/test_demo.py::test_even[2]": "passed",
        "tests/test_demo.py::TestGroup::test_skipped": "skipped",
        "tests/test_copy.py::test_copy": "passed",
    }


def test_run_tests_needs_a_test_and_a_checkout(checkout, monkeypatch):
    with pytest.raises(ValueError, match="at least one test"):
        book.run_tests(root=checkout)
    monkeypatch.setattr(book, "repository_root", lambda: None)
    with pytest.raises(ValueError, match="no source checkout"):
        book.run_tests("tests/test_demo.py::test_passes")


def test_accelerator_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert book.accelerator() == "cpu"
    assert book.environment()["device"].startswith("cpu (")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert book.accelerator() == "mps"
    assert book.environment()["device"] == "mps (Apple GPU)"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Test GPU")
    assert book.accelerator() == "cuda"
    assert book.environment()["device"] == "cuda (Test GPU)"
    assert book.environment()["fmbook"] == fmbook.__version__
