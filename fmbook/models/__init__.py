"""Models: plain ``torch.nn.Module``s, usable with or without Lightning."""

from .gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]
