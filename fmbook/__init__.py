"""fmbook: the library of the executable book *Foundation Models -- from research to practice*.

Data flows one way: ``data.fetch`` -> text -> tokenizer -> DataModule -> task(model)
-> ``lightning.Trainer`` -> metrics and plots in the notebook. Imports point one way too:
``nn`` <- ``models`` <- ``tasks``; ``data`` and ``tokenizers`` know nothing of models.

What lives where (one home for each idea):

* ``profile``      the one knob: ``FMBOOK_PROFILE`` = smoke | full, and each chapter's budget
* ``data/``        ``registry`` (provenance, checksummed ``fetch``: mirror -> cache -> download);
                   one module per data set with its DataModule: ``shakespeare`` + ``datamodules``,
                   ``plays``, ``fra_eng``, ``fsdd`` (+ ``audio``), ``skipgram``, ``milestones``
* ``tokenizers/``  ``base`` (the one interface), ``char``, ``word``, ``bpe`` (from scratch),
                   ``hf`` (the Hugging Face ``tokenizers`` library behind the same interface)
* ``nn/``          building blocks that read like the math: ``attention`` (+ ``KVCache``),
                   ``positional``, ``norms``, ``mlp``, ``blocks``, ``pooling``
* ``models/``      plain ``nn.Module`` models: ``ngram``, ``hmm``, ``word2vec``, ``gpt``, ``bert``,
                   ``transformer`` (encoder-decoder), ``lstm_seq2seq``, ``bow`` (bag of n-grams),
                   ``logistic`` (the one logistic regression), ``counting`` (parameters, FLOPs)
* ``tasks/``       LightningModules that take a model the same way: ``CausalLM``, ``MaskedLM``,
                   ``Seq2Seq``, ``SequenceClassification``, ``SkipGram``; the book's Trainer
* ``adapt/``       adapting a pretrained model: ``probes``, ``features``, ``lora``, ``finetune``
* ``interpret/``   looking inside: ``hooks`` (the one recorder), ``trace``, ``attention`` maps
* ``pretrained``   the book's pretrained character BERT (downloaded and checked, or trained)
* ``generation``   greedy, temperature, top-k, top-p and beam search: the one sampler
* ``metrics``      accuracy (the one), perplexity, BLEU and chrF through sacreBLEU
* ``stats``        intervals over seeds, paired bootstrap and McNemar tests (scipy, statsmodels)
* ``results``      results one chapter quotes from another, tested against the stored run
* ``checkpoints``  saving, and the one safe (``weights_only``) loader
* ``viz``          the plot theme, loss curves, attention heatmaps, the CJK font
* ``diagrams``     the book's conceptual diagrams, drawn from code
* ``check``        checks students run on their answers: a verdict and a hint, never the answer
* ``book``         ``show_source`` (whole objects or marked parts), ``glue``, ``setup``
* ``_checks``      argument validation, kept out of the code the chapters show
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
