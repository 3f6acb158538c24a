"""The Hugging Face GPT-2 twin of fmbook's GPT now lives in the package
(:mod:`fmbook.models.hf_gpt2`); this module re-exports it for the benchmarks."""

from fmbook.models.hf_gpt2 import copy_gpt_to_hf, gpt2_config, to_hf_gpt2

__all__ = ["copy_gpt_to_hf", "gpt2_config", "to_hf_gpt2"]
