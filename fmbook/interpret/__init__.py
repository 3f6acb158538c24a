"""Looking inside a model while it runs, all through one forward-hook recorder.

* :mod:`.hooks`: ``forward_hooks``, call a function around each forward pass of chosen
  submodules for the duration of a ``with`` block.
* :mod:`.trace`: ``record`` the outputs of submodules into a ``Trace`` (names, shapes, norms).
* :mod:`.attention`: ``record_attention``, the attention weights of every
  ``MultiHeadAttention`` (``AttentionMaps``, ``attention_inputs``).
* :mod:`.induction`: induction heads, ``prefix_matching_score`` and
  ``previous_token_score`` of every head, ``ablate_heads`` (zero or mean ablation),
  ``masked_loss`` and the ``InductionMonitor`` training callback.
"""

from .attention import AttentionMaps, attention_inputs, record_attention
from .hooks import forward_hooks
from .trace import Record, Trace, record

__all__ = [
    "AttentionMaps",
    "Record",
    "Trace",
    "attention_inputs",
    "forward_hooks",
    "record",
    "record_attention",
]

from .induction import (  # noqa: E402
    InductionMonitor,
    ablate_heads,
    induction_targets,
    masked_loss,
    prefix_matching_chance,
    prefix_matching_score,
    previous_token_score,
)

__all__ += [
    "InductionMonitor",
    "ablate_heads",
    "induction_targets",
    "masked_loss",
    "prefix_matching_chance",
    "prefix_matching_score",
    "previous_token_score",
]
