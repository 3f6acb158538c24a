"""Conceptual diagrams of the book, drawn from code with matplotlib.

Each function returns a :class:`matplotlib.figure.Figure` (never shown or saved here), at
most 7 inches wide, with text of at least 9 points, in the book's notation
(:doc:`/book/notation`): ``T`` tokens, model width ``d``, ``h`` heads of width
``d_k = d/h``, ``L`` layers, hidden states ``H``, vocabulary ``|V|`` (calligraphic V),
row vectors (``XW``). Nothing is a hand-edited image, so a diagram changes with its code.

* :func:`transformer_block`: one pre-norm block, LN -> attention -> add -> LN -> MLP -> add;
* :func:`attention_flow`: multi-head attention from ``X`` to ``W_O``;
* :func:`encoder_decoder`: an encoder stack, its memory, and cross-attention in the decoder;
* :func:`pretrain_adapt`: pretraining on unlabelled text, then four ways of adapting.

Every box's text is a text artist with ``gid`` ``"box:<name>"`` (the same as its patch), so
tests can check that each label sits inside its box and that no two labels overlap.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

FONT = 10  # points, box labels
SMALL = 9  # points, annotations (the smallest text in any diagram)
MAX_WIDTH = 7.0  # inches: the content column of the book

# Fill colours (colour-blind-safe pastels) for the kinds of box.
COLOURS = {
    "data": "#e8e8e8",
    "norm": "#fde9b0",
    "attention": "#cfe3f6",
    "mlp": "#d5efd0",
    "add": "#ffffff",
    "model": "#f3d6e8",
    "adapt": "#e3dcf4",
}


def _canvas(width: float, height: float) -> tuple[Figure, plt.Axes]:
    """A figure whose data coordinates are inches: (0, 0) bottom left."""
    if width > MAX_WIDTH:
        raise ValueError(f"a diagram is at most {MAX_WIDTH} in wide, got {width}")
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def _box(ax, name, x, y, w, h, text, kind="data", fontsize=FONT, dashed=False):
    """A rounded box centred at (x, y), w by h inches, with centred text."""
    patch = FancyBboxPatch(
        (x - w / 2, y - h / 2),
        w,
        h,
        boxstyle="round,pad=0,rounding_size=0.08",
        facecolor=COLOURS[kind],
        edgecolor="#333333",
        linewidth=1.0,
        linestyle="--" if dashed else "-",
        gid=f"box:{name}",
    )
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, gid=f"box:{name}")
    return (x, y, w, h)


def _circle_add(ax, name, x, y, r=0.16):
    """The residual addition: a circled plus."""
    ax.add_patch(plt.Circle((x, y), r, facecolor="white", edgecolor="#333333", gid=f"add:{name}"))
    ax.text(x, y, "+", ha="center", va="center", fontsize=FONT + 2, gid=f"add:{name}")
    return (x, y, 2 * r, 2 * r)


def _arrow(ax, start, end, text=None, side="right", style="-|>", colour="#333333", **kw):
    """An arrow from start to end (points in inches), with an optional label beside it."""
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops=dict(arrowstyle=style, color=colour, lw=1.2, shrinkA=0, shrinkB=0, **kw),
    )
    if text:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        offset = 0.08 if side == "right" else -0.08
        ax.text(
            mx + offset,
            my,
            text,
            ha="left" if side == "right" else "right",
            va="center",
            fontsize=SMALL,
            color="#333333",
        )


def _note(ax, x, y, text, ha="left", va="center", fontsize=SMALL, color="#333333", **kw):
    """An annotation (shapes, remarks) in the smaller font."""
    return ax.text(x, y, text, ha=ha, va=va, fontsize=fontsize, color=color, **kw)


def _top(b):
    return (b[0], b[1] + b[3] / 2)


def _bottom(b):
    return (b[0], b[1] - b[3] / 2)


def _left(b):
    return (b[0] - b[2] / 2, b[1])


def _right(b):
    return (b[0] + b[2] / 2, b[1])


def transformer_block() -> Figure:
    """One pre-norm Transformer block, bottom to top: H -> LN -> multi-head attention ->
    add -> LN -> MLP -> add, with the two residual paths and the shape of each tensor."""
    fig, ax = _canvas(6.4, 6.6)
    cx = 2.6  # the main column
    bw, bh = 3.0, 0.5
    inp = _box(ax, "input", cx, 0.45, bw, bh, r"input $H^{(\ell-1)}$", "data")
    ln1 = _box(ax, "ln1", cx, 1.35, bw, bh, r"LayerNorm $\mathrm{LN}_1$", "norm")
    att = _box(
        ax,
        "attention",
        cx,
        2.35,
        bw,
        0.75,
        "multi-head attention\n" + r"$h$ heads, $d_k = d/h$, causal mask $M$",
        "attention",
    )
    add1 = _circle_add(ax, "add1", cx, 3.25)
    ln2 = _box(ax, "ln2", cx, 4.0, bw, bh, r"LayerNorm $\mathrm{LN}_2$", "norm")
    mlp = _box(
        ax,
        "mlp",
        cx,
        4.95,
        bw,
        0.75,
        "MLP (position-wise)\n" + r"$\varphi(xW_1 + b_1)\,W_2 + b_2$",
        "mlp",
    )
    add2 = _circle_add(ax, "add2", cx, 5.85)
    _note(ax, cx, 6.35, r"output $H^{(\ell)}$", ha="center", fontsize=FONT)

    chain = [inp, ln1, att, add1, ln2, mlp, add2]
    for a, b in zip(chain, chain[1:], strict=False):
        _arrow(ax, _top(a), _bottom(b))
    _arrow(ax, _top(add2), (cx, 6.22))

    # residual paths on the left: from below LN_1 to the first add, from below LN_2 to the
    # second
    rx = cx - bw / 2 - 0.35
    for y0, add, label in ((0.9, add1, "residual"), (3.6, add2, "residual")):
        ax.plot([cx, rx, rx], [y0, y0, add[1]], color="#333333", lw=1.2)
        _arrow(ax, (rx, add[1]), _left(add))
        _note(ax, rx - 0.08, (y0 + add[1]) / 2, label, ha="right", rotation=90)

    # shapes on the right
    sx = cx + bw / 2 + 0.2
    _note(ax, sx, inp[1], r"$T \times d$")
    _note(ax, sx, ln1[1], r"$T \times d$ (per row: mean 0, var 1)")
    _note(ax, sx, att[1] + 0.12, r"$Q, K, V$: $h \times T \times d_k$")
    _note(ax, sx, att[1] - 0.14, r"weights: $h \times T \times T$")
    _note(ax, sx, add1[1], r"$H' = H^{(\ell-1)} + \mathrm{MHA}(\mathrm{LN}_1 H^{(\ell-1)})$")
    _note(ax, sx, ln2[1], r"$T \times d$")
    _note(ax, sx, mlp[1] + 0.12, r"$W_1 \in \mathbb{R}^{d \times d_{ff}}$")
    _note(ax, sx, mlp[1] - 0.14, r"$W_2 \in \mathbb{R}^{d_{ff} \times d}$")
    _note(ax, sx, add2[1], r"$H^{(\ell)} = H' + \mathrm{MLP}(\mathrm{LN}_2 H')$")
    return fig


def attention_flow() -> Figure:
    """Multi-head self-attention, top to bottom: X -> Q, K, V projections -> scores
    QK^T/sqrt(d_k) + M -> softmax -> weights times V -> concatenated heads -> W_O."""
    fig, ax = _canvas(6.8, 6.9)
    x = _box(ax, "x", 3.1, 6.45, 2.6, 0.5, r"input $X \in \mathbb{R}^{T \times d}$", "data")
    # the per-head part, in a dashed frame
    ax.add_patch(
        Rectangle((0.25, 1.95), 5.9, 3.85, facecolor="none", edgecolor="#777777", ls="--", lw=1)
    )
    _note(ax, 0.35, 5.62, r"for each head $i = 1, \dots, h$", va="center")
    bw, bh = 1.7, 0.62
    q = _box(ax, "q", 1.2, 4.85, bw, bh, "$Q_i = X W_Q^{(i)}$\n" + r"$T \times d_k$", "attention")
    k = _box(ax, "k", 3.1, 4.85, bw, bh, "$K_i = X W_K^{(i)}$\n" + r"$T \times d_k$", "attention")
    v = _box(ax, "v", 5.0, 4.85, bw, bh, "$V_i = X W_V^{(i)}$\n" + r"$T \times d_k$", "attention")
    s = _box(
        ax,
        "scores",
        2.15,
        3.8,
        3.2,
        0.62,
        r"scores $Q_i K_i^\top / \sqrt{d_k} + M$" + "\n" + r"$T \times T$",
        "attention",
    )
    a = _box(
        ax,
        "softmax",
        2.15,
        2.45,
        3.2,
        0.62,
        r"$A_i = \mathrm{softmax}(\cdot)$ by row" + "\n" + r"$T \times T$, rows sum to 1",
        "attention",
    )
    o = _box(
        ax,
        "av",
        5.0,
        2.45,
        bw,
        0.62,
        r"$\mathrm{head}_i = A_i V_i$" + "\n" + r"$T \times d_k$",
        "attention",
    )
    cat = _box(
        ax,
        "concat",
        3.1,
        1.35,
        4.6,
        0.5,
        r"$\mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)$: $T \times d$",
        "data",
    )
    out = _box(
        ax,
        "out",
        3.1,
        0.4,
        4.6,
        0.5,
        r"output $\mathrm{Concat}(\cdot)\, W_O$, $W_O \in \mathbb{R}^{d \times d}$",
        "data",
    )
    xb = _bottom(x)
    for target in (q, k, v):
        _arrow(ax, xb, _top(target))
    _arrow(ax, _bottom(q), (q[0], s[1] + s[3] / 2))
    _arrow(ax, _bottom(k), (k[0], s[1] + s[3] / 2))
    _arrow(ax, _bottom(s), _top(a))
    _note(
        ax,
        s[0] + 0.1,
        (s[1] - s[3] / 2 + a[1] + a[3] / 2) / 2,
        r"causal mask $M_{ij} = -\infty$ for $j > i$, else 0",
        ha="left",
    )
    _arrow(ax, _right(a), _left(o))
    _arrow(ax, _bottom(v), _top(o))
    _arrow(ax, _bottom(o), (o[0], cat[1] + cat[3] / 2))
    _arrow(ax, _bottom(cat), _top(out))
    return fig


def encoder_decoder() -> Figure:
    """The encoder-decoder Transformer: an encoder stack turns the S source tokens into a
    memory of one vector per source token; every decoder block reads it by cross-attention
    after its causal self-attention. The LayerNorms and residual additions inside the
    blocks are left out (:func:`transformer_block` shows them)."""
    fig, ax = _canvas(7.0, 6.2)
    ex, dx = 1.75, 5.05  # the two columns
    bw = 2.9
    src = _box(ax, "src", ex, 0.4, bw, 0.5, "source tokens\n" + r"$s_1, \dots, s_S$", "data")
    semb = _box(ax, "src_emb", ex, 1.25, bw, 0.5, "embedding + positions", "data")
    enc_sa = _box(
        ax,
        "enc_self",
        ex,
        2.35,
        bw - 0.3,
        0.62,
        "self-attention\n(both directions)",
        "attention",
    )
    enc_mlp = _box(ax, "enc_mlp", ex, 3.3, bw - 0.3, 0.5, "MLP", "mlp")
    ax.add_patch(
        Rectangle(
            (ex - bw / 2, 1.8), bw, 1.95, facecolor="none", edgecolor="#777777", ls="--", lw=1
        )
    )
    _note(ax, ex - bw / 2 + 0.06, 3.93, r"encoder block $\times\, L_e$", va="center")
    mem = _box(
        ax,
        "memory",
        ex,
        4.95,
        bw,
        0.75,
        r"memory $\mathrm{LN}(H^{(L_e)}) \in \mathbb{R}^{S \times d}$" + "\none vector per "
        "source token",
        "model",
    )
    for a, b in ((src, semb), (semb, enc_sa), (enc_sa, enc_mlp)):
        _arrow(ax, _top(a), _bottom(b))
    _arrow(ax, (ex, 3.75), _bottom(mem))

    tgt = _box(ax, "tgt", dx, 0.4, bw, 0.5, "target so far\n" + r"$y_1, \dots, y_T$", "data")
    temb = _box(ax, "tgt_emb", dx, 1.25, bw, 0.5, "embedding + positions", "data")
    dec_sa = _box(
        ax,
        "dec_self",
        dx,
        2.3,
        bw - 0.3,
        0.55,
        "causal self-attention",
        "attention",
    )
    dec_x = _box(
        ax,
        "cross",
        dx,
        3.2,
        bw - 0.3,
        0.75,
        "cross-attention\nQ from decoder,\nK, V from memory",
        "attention",
    )
    dec_mlp = _box(ax, "dec_mlp", dx, 4.1, bw - 0.3, 0.45, "MLP", "mlp")
    ax.add_patch(
        Rectangle((dx - bw / 2, 1.8), bw, 2.6, facecolor="none", edgecolor="#777777", ls="--", lw=1)
    )
    _note(ax, dx - bw / 2 + 0.06, 4.55, r"decoder block $\times\, L_d$", va="center")
    head = _box(
        ax,
        "logits",
        dx,
        5.35,
        bw,
        0.62,
        "LN, then " + r"$\cdot\, E^\top$" + "\nlogits " + r"$T \times |\mathcal{V}|$",
        "data",
    )
    for a, b in ((tgt, temb), (temb, dec_sa), (dec_sa, dec_x), (dec_x, dec_mlp)):
        _arrow(ax, _top(a), _bottom(b))
    _arrow(ax, (dx, 4.4), _bottom(head))
    # memory -> cross-attention of every decoder block
    ax.plot([mem[0] + mem[2] / 2, 3.35, 3.35], [mem[1], mem[1], dec_x[1]], color="#b03a2e", lw=1.4)
    _arrow(ax, (3.35, dec_x[1]), _left(dec_x), colour="#b03a2e")
    _note(ax, 3.28, 4.05, "to every\ndecoder\nblock", ha="right", color="#b03a2e")
    _note(ax, 0.3, 5.95, "Encoder", ha="left", fontsize=FONT, weight="bold")
    _note(ax, 3.6, 5.95, "Decoder", ha="left", fontsize=FONT, weight="bold")
    return fig


def pretrain_adapt() -> Figure:
    """Pretraining and adaptation: an unlabelled corpus, self-supervised pretraining, the
    foundation model, and four ways of adapting it (probe, fine-tune, LoRA, zero-shot)
    to downstream tasks."""
    fig, ax = _canvas(7.0, 4.3)
    y0 = 2.1
    corpus = _box(ax, "corpus", 0.65, y0, 1.15, 0.95, "unlabelled\ncorpus\n(raw text)", "data")
    pre = _box(
        ax, "pretrain", 2.0, y0, 1.25, 0.95, "pretraining\nnext-token or\nmasked LM", "model"
    )
    fm = _box(ax, "fm", 3.3, y0, 1.1, 0.95, "foundation\nmodel", "model")
    ways = [
        ("probe", "linear probe\n(frozen features)"),
        ("finetune", "full fine-tuning\n(all weights)"),
        ("lora", "LoRA\n" + r"($W + AB$, rank $r$)"),
        ("zeroshot", "zero-/few-shot\n(prompt only)"),
    ]
    ys = [3.6, 2.6, 1.6, 0.6]
    boxes = [
        _box(ax, name, 5.0, y, 1.5, 0.72, text, "adapt")
        for (name, text), y in zip(ways, ys, strict=True)
    ]
    tasks = _box(ax, "tasks", 6.47, y0, 0.95, 1.1, "tasks\n(few\nlabels)", "data")
    _arrow(ax, _right(corpus), _left(pre))
    _arrow(ax, _right(pre), _left(fm))
    for b in boxes:
        _arrow(ax, _right(fm), _left(b))
        _arrow(ax, _right(b), _left(tasks))
    _note(ax, 1.33, 1.3, "self-supervised: no labels;\nloss in nats per token", ha="center")
    _note(ax, 5.0, 4.15, "adaptation", ha="center", fontsize=FONT, weight="bold")
    _note(ax, 1.33, 3.1, "pretraining", ha="center", fontsize=FONT, weight="bold")
    return fig


DIAGRAMS = {
    "transformer_block": transformer_block,
    "attention_flow": attention_flow,
    "encoder_decoder": encoder_decoder,
    "pretrain_adapt": pretrain_adapt,
}
