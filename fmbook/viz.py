"""One plotting theme for the whole book, and the plots chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

PALETTE = "colorblind"


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
