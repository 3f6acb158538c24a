"""fmbook: the library of the executable book *Foundation Models -- from research to practice*.

Data flows one way: ``data.fetch`` -> text -> tokenizer -> DataModule -> task(model)
-> ``lightning.Trainer`` -> metrics and plots in the notebook.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:  # one version, one place: pyproject.toml, read from the installed package's metadata
    __version__ = _version("fmbook")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

from . import profile  # noqa: E402
from .utils import seed_everything  # noqa: E402


def setup(seed: int = 1337, *, quiet: bool = False) -> None:
    """Seed, theme and environment report for a chapter (see :func:`fmbook.book.setup`)."""
    from .book import setup as _setup

    _setup(seed, quiet=quiet)


__all__ = ["__version__", "profile", "seed_everything", "setup"]
