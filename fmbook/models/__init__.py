"""Models: plain ``torch.nn.Module``s, usable with or without Lightning."""

from .gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]

from .word2vec import SkipGramNS  # noqa: E402

__all__ += ["SkipGramNS"]

from .bert import (  # noqa: E402
    BERT,
    BERTConfig,
    BERTForMaskedLM,
    BERTForQuestionAnswering,
    BERTForSequenceClassification,
    best_span,
    mask_tokens,
)

__all__ += [
    "BERT",
    "BERTConfig",
    "BERTForMaskedLM",
    "BERTForQuestionAnswering",
    "BERTForSequenceClassification",
    "best_span",
    "mask_tokens",
]

from .lstm_seq2seq import LSTMSeq2Seq  # noqa: E402

__all__ += ["LSTMSeq2Seq"]

from .transformer import Seq2SeqConfig, Transformer  # noqa: E402

__all__ += ["Seq2SeqConfig", "Transformer"]

from .attn_only import AttnOnlyConfig, AttnOnlyTransformer  # noqa: E402

__all__ += ["AttnOnlyConfig", "AttnOnlyTransformer"]
