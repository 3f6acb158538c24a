"""fmbook.diagrams: each diagram draws, with its labels, legibly and without overlaps."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fmbook import diagrams, viz  # noqa: E402

# Labels (substrings of the drawn text, mathtext included) each diagram must show.
EXPECTED = {
    "transformer_block": [
        r"input $H^{(\ell-1)}$",
        r"LayerNorm $\mathrm{LN}_1$",
        "multi-head attention",
        r"LayerNorm $\mathrm{LN}_2$",
        r"$\varphi(xW_1 + b_1)\,W_2 + b_2$",
        r"output $H^{(\ell)}$",
        "residual",
        r"$W_1 \in \mathbb{R}^{d \times d_{ff}}$",
        r"$T \times d$",
    ],
    "attention_flow": [
        r"$X \in \mathbb{R}^{T \times d}$",
        "$Q_i = X W_Q^{(i)}$",
        "$K_i = X W_K^{(i)}$",
        "$V_i = X W_V^{(i)}$",
        r"$Q_i K_i^\top / \sqrt{d_k} + M$",
        r"\mathrm{softmax}",
        r"$\mathrm{head}_i = A_i V_i$",
        r"\mathrm{Concat}",
        "W_O",
        r"$T \times T$",
    ],
    "encoder_decoder": [
        "source tokens",
        "both directions",
        "memory",
        "one vector per source token",
        "causal self-attention",
        "cross-attention",
        "K, V from memory",
        r"$T \times |\mathcal{V}|$",
        r"\times\, L_e",
        r"\times\, L_d",
    ],
    "pretrain_adapt": [
        "unlabelled",
        "pretraining",
        "foundation\nmodel",
        "linear probe",
        "fine-tuning",
        "LoRA",
        "zero-/few-shot",
        "tasks",
        "nats per token",
    ],
}


@pytest.fixture(autouse=True)
def theme():
    with matplotlib.rc_context():
        viz.set_theme()
        yield
    plt.close("all")


def _texts(fig):
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_text() and t.get_visible()]


@pytest.fixture(params=sorted(diagrams.DIAGRAMS))
def drawn(request):
    fig = diagrams.DIAGRAMS[request.param]()
    fig.canvas.draw()
    return request.param, fig


def test_every_diagram_is_listed_and_expected():
    assert set(diagrams.DIAGRAMS) == set(EXPECTED)


def test_diagram_shows_its_labels(drawn):
    name, fig = drawn
    assert isinstance(fig, Figure)
    text = "\n".join(t.get_text() for t in _texts(fig))
    missing = [label for label in EXPECTED[name] if label not in text]
    assert not missing, f"{name} lacks {missing}"


def test_diagram_fits_the_column_in_legible_type(drawn):
    name, fig = drawn
    width, height = fig.get_size_inches()
    assert width <= diagrams.MAX_WIDTH and height <= 8
    assert min(t.get_fontsize() for t in _texts(fig)) >= 9


def test_diagram_text_stays_in_the_figure_and_apart(drawn):
    name, fig = drawn
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _texts(fig)]
    for text, box in boxes:
        assert page.x0 <= box.x0 and box.x1 <= page.x1, (name, text)
        assert page.y0 <= box.y0 and box.y1 <= page.y1, (name, text)
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), f"{name}: {ta!r} overlaps {tb!r}"


def test_each_box_label_sits_inside_its_box(drawn):
    name, fig = drawn
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    patches = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("box:")}
    labels = {t.get_gid(): t for t in ax.texts if (t.get_gid() or "").startswith("box:")}
    assert patches and patches.keys() == labels.keys()
    for gid, patch in patches.items():
        outer = patch.get_window_extent(renderer)
        inner = labels[gid].get_window_extent(renderer)
        assert outer.x0 < inner.x0 and inner.x1 < outer.x1, (name, gid, "too wide")
        assert outer.y0 < inner.y0 and inner.y1 < outer.y1, (name, gid, "too tall")


def test_a_diagram_wider_than_the_column_is_refused():
    with pytest.raises(ValueError, match="at most 7.0 in wide"):
        diagrams._canvas(8.0, 3.0)
