r"""A picture of the book's model, :class:`~ssmax_lite.lab.model.TinyTransformer`, and of where SSMax enters it.

:func:`draw_model` draws two panels with matplotlib: above, the whole model (token embedding, the
pre-LN blocks, the final LayerNorm and the tied output head), below it one attention layer, with the
single line that SSMax changes marked: every query :math:`q_i` is multiplied by :math:`s_h \log n_i`
(:math:`n_i` = keys that query :math:`i` sees) before torch's fused causal attention computes
:math:`\operatorname{softmax}(q_i K^\top / \sqrt{d})\,V`. Both panels take their numbers from a
:class:`~ssmax_lite.lab.model.ModelConfig`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .model import ModelConfig

__all__ = ["draw_model", "draw_schedules", "draw_sequence"]

_PLAIN, _BLOCK, _SSMAX = "#eef2f7", "#dbe7f3", "#ffd9a8"


def _box(ax, x, y, text, *, width=0.8, height=0.07, color=_PLAIN, bold=False):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.012",
                                facecolor=color, edgecolor="#445", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9.5, fontweight="bold" if bold else "normal")


def _arrow(ax, x, y0, y1):
    ax.add_patch(FancyArrowPatch((x, y0), (x, y1), arrowstyle="-|>", mutation_scale=10, color="#445",
                                 linewidth=1))


def _column(ax, x, steps, top=0.92, gap=0.12):
    """Boxes from top to bottom, each joined to the next by an arrow; ``steps`` are (text, options)."""
    ys = [top - i * gap for i in range(len(steps))]
    for y, (text, options) in zip(ys, steps):
        _box(ax, x, y, text, **options)
    for y0, y1 in zip(ys[:-1], ys[1:]):
        _arrow(ax, x, y0 - 0.037, y1 + 0.037)
    return ys


def draw_model(config: ModelConfig | None = None, *, figsize=(6.6, 7.2)):
    """Draw the model of ``config`` (default: the ``quick`` preset's SSMax model) above its attention layer.

    Returns the :class:`matplotlib.figure.Figure`.
    """
    if config is None:
        from .train import preset
        config = preset("quick", attention="ssmax").model
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
    fig, (left, right) = plt.subplots(2, 1, figsize=figsize)
    for ax in (left, right):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")

    d, heads, layers = config.d_model, config.n_heads, config.n_layers
    ys = _column(left, 0.5, [
        (f"tokens x₁ … x_T  (vocabulary {config.vocab_size})", {}),
        (f"token embedding  (d = {d}){'' if config.pe == 'rope' else ', no position embedding'}", {}),
        ("LayerNorm → attention → + x", dict(color=_BLOCK)),
        (f"LayerNorm → MLP (d → {config.d_ff or 4 * d} → d, GELU) → + x", dict(color=_BLOCK)),
        ("final LayerNorm", {}),
        ("output head (tied to the embedding)" if config.tie_embeddings else "output head", {}),
        ("logits for the next token at every position", {}),
    ])
    left.add_patch(FancyBboxPatch((0.07, ys[3] - 0.05), 0.86, ys[2] - ys[3] + 0.1, boxstyle="round,pad=0.01",
                                  facecolor="none", edgecolor="#2b5d8a", linestyle="--", linewidth=1.2))
    left.text(0.95, (ys[2] + ys[3]) / 2, f"× {layers}", ha="left", va="center", fontsize=10, color="#2b5d8a")
    left.set_title(f"TinyTransformer: {layers} blocks, {heads} heads, d = {d}, trained at L = {config.train_len}",
                   fontsize=10.5)

    rope = config.pe == "rope"
    _column(right, 0.5, [
        ("LayerNorm(x): one row per position", {}),
        (f"q, k, v = linear maps, split into {heads} heads of {d // heads}", {}),
        ("rotate q and k by their positions (RoPE)" if rope else "no positions: NoPE (the causal mask only)", {}),
        (r"$q_i \leftarrow q_i \cdot s_h \log n_i$    ($n_i = i + 1$ keys seen by query $i$)",
         dict(color=_SSMAX, bold=True)),
        (r"$\mathrm{softmax}(q_i K^\top / \sqrt{d})\, V$, causal: torch's fused SDPA", {}),
        ("concatenate the heads, linear map back to d", {}),
    ], top=0.9, gap=0.13)
    right.text(0.5, 0.06, f"attention = {config.attention!r}: softmax leaves q as it is; SSMax and its peers\n"
                          "change only the highlighted line (one multiplier per query)",
               ha="center", va="center", fontsize=9.5, style="italic")
    right.set_title("one attention layer, and the line SSMax changes", fontsize=10.5)
    fig.tight_layout()
    return fig


def draw_sequence(tokens, needle_positions, query_positions, *, ax=None,
                  title="grey: the haystack, one token repeated; each colour: a needle and its query (?)"):
    """Draw one sequence of a needle task as a row of cells: the haystack in grey, each needle and its
    query in one colour (the query marked "?"), and an arc from every query back to its needle; under each
    query, the number of keys n it sees.

    Returns the :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path

    tokens = [int(t) for t in tokens]
    needles = [int(p) for p in needle_positions]
    queries = [int(p) for p in query_positions]
    if len(needles) != len(queries):
        raise ValueError(f"needle_positions and query_positions must pair up, got {len(needles)} and {len(queries)}")
    if any(not 0 <= p < len(tokens) for p in needles + queries):
        raise ValueError("every needle and query position must lie inside the sequence")
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#999933"]
    color_of = {}
    for i, (needle, query) in enumerate(zip(needles, queries)):
        color_of[needle] = color_of[query] = palette[i % len(palette)]
    highest = max([0.12 * abs(q - n) + 0.6 for n, q in zip(needles, queries)] + [1.0])
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.8, 0.9 + 0.23 * (highest + 2.5)), layout="constrained")
    else:
        fig = ax.figure
    for p in range(len(tokens)):
        ax.add_patch(Rectangle((p + 0.05, 0), 0.9, 0.9, facecolor=color_of.get(p, "#dddddd"), edgecolor="none"))
        if p in queries:
            ax.text(p + 0.5, 0.45, "?", ha="center", va="center", fontsize=9, color="white", fontweight="bold")
            ax.text(p + 0.5, -0.2, f"n = {p + 1}", ha="center", va="top", fontsize=8, color="0.25", rotation=90)
    for needle, query in zip(needles, queries):
        height = 0.9 + 2 * (0.12 * abs(query - needle) + 0.6)   # a quadratic Bézier peaks at half its control
        path = Path([(query + 0.5, 0.95), ((query + needle) / 2 + 0.5, height), (needle + 0.5, 0.95)],
                    [Path.MOVETO, Path.CURVE3, Path.CURVE3])
        ax.add_patch(PathPatch(path, facecolor="none", edgecolor=color_of[query], linewidth=1.3))
        ax.plot(needle + 0.5, 1.0, "v", color=color_of[query], markersize=4)
    ax.set_xlim(-0.2, len(tokens) + 0.2)
    ax.set_ylim(-2.3, 1.0 + highest)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9.5)
    return fig


def draw_schedules(schedules: dict, *, ax=None, colors=None):
    """Draw training schedules as timelines: one row per configuration, one bar per phase.

    ``schedules`` maps a configuration's name to its phases ``(start_step, end_step, attention, note)``;
    a phase with a note (e.g. ``"lr / 3"``) is drawn lighter and labelled with it, and a phase of zero length
    (a switch with no training) is drawn as a marker. ``colors`` maps an attention to its colour (default:
    :data:`ssmax_lite.lab.plotting.KIND_COLORS`).

    Returns the :class:`matplotlib.figure.Figure`.
    """
    from .plotting import KIND_COLORS

    colors = colors or KIND_COLORS
    if not schedules:
        raise ValueError("schedules must hold at least one configuration")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.6, 0.9 + 0.42 * len(schedules)), layout="constrained")
    else:
        fig = ax.figure
    seen = {}
    for row, (name, phases) in enumerate(schedules.items()):
        for start, end, attention, note in phases:
            color = colors.get(attention, "0.5")
            if end == start:  # switched, no training
                handle, = ax.plot(start, row, marker="D", color=color, markersize=7, linestyle="none")
            else:
                handle = ax.barh(row, end - start, left=start, height=0.6, color=color, alpha=0.5 if note else 1,
                                 linewidth=0)
                if note:
                    ax.text((start + end) / 2, row, note, ha="center", va="center", fontsize=9, color="k")
            seen.setdefault(attention, handle)
    ax.set_yticks(range(len(schedules)), list(schedules))
    ax.set_ylim(len(schedules) - 0.5, -0.5)
    ax.set_xlabel("training step")
    ax.grid(axis="y", visible=False)
    ax.legend(list(seen.values()), list(seen), loc="upper center", bbox_to_anchor=(0.5, -0.25 * 6 / len(schedules)),
              ncols=len(seen))
    return fig
