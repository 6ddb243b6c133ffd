"""Chapter 3e's regime map: the stored results of ``benchmarks/regime_map.py``, read, tabled and drawn.

The map (``ssmax_lite/lab/data/regime_map.json``) holds, per cell (weight decay × positions × evaluation), every
method's accuracy per seed at 1 … 32 × L and the verdicts of :func:`ssmax_lite.lab.verdicts.paired_verdict`
at 16 and 32 × L. :func:`load_regime_map` reads it, :func:`verdict_table` prints the verdicts within 90
characters a line, and :func:`plot_regime_map` draws one heat map per comparison: the mean paired difference
per cell, with the verdict written in it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["COMPARISONS", "DEFAULT_PATH", "SHORT", "cell", "load_regime_map", "plot_regime_map", "verdict_table"]

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "regime_map.json"
"""Shipped with the package (like chapter 3d's corpus), so that a Colab reader's pip install has it."""
COMPARISONS = ("ssmax vs softmax", "ssmax vs constant-matched", "ssmax vs best fixed temperature",
               "ssmax s0=1 vs softmax", "scale-invariant vs softmax", "scale-invariant vs ssmax")
SHORT = {"reproduced": "wins", "refuted": "loses", "inconclusive": "tie?", "not testable here": "n/t"}
"""How a verdict is written in a cell of the map: the comparison's first method (SSMax, or scale-invariant
attention) wins, loses, cannot be told apart from the second, or is not testable."""
COLUMNS = (("nope", "plain", "NoPE"), ("rope", "plain", "RoPE"), ("rope", "theta x50", "RoPE, θ×50"))


def load_regime_map(path=DEFAULT_PATH) -> dict:
    """The stored map: ``{"provenance": …, "cells": [...], "models": [...]}``."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path must name the regime map's JSON (benchmarks/regime_map.py writes it), got {path}")
    return json.loads(path.read_text())


def cell(summary: dict, decay: float, pe: str, evaluation: str = "plain") -> dict:
    """The map's cell for one weight decay, position encoding and evaluation (``"plain"`` or ``"theta x50"``)."""
    for entry in summary["cells"]:
        if (entry["decay"], entry["pe"], entry["evaluation"]) == (decay, pe, evaluation):
            return entry
    raise ValueError(f"no cell for decay={decay!r}, pe={pe!r}, evaluation={evaluation!r}")


def verdict_table(summary: dict, comparison: str = "ssmax vs softmax") -> str:
    """One row per weight decay, one column per (positions, 16×L / 32×L; "θ×50" is RoPE evaluated with θ × 50):
    the verdict (:data:`SHORT`) and the mean paired difference in accuracy (SSMax − baseline, over the seeds
    used), in at most 90 characters a line."""
    decays = sorted({entry["decay"] for entry in summary["cells"]})
    header = f"{'decay':<7}" + "".join(f"{name.replace('RoPE, θ×50', 'θ×50') + f' {m}×':>13}"
                                       for _, _, name in COLUMNS for m in (16, 32))
    rows = [comparison, header]
    for decay in decays:
        row = f"{decay:<7g}"
        for pe, evaluation, _ in COLUMNS:
            for mult in (16, 32):
                try:
                    v = cell(summary, decay, pe, evaluation)["verdicts"].get(f"{comparison} at {mult}xL")
                except ValueError:
                    v = None
                row += f"{'-' if v is None else SHORT[v['label']] + ' ' + format(v['difference'], '+.2f'):>13}"
        rows.append(row)
    return "\n".join(rows)


def plot_regime_map(ax, summary: dict, comparison: str, mult: int, *, vmax: float = 0.6) -> None:
    """A heat map of ``comparison`` at ``mult·L``: rows are weight decays, columns the positions (NoPE, RoPE,
    RoPE evaluated with θ × 50); the colour is the mean paired difference (blue: SSMax better), the text the
    verdict (:data:`SHORT`). A cell that was not run stays blank."""
    decays = sorted({entry["decay"] for entry in summary["cells"]})
    values = np.full((len(decays), len(COLUMNS)), np.nan)
    for i, decay in enumerate(decays):
        for j, (pe, evaluation, _) in enumerate(COLUMNS):
            try:
                v = cell(summary, decay, pe, evaluation)["verdicts"].get(f"{comparison} at {mult}xL")
            except ValueError:
                continue
            if v is not None:
                values[i, j] = v["difference"]
                dark = abs(v["difference"]) > 0.55 * vmax  # white text on the darkest cells
                ax.text(j, i, f"{SHORT[v['label']]}\n{v['difference']:+.2f}", ha="center", va="center", fontsize=9,
                        color="white" if dark else "black")
    ax.imshow(values, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.grid(False)  # the book style's grid would cut through the cells
    ax.set_xticks(range(len(COLUMNS)), [name for _, _, name in COLUMNS])
    ax.set_yticks(range(len(decays)), [f"decay {d:g}" for d in decays])
    ax.set_title(f"{comparison}, {mult}×L", fontsize=10)
