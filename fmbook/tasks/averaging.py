"""Checkpoint averaging: the mean of the weights saved over the last steps of training.

Vaswani et al. (2017) translate with the average of the last 5 (base model) or 20 (big
model) checkpoints, written 10 minutes apart. Late in training the weights wander around a
minimum with the noise of the mini-batches; their mean sits nearer its centre, which often
scores a little better than any single one of them. It costs no training time, only the
memory of the copies.

>>> keep = Snapshots(every=50, start=800)     # a copy every 50 steps from step 800 on
>>> trainer = make_trainer(max_steps=1000, val_every=1000, callbacks=[keep])
>>> model.load_state_dict(average_state_dicts(keep.states))
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch


# <show average>
def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of state dicts with the same keys and shapes. Floating-point
    tensors are averaged (in float64, returned in their dtype); others (integer counters,
    boolean buffers) are taken from the last state."""
    _check_states(states)
    mean = {}
    for key, last in states[-1].items():
        if last.dtype.is_floating_point:
            total = sum(s[key].double() for s in states)
            mean[key] = (total / len(states)).to(last.dtype)
        else:
            mean[key] = last.clone()
    return mean


# </show average>


def _check_states(states) -> None:
    if isinstance(states, dict) or not isinstance(states, Sequence) or not states:
        raise ValueError("states must be a non-empty list of state dicts")
    keys = set(states[0])
    for i, s in enumerate(states):
        if not isinstance(s, dict) or set(s) != keys:
            raise ValueError(f"states[{i}] does not have the keys of states[0]")
        for key in keys:
            if not torch.is_tensor(s[key]) or s[key].shape != states[0][key].shape:
                raise ValueError(f"states[{i}][{key!r}] does not have the shape of states[0]")


class Snapshots(L.Callback):
    """Keep a CPU copy of the model's weights every ``every`` optimizer steps from step
    ``start`` on (and after the last step), in :attr:`states`, with their steps in
    :attr:`steps`. The copies are of ``pl_module.model`` (the task's model)."""

    def __init__(self, every: int, start: int = 0):
        for name, value in (("every", every), ("start", start)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (name == "every"):
                raise ValueError(f"{name} must be an int >= {int(name == 'every')}, got {value!r}")
        self.every, self.start = every, start
        self.states: list[dict[str, torch.Tensor]] = []
        self.steps: list[int] = []

    def _keep(self, trainer, pl_module) -> None:
        step = trainer.global_step
        if self.steps and self.steps[-1] == step:
            return
        model = getattr(pl_module, "model", pl_module)
        self.states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        self.steps.append(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step >= self.start and (step - self.start) % self.every == 0:
            self._keep(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        self._keep(trainer, pl_module)

    def averaged(self, last: int | None = None) -> dict[str, torch.Tensor]:
        """The mean of the last ``last`` copies (all of them by default)."""
        if not self.states:
            raise ValueError("no snapshot was taken: train first (or lower start)")
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
            raise ValueError(f"last must be None or an int >= 1, got {last!r}")
        return average_state_dicts(self.states[-last:] if last else self.states)
