"""Every figure of the book: the chapters' plots, and the sliders that drive the interactive ones.

The chapters' plots (:func:`plot_by_length`, :func:`plot_by_depth`, :func:`plot_train_loss`,
:func:`plot_loss_by_position`, :func:`plot_accuracy`, :func:`plot_learned_pn`) draw on a given
matplotlib ``Axes``: the mean over seeds as a line with a band from the worst to the best seed
(:func:`plot_band`), one colour per attention kind (:data:`KIND_COLORS`).

**Sliders: one drawing function, two front ends.** Every interactive figure of the book is written once, as a function

    draw(fig, **params)

that receives a cleared :class:`matplotlib.figure.Figure` (by default in constrained layout, so
``draw`` needs no ``tight_layout``), creates its own axes and draws. Two front ends drive it:

* :func:`live_sliders` — ipywidgets sliders that call ``draw`` again whenever a slider moves. Needs a
  running kernel (Jupyter, Colab). Works with ipywidgets 7.7 (Colab's version) and 8.
* :func:`static_slider` — renders ``draw`` once per value of one parameter with matplotlib's
  ``FuncAnimation(...).to_jshtml()`` and returns the frames as HTML with a slider under them. Needs no
  kernel, so the static HTML book can show it.

This module is the only part of ``ssmax_lite`` that imports matplotlib, IPython and ipywidgets;
``import ssmax_lite`` does not import it.
"""

from __future__ import annotations

from numbers import Real
from typing import Callable, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

from .experiments import moving_average

__all__ = ["KIND_COLORS", "choice_slider", "live_sliders", "plot_accuracy", "plot_accuracy_and_loss", "plot_band",
           "plot_by_depth", "plot_by_length", "plot_learned_pn", "plot_loss_by_position", "plot_train_loss",
           "sliders_widget", "static_slider"]

DrawFunction = Callable[..., None]


def static_slider(draw: DrawFunction, name: str, values: Sequence, *, fixed: Mapping | None = None,
                  figsize=(7, 4), fmt: str | None = "{name} = {value:g}", dpi: int = 80,
                  layout: str | None = "constrained"):
    """Pre-render ``draw(fig, **{name: v}, **fixed)`` for every ``v`` in ``values`` as an HTML slider.

    Each value becomes one frame of a matplotlib ``FuncAnimation``; ``to_jshtml()`` embeds the frames
    as PNG images with a slider and play buttons, so the result works without a kernel (static HTML).
    The current value is written above the plot with ``fmt.format(name=name, value=v)`` (as the
    figure's suptitle, or as a corner label if ``draw`` sets its own suptitle); ``fmt=None`` writes
    nothing. The figure is closed afterwards, so no extra static copy is printed.

    Keep ``values`` short (8–16 frames) and ``dpi`` low: every frame is stored in the page.
    ``layout`` is the figure's layout engine; ``None`` (``draw`` places its axes itself, e.g. with
    ``fig.subplots_adjust``) renders about twice as fast as ``"constrained"``.

    Returns:
        ``IPython.display.HTML`` holding the slider.
    """
    from IPython.display import HTML

    if not callable(draw):
        raise ValueError(f"draw must be a function draw(fig, **params), got {type(draw).__name__}")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be the name of a keyword argument of draw, got {name!r}")
    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value for the slider, got none")
    fixed = dict(fixed or {})
    if name in fixed:
        raise ValueError(f"fixed must not contain the slider's own parameter {name!r}")
    _check_figure_args(figsize, dpi, layout)
    if fmt is not None and not isinstance(fmt, str):
        raise ValueError(f"fmt must be a format string with {{name}} and {{value}}, or None; got {fmt!r}")

    fig = plt.figure(figsize=figsize, dpi=dpi, layout=layout)
    try:
        def render_frame(index: int):
            fig.clear()
            value = values[index]
            draw(fig, **{name: value}, **fixed)
            if fmt is not None:
                _label_frame(fig, fmt.format(name=name, value=value))
            return []

        animation = FuncAnimation(fig, render_frame, frames=len(values), interval=500,
                                  repeat=False, cache_frame_data=False)
        with matplotlib.rc_context({"savefig.dpi": dpi, "animation.embed_limit": 50.0}):
            html = animation.to_jshtml(fps=2, embed_frames=True, default_mode="once")
    finally:
        plt.close(fig)
    return HTML(html)


def sliders_widget(draw: DrawFunction, *, figsize=(7, 4), layout: str | None = "constrained", **sliders):
    """Build (without showing) the ipywidgets front end: ``draw(fig, **params)`` redrawn on every change.

    ``sliders`` maps each parameter of ``draw`` to an ipywidgets widget (e.g. ``FloatSlider``,
    :func:`choice_slider`), to an ``interact`` abbreviation such as ``(0.0, 2.0, 0.1)``, or to
    ``ipywidgets.fixed(value)``. Sliders made from abbreviations update when released
    (``continuous_update=False``) so a slow redraw does not lag behind the mouse.

    Returns:
        an ``ipywidgets.interactive`` widget; its ``children`` are the sliders then the output area.
    """
    import ipywidgets as widgets

    if not callable(draw):
        raise ValueError(f"draw must be a function draw(fig, **params), got {type(draw).__name__}")
    if not sliders:
        raise ValueError("give at least one slider, e.g. live_sliders(draw, n=(10, 1000, 10))")
    _check_figure_args(figsize, None, layout)

    controls = {}
    for param, spec in sliders.items():
        if isinstance(spec, (widgets.Widget, widgets.fixed)):
            controls[param] = spec
            continue
        widget = widgets.interactive.widget_from_abbrev(spec)
        if widget is None:
            raise ValueError(f"slider {param!r}: cannot make a widget from {spec!r}; give a widget, "
                             f"a (min, max[, step]) tuple, a list of choices or ipywidgets.fixed(value)")
        if hasattr(widget, "continuous_update"):
            widget.continuous_update = False
        controls[param] = widget

    def redraw(**params):
        fig = plt.figure(figsize=figsize, layout=layout)
        draw(fig, **params)
        plt.show()

    return widgets.interactive(redraw, **controls)


def live_sliders(draw: DrawFunction, *, figsize=(7, 4), layout: str | None = "constrained",
                 **sliders) -> None:
    """Show ipywidgets sliders that redraw ``draw(fig, **params)`` (the kernel-backed front end).

    Like ``ipywidgets.interact``: the sliders and the first figure are displayed at once; every change
    calls ``draw`` on a new figure and ends with ``plt.show()`` (needed in Colab, where figures would
    otherwise pile up). See :func:`sliders_widget` for what ``sliders`` accepts. Returns ``None`` so
    that nothing extra is printed when it is the last line of a cell.

    In the static HTML book there is no kernel, so these sliders would do nothing there: tag the cell
    ``remove-output`` and show a :func:`static_slider` of the same ``draw`` beside it.
    """
    from IPython.display import display

    display(sliders_widget(draw, figsize=figsize, layout=layout, **sliders))


def choice_slider(values: Sequence, *, value=None, description: str = ""):
    """A slider over a fixed list of values (e.g. n = 10, 100, ..., 10**6 for a log-scale axis).

    An ``ipywidgets.SelectionSlider`` (available in ipywidgets 7 and 8) that updates when released.
    """
    import ipywidgets as widgets

    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value for the slider, got none")
    if value is None:
        value = values[0]
    if value not in values:
        raise ValueError(f"value must be one of values {values}, got {value!r}")
    return widgets.SelectionSlider(options=values, value=value, description=description,
                                   continuous_update=False)


# --------------------------------------------------------------------------- helpers


LAYOUTS = (None, "constrained", "compressed", "tight")


def _check_figure_args(figsize, dpi, layout) -> None:
    ok = (isinstance(figsize, (tuple, list)) and len(figsize) == 2
          and all(isinstance(v, Real) and v > 0 for v in figsize))
    if not ok:
        raise ValueError(f"figsize must be (width, height) in inches, both > 0; got {figsize!r}")
    if dpi is not None and (not isinstance(dpi, Real) or dpi <= 0):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def _label_frame(fig: Figure, label: str) -> None:
    """Write the slider value above the plot (suptitle), or in the top-left corner if one is taken."""
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    if suptitle:
        fig.text(0.01, 0.99, label, ha="left", va="top", fontsize=9, color="0.3")
    else:
        fig.suptitle(label, fontsize=10)


# --------------------------------------------------------------------------- the chapters' figures


KIND_COLORS = {"softmax": "tab:blue", "ssmax": "tab:orange", "constant": "tab:green", "ssmax-fixed": "tab:red",
               "ssmax-bias": "tab:purple", "chiang-log-n": "tab:brown", "su-log-base": "tab:pink",
               "qwen-logn": "tab:cyan", "llama4-temperature": "tab:olive", "yarn": "tab:gray"}
"""One colour per attention kind, shared by the chapters' figures."""


def plot_band(ax, x, per_seed, style: str | None = None, **line_kwargs):
    """Draw the mean over seeds of ``per_seed`` (shape ``(seeds, len(x))``) against ``x`` as a line, with a
    band from the lowest to the highest seed in the line's colour; returns the line. ``style`` is a
    matplotlib format string (``"--"``); ``line_kwargs`` go to ``ax.plot`` (``color``, ``label``, ``marker``, …)."""
    per_seed = np.asarray(per_seed, dtype=np.float64)
    if per_seed.ndim != 2 or per_seed.shape[1] != len(x):
        raise ValueError(f"per_seed must have shape (seeds, {len(x)}) for {len(x)} x values, got {per_seed.shape}")
    line, = ax.plot(x, per_seed.mean(axis=0), *([style] if style else []), **line_kwargs)
    ax.fill_between(x, per_seed.min(axis=0), per_seed.max(axis=0), color=line.get_color(), alpha=0.15, lw=0)
    return line


def _per_seed(cells) -> np.ndarray:
    """``(seeds, len(cells))`` from a row of :func:`summarize` cells."""
    return np.array([c["per_seed"] for c in cells]).T


def plot_by_length(ax, summary: dict, metric: str = "accuracy", evaluation: str = "plain", *, style: str = "-",
                   suffix: str = "") -> None:
    """Draw ``metric`` against evaluation length for every kind of ``summary`` (from
    :func:`length_experiment`): the mean over seeds, a band from the worst to the best seed, and a
    dotted vertical line at the training length L (labelled)."""
    mults = summary["eval_mult"]
    for kind, result in summary["results"].items():
        plot_band(ax, mults, _per_seed(result["evaluations"][evaluation][metric]), style, marker="o",
                  color=KIND_COLORS.get(kind), label=kind + suffix)
    ax.axvline(1, color="gray", linestyle=":", linewidth=1, label="training length L")
    ax.set_xscale("log", base=2)
    ax.set_xticks(mults, [f"{m:g}×" for m in mults])
    ax.set_xlabel(f"sequence length / L (L = {summary['train_len']})")
    ax.set_ylabel(metric)


def plot_train_loss(ax, summary: dict, *, width: int = 20, kinds=None, loss_name: str = "answer loss") -> None:
    """Draw the training loss against the step for every kind of ``summary`` (or ``kinds``), each seed's
    curve smoothed by :func:`moving_average` over ``width`` steps: the mean over seeds and a band from the
    lowest to the highest seed, on a log axis. A window's value is drawn at its last step. ``loss_name``
    names the loss on the y axis ("next-byte loss" for a language model)."""
    for kind in kinds or summary["results"]:
        curves = np.array([moving_average(c, width) for c in summary["results"][kind]["train_loss"]])
        plot_band(ax, np.arange(curves.shape[1]) + width, curves, color=KIND_COLORS.get(kind), label=kind)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{loss_name} (nats, mean of {width} steps)")


def plot_loss_by_position(ax, summary: dict, evaluation: str = "plain", *, style: str = "-",
                          suffix: str = "", mark_train_len: bool = True) -> None:
    """Draw the test loss against the number of tokens seen, n, for every kind of ``summary``
    (:func:`length_experiment` with ``task="text"``): the mean over seeds of each position bin at the bin's
    upper edge, with a band from the lowest to the highest seed; log-scaled x and (``mark_train_len``) a
    dotted vertical line at n = L (labelled)."""
    x = np.asarray(summary["position_edges"])[1:]
    for kind, result in summary["results"].items():
        plot_band(ax, x, _per_seed(result["evaluations"][evaluation]["loss_by_position"]), style, marker="o",
                  markersize=3, color=KIND_COLORS.get(kind), label=kind + suffix)
    if mark_train_len:
        ax.axvline(summary["train_len"], color="gray", linestyle=":", linewidth=1, label="n = L (training length)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens seen, n (each point: the bin that ends there)")
    ax.set_ylabel("next-byte loss (nats)")


def plot_by_depth(ax, summary: dict, mult, *, style: str = "-") -> None:
    """Draw accuracy against the number of keys a query sees, for the evaluation length ``mult·L`` of
    ``summary`` (``task="stream"`` or ``"haystack"``): the mean over seeds at each depth bin's upper
    edge, with the worst-to-best-seed band; a dotted vertical line at n = L."""
    i = list(summary["eval_mult"]).index(mult)
    edges = np.asarray(summary["depth_edges"], dtype=np.float64)
    for kind, result in summary["results"].items():
        row = result["depth"]["accuracy"][i]
        keep = [j for j, c in enumerate(row) if not np.isnan(c["mean"])]
        plot_band(ax, edges[1:][keep], _per_seed([row[j] for j in keep]), style, marker="o",
                  color=KIND_COLORS.get(kind), label=kind)
    ax.axvline(summary["train_len"], color="gray", linestyle=":", linewidth=1, label="n = L")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"keys the query sees, n (bins up to the marked value; sequences of {mult:g}×L)")
    ax.set_ylabel("accuracy")


def plot_accuracy(ax, results, metric: str = "accuracy", train_len: int | None = None, styles=None):
    """Mean over seeds against length (log axis), with the min–max band (:func:`plot_band`);
    a dotted vertical line at ``train_len``, labelled "training length L"."""
    styles = styles or {}
    for r in results:
        plot_band(ax, r.lengths, r._metric(metric), label=r.name, **{"marker": "o", "ms": 4, **styles.get(r.name, {})})
    if train_len is not None:
        ax.axvline(train_len, color="k", lw=0.8, ls=":", label="training length L")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length")
    ax.set_ylabel(metric if metric == "accuracy" else "answer loss (nats)")
    ax.grid(alpha=0.3)
    return ax


def plot_accuracy_and_loss(results, train_len: int | None = None, styles=None, figsize=(10, 3.8)):
    """The chapters' two-panel figure: accuracy (left) and answer loss on a log axis (right) against
    length, mean over seeds with the min–max band. Returns the figure."""
    import matplotlib.pyplot as plt

    results = list(results)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    plot_accuracy(ax_acc, results, "accuracy", train_len=train_len, styles=styles)
    plot_accuracy(ax_loss, results, "loss", train_len=train_len, styles=styles)
    ax_loss.set_yscale("log")
    n_seeds = results[0]._metric("accuracy").shape[0] if results else 0
    ax_acc.set_title(f"accuracy (mean, band = min–max of {n_seeds} seeds)", fontsize=10)
    ax_loss.set_title("answer loss", fontsize=10)
    ax_acc.legend(fontsize=7.5, loc="lower left")
    return fig


def plot_learned_pn(ax, n, curves, fits: dict[str, Fit]) -> None:
    """Draw each seed's learned ``p_n`` against ``n`` (points; ``curves`` is ``(seeds, len(n))``) and the
    fitted ``fits`` (lines, with :math:`R^2` in the legend), on a log-scaled n axis."""
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    for i, curve in enumerate(curves):
        label = f"learned $p_n$ ({len(curves)} seed(s))" if i == 0 else None
        ax.plot(n, curve, ".", color="0.45", alpha=0.7, markersize=4, label=label)
    styles = {"log": dict(color="tab:orange", lw=2.5), "power": dict(color="tab:blue", ls="--"),
              "linear": dict(color="tab:green", ls=":")}
    dense = np.geomspace(np.min(n), np.max(n), 200)
    for curve, fit in fits.items():
        ax.plot(dense, fit(dense), label=f"{fit.formula()}  (R² = {fit.r2:.2f})", **styles.get(curve, {}))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n, keys the query attends to")
    ax.set_ylabel("learned multiplier $p_n$")
