"""A sparse autoencoder (SAE) on a model's activations (Bricken et al., 2023; Cunningham
et al., 2023): rewrite each activation vector as a sparse, non-negative combination of
many learned directions ("features"), in the hope that each feature means one thing.

* :class:`SparseAutoencoder`: ``f = ReLU(W_enc (x / s - b_dec) + b_enc)``,
  ``x_hat = s (W_dec f + b_dec)``, with unit-norm decoder rows and a fixed scale ``s``
  that makes the activations' mean squared norm equal to their width.
* :func:`sae_loss`: reconstruction MSE plus ``l1`` times the features' L1 norm.
* :func:`train_sae`: Adam on a tensor of activations; :func:`sae_stats`: MSE, L0 and dead
  features; :func:`splice_sae` runs a model with the reconstruction in place of a module's
  output; :func:`edit_feature` clamps one feature (zero: ablate) and keeps the rest.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import _checks
from .hooks import forward_hooks
from .trace import _select

__all__ = ["SparseAutoencoder", "edit_feature", "sae_loss", "sae_stats", "splice_sae", "train_sae"]


# <show sae>
class SparseAutoencoder(nn.Module):
    """d_in -> d_hidden non-negative features -> d_in, decoder rows of unit norm."""

    def __init__(self, d_in: int, d_hidden: int, scale: float = 1.0):
        super().__init__()
        _checks.positive_ints(d_in=d_in, d_hidden=d_hidden)
        self.enc = nn.Linear(d_in, d_hidden)
        self.W_dec = nn.Parameter(self.enc.weight.detach().clone())  # (F, d_in)
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.normalise_decoder()

    def encode(self, x):  # (..., d_in) -> (..., F)
        return F.relu(self.enc(x / self.scale - self.b_dec))

    def decode(self, f):  # (..., F) -> (..., d_in)
        return (f @ self.W_dec + self.b_dec) * self.scale

    def forward(self, x):
        f = self.encode(x)
        return self.decode(f), f

    @torch.no_grad()
    def normalise_decoder(self):
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True)


def sae_loss(sae, x, l1):
    """Mean squared error per element (in units of the scaled activations) plus
    l1 times the mean over vectors of the sum of the features."""
    x_hat, f = sae(x)
    mse = ((x_hat - x) / sae.scale).pow(2).mean()
    return mse + l1 * f.sum(-1).mean(), mse, f


def train_sae(acts, d_hidden, l1, steps, batch_size=512, lr=1e-3, seed=0):
    """Fit an SAE to acts (N, d_in) with Adam on random mini-batches."""
    _check_training(acts, steps, batch_size, l1)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    scale = acts.pow(2).sum(-1).mean().sqrt() / acts.shape[1] ** 0.5  # RMS per element
    sae = SparseAutoencoder(acts.shape[1], d_hidden, scale=float(scale))
    with torch.no_grad():
        sae.b_dec.copy_(acts.mean(0) / scale)  # start at the mean activation
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    for _ in range(steps):
        x = acts[torch.randint(0, len(acts), (batch_size,), generator=g)]  # (b, d_in)
        loss, _, _ = sae_loss(sae, x, l1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sae.normalise_decoder()  # the L1 penalty cannot shrink f by growing W_dec
    return sae.eval()


# </show sae>


@torch.no_grad()
def sae_stats(sae: SparseAutoencoder, acts: torch.Tensor, batch_size: int = 4096) -> dict:
    """On acts (N, d_in): ``mse`` (per element, scaled units), ``fvu`` (the fraction of the
    variance left unexplained), ``l0`` (the mean number of active features per vector),
    ``dead`` (the fraction of features active on no vector) and ``freq`` (F,), how often
    each feature is active."""
    _checks.floats("acts", acts)
    sq_err, active, fired = 0.0, 0.0, torch.zeros(sae.enc.out_features)
    for x in acts.split(batch_size):
        x_hat, f = sae(x)
        sq_err += (x_hat - x).pow(2).sum().item()
        active += (f > 0).sum().item()
        fired += (f > 0).sum(0).float()
    n = len(acts)
    variance = (acts - acts.mean(0)).pow(2).sum().item()
    return {
        "mse": sq_err / acts.numel() / float(sae.scale) ** 2,
        "fvu": sq_err / variance,
        "l0": active / n,
        "dead": (fired == 0).float().mean().item(),
        "freq": fired / n,
    }


@contextmanager
def splice_sae(model: nn.Module, name: str, sae: SparseAutoencoder):
    """While the block runs, module ``name`` of ``model`` outputs the SAE's reconstruction
    of what it computed (the reconstruction error is dropped)."""

    def after(_, module, args, kwargs, output):
        return sae(output)[0]

    with forward_hooks(_one_module(model, name), after):
        yield


@contextmanager
def edit_feature(model: nn.Module, name: str, sae: SparseAutoencoder, feature: int, value=0.0):
    """While the block runs, set feature ``feature`` of module ``name``'s output to
    ``value`` (0: ablate it) at every position: ``x + (value - f_k(x)) * s * W_dec[k]``.
    Everything else, the other features and the reconstruction error, is kept."""
    if not isinstance(feature, int) or not 0 <= feature < sae.enc.out_features:
        raise ValueError(f"feature must be an int in [0, {sae.enc.out_features}), got {feature!r}")

    def after(_, module, args, kwargs, output):
        f = sae.encode(output)[..., feature : feature + 1]  # (..., 1)
        return output + (value - f) * sae.scale * sae.W_dec[feature]

    with forward_hooks(_one_module(model, name), after):
        yield


def _one_module(model, name) -> dict[str, nn.Module]:
    if not isinstance(name, str):
        raise ValueError(f"name must be one module name (a str), got {name!r}")
    return _select(model, [name])


def _check_training(acts, steps, batch_size, l1) -> None:
    _checks.floats("acts", acts)
    if acts.dim() != 2 or len(acts) < 2:
        raise ValueError(
            f"acts must be an (N, d_in) tensor with N >= 2, got {_checks.describe(acts)}"
        )
    _checks.positive_ints(steps=steps, batch_size=batch_size)
    if not isinstance(l1, (int, float)) or l1 < 0:
        raise ValueError(f"l1 must be a number >= 0, got {l1!r}")
