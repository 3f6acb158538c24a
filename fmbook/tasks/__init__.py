"""Lightning tasks: a plain ``nn.Module`` model plus its loss, optimiser and schedule."""

from .causal_lm import CausalLM
from .schedules import warmup_cosine
from .trainer import History, evaluate, make_trainer

__all__ = ["CausalLM", "History", "evaluate", "make_trainer", "warmup_cosine"]

from .skipgram import SkipGram, SkipGramDataModule  # noqa: E402

__all__ += ["SkipGram", "SkipGramDataModule"]
