"""One plotting theme for the whole book, and the plots chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib import font_manager
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

PALETTE = "colorblind"
# Families that hold Chinese, Japanese and Korean glyphs (the book's default fonts do not).
CJK_FONTS = ("CJK", "Heiti", "SimHei", "WenQuanYi", "Source Han")


def set_theme() -> None:
    """The book's seaborn theme: readable on the website and in Colab."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )


def loss_curves(history, *, baselines: dict[str, float] | None = None, ax=None, title=None):
    """Plot train and validation loss against step from a ``History`` (or a DataFrame
    with columns ``step``, ``split``, ``loss``), with horizontal baseline lines."""
    frame = history.frame() if hasattr(history, "frame") else history
    if ax is None:
        _, ax = plt.subplots()
    sns.lineplot(data=frame, x="step", y="loss", hue="split", ax=ax, linewidth=1.5)
    for i, (label, value) in enumerate((baselines or {}).items()):
        color = sns.color_palette(PALETTE)[(i + 2) % 10]
        ax.axhline(value, ls="--", lw=1, color=color, label=f"{label} ({value:.2f})")
    ax.set_xlabel("training step")
    ax.set_ylabel("cross-entropy (nats per token)")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def use_cjk_font() -> str | None:
    """Put an installed CJK font first in matplotlib's sans-serif list, so that figure text
    can show characters such as 我爱北京; returns its name, or None (nothing changed) when
    no such font is installed."""
    names = sorted({f.name for f in font_manager.fontManager.ttflist})
    found = [name for name in names if any(key in name for key in CJK_FONTS)]
    if not found:
        return None
    families = [f for f in plt.rcParams["font.sans-serif"] if f != found[0]]
    plt.rcParams["font.sans-serif"] = [found[0], *families]
    return found[0]


def attention_heatmap(
    weights,
    queries,
    keys,
    *,
    ax=None,
    title=None,
    cbar=True,
    annot=False,
    mask=None,
    cmap="viridis",
    fontsize=None,
    key_rotation=60,
):
    """Attention weights as a heatmap: one row per query, one column per key, colours from
    0 to 1. ``weights`` is a (queries, keys) tensor or array; ``queries`` and ``keys`` label
    the rows and columns. ``cbar`` draws the colour bar ("attention weight", 0 to 1; for a
    grid of heatmaps pass ``cbar=False`` and add one shared bar with
    :func:`weight_colour_bar`), ``annot`` writes each weight in its
    cell, ``mask`` (same shape, True = hidden) leaves cells blank, ``fontsize`` sets the
    tick labels' size (the title one point larger) and ``key_rotation`` the angle of the key
    labels. Returns the axes."""
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu().numpy()
    weights = np.asarray(weights)
    if weights.ndim != 2:
        raise ValueError(f"weights must be 2-D (queries, keys), got shape {tuple(weights.shape)}")
    queries, keys = list(queries), list(keys)
    if (len(queries), len(keys)) != weights.shape:
        raise ValueError(
            f"weights of shape {tuple(weights.shape)} need {weights.shape[0]} query and "
            f"{weights.shape[1]} key labels, got {len(queries)} and {len(keys)}"
        )
    if mask is not None and np.shape(mask) != weights.shape:
        raise ValueError(f"mask must have the weights' shape {weights.shape}, got {np.shape(mask)}")
    if ax is None:
        _, ax = plt.subplots()
    sns.heatmap(
        weights,
        ax=ax,
        mask=mask,
        annot=annot,
        fmt=".2f",
        cmap=cmap,
        vmin=0,
        vmax=1,
        cbar=cbar,
        cbar_kws={"label": "attention weight"} if cbar else None,
        square=True,
        xticklabels=keys,
        yticklabels=queries,
    )
    ax.set_title(title or "", fontsize=None if fontsize is None else fontsize + 1)
    ax.tick_params(axis="x", rotation=key_rotation, labelsize=fontsize)
    ax.tick_params(axis="y", rotation=0, labelsize=fontsize)
    ax.grid(False)
    return ax


def weight_colour_bar(fig, axes, *, cmap="viridis", label="attention weight"):
    """One colour bar (0 to 1) for a grid of :func:`attention_heatmap` axes drawn with
    ``cbar=False`` and the same ``cmap``; returns the colour bar."""
    mappable = ScalarMappable(norm=Normalize(vmin=0, vmax=1), cmap=cmap)
    return fig.colorbar(mappable, ax=axes, label=label, fraction=0.04, pad=0.02)
