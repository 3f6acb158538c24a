"""Models: plain ``torch.nn.Module``s, usable with or without Lightning.

One module per model, named after it; the chapters that build each one are in brackets.
``fmbook.models.hf_gpt2`` (the book's GPT as a Hugging Face model) is imported on its own,
so that ``transformers`` loads only where it is used.
"""

from .attn_only import AttnOnlyConfig, AttnOnlyTransformer  # in-context learning
from .baseline_mt import BaselineMT, BaselineMTConfig  # translation's baseline
from .bert import (  # masked LM, fine-tuning, question answering
    BERT,
    BERTConfig,
    BERTForMaskedLM,
    BERTForQuestionAnswering,
    BERTForSequenceClassification,
    best_span,
    mask_tokens,
)
from .clip import AudioEmbedder, CharTextEncoder, TwoTower  # multimodal
from .gpt import GPT, GPTConfig  # pretraining a GPT, and most of the book
from .lstm_seq2seq import LSTMSeq2Seq  # LSTM seq2seq
from .spoken_digits import CTCRecognizer, DigitCNN, DigitToMel  # speech
from .transformer import Seq2SeqConfig, Transformer  # encoder-decoder, translation
from .word2vec import SkipGramNS  # word2vec

__all__ = [
    "AttnOnlyConfig",
    "AttnOnlyTransformer",
    "AudioEmbedder",
    "BERT",
    "BERTConfig",
    "BERTForMaskedLM",
    "BERTForQuestionAnswering",
    "BERTForSequenceClassification",
    "BaselineMT",
    "BaselineMTConfig",
    "CTCRecognizer",
    "CharTextEncoder",
    "DigitCNN",
    "DigitToMel",
    "GPT",
    "GPTConfig",
    "LSTMSeq2Seq",
    "Seq2SeqConfig",
    "SkipGramNS",
    "Transformer",
    "TwoTower",
    "best_span",
    "mask_tokens",
]
