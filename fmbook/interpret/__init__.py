"""Looking inside a model while it runs, all through one forward-hook recorder.

* :mod:`.hooks`: ``forward_hooks``, call a function around each forward pass of chosen
  submodules for the duration of a ``with`` block.
* :mod:`.trace`: ``record`` the outputs of submodules into a ``Trace`` (names, shapes, norms).
* :mod:`.attention`: ``record_attention``, the attention weights of every
  ``MultiHeadAttention`` (``AttentionMaps``, ``attention_inputs``).
* :mod:`.patching`: activation patching, ``head_outputs`` / ``patch_heads`` and
  ``module_outputs`` / ``patch_outputs``, ``normalised_effect``, ``head_patching_table``.
* :mod:`.lens`: the logit lens, ``residual_stream``, ``logit_lens``, ``lens_table``.
* :mod:`.sae`: sparse autoencoders, ``SparseAutoencoder``, ``train_sae``, ``sae_stats``,
  ``splice_sae``, ``edit_feature``.
* :mod:`.induction`: induction heads, ``prefix_matching_score`` and
  ``previous_token_score`` of every head, ``ablate_heads`` (zero or mean ablation),
  ``masked_loss`` and the ``InductionMonitor`` training callback.
"""

from .attention import AttentionMaps, attention_inputs, record_attention
from .hooks import forward_hooks
from .induction import (
    InductionMonitor,
    ablate_heads,
    induction_targets,
    masked_loss,
    prefix_matching_chance,
    prefix_matching_score,
    previous_token_score,
)
from .lens import lens_table, logit_lens, residual_stream
from .patching import (
    head_outputs,
    head_patching_table,
    module_outputs,
    normalised_effect,
    patch_heads,
    patch_outputs,
)
from .sae import SparseAutoencoder, edit_feature, sae_loss, sae_stats, splice_sae, train_sae
from .trace import Record, Trace, record

__all__ = [
    "AttentionMaps",
    "InductionMonitor",
    "Record",
    "SparseAutoencoder",
    "Trace",
    "ablate_heads",
    "attention_inputs",
    "edit_feature",
    "forward_hooks",
    "head_outputs",
    "head_patching_table",
    "induction_targets",
    "lens_table",
    "logit_lens",
    "masked_loss",
    "module_outputs",
    "normalised_effect",
    "patch_heads",
    "patch_outputs",
    "prefix_matching_chance",
    "prefix_matching_score",
    "previous_token_score",
    "record",
    "record_attention",
    "residual_stream",
    "sae_loss",
    "sae_stats",
    "splice_sae",
    "train_sae",
]
