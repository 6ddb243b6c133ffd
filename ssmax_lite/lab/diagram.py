r"""A picture of the book's model, :class:`~ssmax_lite.lab.model.TinyTransformer`, and of where SSMax enters it.

:func:`draw_model` draws two panels with matplotlib: on the left the whole model (token embedding, the
pre-LN blocks, the final LayerNorm and the tied output head), on the right one attention layer, with the
single line that SSMax changes marked: every query :math:`q_i` is multiplied by :math:`s_h \log n_i`
(:math:`n_i` = keys that query :math:`i` sees) before torch's fused causal attention computes
:math:`\operatorname{softmax}(q_i K^\top / \sqrt{d})\,V`. Both panels take their numbers from a
:class:`~ssmax_lite.lab.model.ModelConfig`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .model import ModelConfig

__all__ = ["draw_model"]

_PLAIN, _BLOCK, _SSMAX = "#eef2f7", "#dbe7f3", "#ffd9a8"


def _box(ax, x, y, text, *, width=0.8, height=0.07, color=_PLAIN, bold=False):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.012",
                                facecolor=color, edgecolor="#445", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9, fontweight="bold" if bold else "normal")


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


def draw_model(config: ModelConfig | None = None, *, figsize=(10, 5.2)):
    """Draw the model of ``config`` (default: the ``quick`` preset's SSMax model) and its attention layer.

    Returns the :class:`matplotlib.figure.Figure`.
    """
    if config is None:
        from .train import preset
        config = preset("quick", attention="ssmax").model
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize)
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
                   fontsize=10)

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
               ha="center", va="center", fontsize=8.5, style="italic")
    right.set_title("one attention layer, and the line SSMax changes", fontsize=10)
    fig.tight_layout()
    return fig
