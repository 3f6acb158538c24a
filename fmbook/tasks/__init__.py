"""Lightning tasks: a plain ``nn.Module`` model plus its loss, optimiser and schedule."""

from .base import AdamWCosineTask
from .causal_lm import CausalLM
from .classification import SequenceClassification, predict
from .distill import DistilledLM, distillation_loss
from .dpo import DPOTask
from .masked_lm import MaskedLM
from .schedules import warmup_cosine
from .seq2seq import Seq2Seq
from .skipgram import SkipGram
from .span_qa import SpanQA, answer_mask, predict_spans
from .trainer import History, evaluate, make_trainer

__all__ = [
    "AdamWCosineTask",
    "CausalLM",
    "DistilledLM",
    "DPOTask",
    "History",
    "MaskedLM",
    "Seq2Seq",
    "SequenceClassification",
    "SkipGram",
    "SpanQA",
    "answer_mask",
    "distillation_loss",
    "evaluate",
    "make_trainer",
    "predict",
    "predict_spans",
    "warmup_cosine",
]
