"""fmbook: the library of the executable book *Foundation Models -- from research to practice*.

Data flows one way: ``data.fetch`` -> text -> tokenizer -> DataModule -> task(model)
-> ``lightning.Trainer`` -> metrics and plots in the notebook.
"""

__version__ = "0.1.0"

from . import profile  # noqa: E402
from .utils import seed_everything  # noqa: E402


def setup(seed: int = 1337, *, quiet: bool = False) -> None:
    """Seed, theme and environment report for a chapter (see :func:`fmbook.book.setup`)."""
    from .book import setup as _setup

    _setup(seed, quiet=quiet)


__all__ = ["__version__", "profile", "seed_everything", "setup"]
