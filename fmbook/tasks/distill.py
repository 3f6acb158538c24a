"""Knowledge distillation (Hinton et al., 2015): a small student learns from a large
teacher's predicted distribution, not only from the data's one-hot next token."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import describe
from .causal_lm import CausalLM


# <show distillation_loss>
def distillation_loss(
    student_logits: torch.Tensor,  # (B, T, V)
    teacher_logits: torch.Tensor,  # (B, T, V)
    targets: torch.Tensor,  # (B, T) next-token ids
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """``alpha * tau^2 * KL(p_teacher^tau || p_student^tau) + (1 - alpha) * CE(targets)``,
    both distributions softened by the temperature ``tau`` (softmax of logits / tau). The
    ``tau^2`` keeps the soft term's gradients of the size of the hard term's."""
    _check(student_logits, teacher_logits, targets, temperature, alpha)
    tau = temperature
    log_p_student = F.log_softmax(student_logits / tau, dim=-1)  # (B, T, V)
    log_p_teacher = F.log_softmax(teacher_logits / tau, dim=-1)  # (B, T, V)
    # KL(teacher || student) summed over the vocabulary, averaged over the B*T positions
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="none")
    soft = kl.sum(-1).mean() * tau**2
    hard = F.cross_entropy(student_logits.flatten(0, 1), targets.flatten())
    return alpha * soft + (1 - alpha) * hard


# </show distillation_loss>


class DistilledLM(CausalLM):
    """Train ``model`` (the student) on next-token prediction against ``teacher``'s soft
    targets (:func:`distillation_loss`); the teacher is frozen and not saved with the
    task. Validation is :class:`~fmbook.tasks.CausalLM`'s: the student's plain cross-entropy,
    ``val_loss``, so that a distilled student and one trained from the data alone are
    compared on the same number."""

    def __init__(
        self,
        model: nn.Module,
        teacher: nn.Module,
        *,
        temperature: float = 2.0,
        alpha: float = 0.5,
        **kwargs,
    ):
        if not isinstance(teacher, nn.Module):
            raise ValueError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
        _scalars(temperature, alpha)
        super().__init__(model, temperature=temperature, alpha=alpha, **kwargs)
        self._teacher = [teacher.eval().requires_grad_(False)]  # a list: not a submodule

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def on_fit_start(self):
        self.teacher.to(self.device)

    def training_step(self, batch, batch_idx):
        x, y = batch  # (B, T), (B, T)
        logits, _ = self.model(x)  # (B, T, V)
        with torch.no_grad():
            teacher_logits, _ = self.teacher(x)  # (B, T, V)
        hp = self.hparams
        loss = distillation_loss(logits, teacher_logits, y, hp.temperature, hp.alpha)
        self.log("train_loss", loss, prog_bar=True)
        return loss


def _scalars(temperature, alpha) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")


def _check(student_logits, teacher_logits, targets, temperature, alpha) -> None:
    _scalars(temperature, alpha)
    for name, t in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not torch.is_tensor(t) or not t.dtype.is_floating_point or t.dim() != 3:
            raise ValueError(f"{name} must be a float (B, T, V) tensor, got {describe(t)}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student and teacher logits must have one shape (same vocabulary), got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    if not torch.is_tensor(targets) or targets.shape != student_logits.shape[:2]:
        raise ValueError(
            f"targets must be (B, T) = {tuple(student_logits.shape[:2])}, got {describe(targets)}"
        )
