"""Lightning tasks: a plain ``nn.Module`` model plus its loss, optimiser and schedule."""

from .causal_lm import CausalLM
from .trainer import History, make_trainer
from .schedules import warmup_cosine

__all__ = ["CausalLM", "History", "make_trainer", "warmup_cosine"]
