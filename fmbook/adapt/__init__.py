"""Adapting a pretrained model to new tasks: one home for every way the book does it.

* :mod:`.probes`: linear probes on a frozen model's pooled features
  (``pooled_features``, ``module_output``, ``fit_linear_probe``, ``select_probe``).
* :mod:`.features`: ``FeatureBank``, features computed once and shared by many tasks
  (``passages_of``, ``character_frequencies``).
* :mod:`.lora`: low-rank adaptation (``LoRALinear``, ``add_lora``, ``freeze_except_lora``,
  ``merge_lora``, ``count_parameters``).
* :mod:`.finetune`: ``fine_tune_classifier``, the training routine of full fine-tuning,
  LoRA and head-only runs; ``relative_change``, how far it moved the weights.
"""

from .features import FeatureBank, character_frequencies, passages_of
from .finetune import fine_tune_classifier, relative_change
from .lora import LoRALinear, add_lora, count_parameters, freeze_except_lora, merge_lora
from .probes import (
    PROBE_LBFGS,
    control_labels,
    fit_linear_probe,
    module_output,
    pooled_features,
    select_probe,
)

__all__ = [
    "PROBE_LBFGS",
    "control_labels",
    "FeatureBank",
    "LoRALinear",
    "add_lora",
    "character_frequencies",
    "count_parameters",
    "fine_tune_classifier",
    "fit_linear_probe",
    "freeze_except_lora",
    "merge_lora",
    "module_output",
    "passages_of",
    "pooled_features",
    "relative_change",
    "select_probe",
]
