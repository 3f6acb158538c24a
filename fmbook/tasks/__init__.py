"""Lightning tasks: a plain ``nn.Module`` model plus its loss, optimiser and schedule."""

from .causal_lm import CausalLM
from .schedules import warmup_cosine
from .trainer import History, evaluate, make_trainer

__all__ = ["CausalLM", "History", "evaluate", "make_trainer", "warmup_cosine"]

from .skipgram import SkipGram, SkipGramDataModule  # noqa: E402

__all__ += ["SkipGram", "SkipGramDataModule"]

from .classification import SequenceClassification  # noqa: E402
from .masked_lm import MaskedLM  # noqa: E402
from .seq2seq import AdamWCosineTask, Seq2Seq  # noqa: E402

__all__ += ["AdamWCosineTask", "MaskedLM", "Seq2Seq", "SequenceClassification"]
