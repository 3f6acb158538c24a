"""Models: plain ``torch.nn.Module``s, usable with or without Lightning."""

from .gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]

from .word2vec import NegativeSampler, SkipGramNS  # noqa: E402

__all__ += ["NegativeSampler", "SkipGramNS"]
