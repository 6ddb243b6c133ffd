"""Draws the figures of the book's own pages (not its chapters) into this folder, as SVG.

    .venv/bin/python book/figures/make_figures.py

idea.svg, the landing page's figure: the largest attention weight of one key that stands out by a fixed gap,
against the number of keys n, under softmax and under SSMax (chapter 1's closed form, the paper's Fig. 1 input).
"""

from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ssmax_lite.lab.fading import one_strong_logit_top_weight  # noqa: E402
from ssmax_lite.lab.plotting import KIND_COLORS, use_book_style  # noqa: E402

HERE = Path(__file__).resolve().parent
S, GAP = 0.43, 5.0  # the paper's Fig. 1: s = 0.43, one logit 5 above the rest


def idea(path: Path) -> None:
    use_book_style(retina=False)
    n = np.unique(np.round(np.logspace(0, 6, 300)))
    fig, ax = plt.subplots(figsize=(6.6, 3.3), layout="constrained")
    ax.semilogx(n, one_strong_logit_top_weight(n, GAP), lw=2.5, color=KIND_COLORS["softmax"])
    ax.semilogx(n, one_strong_logit_top_weight(n, GAP, s=S), lw=2.5, color=KIND_COLORS["ssmax"])
    ax.text(2e3, 0.3, "softmax: the key fades\ninto the crowd", color=KIND_COLORS["softmax"], fontsize=10.5)
    ax.text(2e3, 0.82, f"SSMax (s = {S}): it keeps its weight", color=KIND_COLORS["ssmax"], fontsize=10.5)
    ax.set(xlabel="n, the number of keys a query sees", ylabel="weight of the key",
           ylim=(0, 1.05), title=f"One key whose logit is {GAP:g} above n − 1 others")
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


if __name__ == "__main__":
    matplotlib.rcParams["svg.hashsalt"] = "ssmax-book"  # the same file on every run
    idea(HERE / "idea.svg")
    print(f"wrote {HERE / 'idea.svg'}")
