"""fmbook.viz: the theme, loss curves, attention heatmaps and the CJK font."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from fmbook import viz  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    with matplotlib.rc_context():
        viz.set_theme()
        yield
    plt.close("all")


def test_loss_curves_plots_each_split_and_baselines():
    frame = pd.DataFrame(
        {"step": [0, 1, 2, 0, 2], "split": ["train"] * 3 + ["val"] * 2, "loss": [3, 2, 1, 3, 1.5]}
    )
    ax = viz.loss_curves(frame, baselines={"uniform": 4.0}, title="loss")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["train", "val", "uniform (4.00)"]
    assert ax.get_title() == "loss" and ax.get_xlabel() == "training step"
    assert [list(line.get_ydata()) for line in ax.lines[-1:]] == [[4.0, 4.0]]


def test_attention_heatmap_labels_rows_and_columns():
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]).softmax(-1)  # (2 queries, 3 keys)
    ax = viz.attention_heatmap(weights, ["a", "b"], ["x", "y", "z"], title="head 0", fontsize=9)
    assert [t.get_rotation() for t in ax.get_xticklabels()] == [60] * 3
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert ax.get_title() == "head 0" and ax.title.get_fontsize() == 10
    mesh = ax.collections[0]
    assert mesh.get_array().reshape(2, 3).tolist() == pytest.approx(weights.numpy())
    assert mesh.get_clim() == (0, 1)
    assert len(ax.figure.axes) == 2  # the heatmap and, by default, its colour bar
    bar = ax.figure.axes[1]
    assert bar.get_ylabel() == "attention weight" and bar.get_ylim() == (0, 1)


def test_attention_heatmap_grid_with_one_shared_colour_bar():
    fig, axes = plt.subplots(1, 3)
    for ax in axes:
        viz.attention_heatmap(torch.eye(2), "ab", "ab", ax=ax, cbar=False, cmap="Blues")
    assert len(fig.axes) == 3  # no colour bar per heatmap
    bar = viz.weight_colour_bar(fig, axes, cmap="Blues")
    assert len(fig.axes) == 4 and bar.ax.get_ylabel() == "attention weight"
    assert bar.mappable.get_clim() == (0, 1) and bar.cmap.name == "Blues"


def test_attention_heatmap_colour_bar_annotations_and_mask():
    fig, (ax, other) = plt.subplots(1, 2)
    weights = torch.full((3, 3), 1 / 3).tril()
    hide = ~torch.ones(3, 3, dtype=torch.bool).tril()
    viz.attention_heatmap(weights, "abc", "abc", ax=ax, cbar=True, annot=True, mask=hide.numpy())
    assert len(fig.axes) == 3  # the two axes and the colour bar
    assert sorted(t.get_text() for t in ax.texts) == ["0.33"] * 6  # hidden cells unwritten


@pytest.mark.parametrize(
    "weights, queries, keys, mask, message",
    [
        (torch.ones(2, 3, 4), "ab", "abc", None, r"2-D \(queries, keys\), got shape \(2, 3, 4\)"),
        (torch.ones(2, 3), "abc", "abc", None, "need 2 query and 3 key labels, got 3 and 3"),
        (torch.ones(2, 3), "ab", "ab", None, "need 2 query and 3 key labels, got 2 and 2"),
        (torch.ones(2, 3), "ab", "abc", torch.ones(3, 2, dtype=torch.bool), "mask must have"),
    ],
)
def test_attention_heatmap_rejects_bad_input(weights, queries, keys, mask, message):
    with pytest.raises(ValueError, match=message):
        viz.attention_heatmap(weights, queries, keys, mask=mask)


def test_use_cjk_font_puts_an_installed_cjk_font_first(monkeypatch):
    fake = font_manager.FontEntry(fname="fake.otf", name="Noto Sans CJK JP")
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [fake])
    before = list(plt.rcParams["font.sans-serif"])
    assert viz.use_cjk_font() == "Noto Sans CJK JP"
    assert viz.use_cjk_font() == "Noto Sans CJK JP"  # a second call adds nothing
    assert plt.rcParams["font.sans-serif"] == ["Noto Sans CJK JP", *before]


def test_use_cjk_font_without_one_changes_nothing(monkeypatch):
    fake = font_manager.FontEntry(fname="fake.ttf", name="DejaVu Sans")
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [fake])
    before = list(plt.rcParams["font.sans-serif"])
    assert viz.use_cjk_font() is None
    assert plt.rcParams["font.sans-serif"] == before


def test_cjk_characters_draw_without_missing_glyphs():
    if viz.use_cjk_font() is None:
        pytest.skip("no CJK font installed (e.g. apt-get install fonts-noto-cjk)")
    fig, ax = plt.subplots()
    ax.set_title("我爱北京天安门")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font.*")
        fig.canvas.draw()
