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

import base64
import io
import re
from numbers import Real
from typing import Callable, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

from .experiments import moving_average

__all__ = ["BOOK_STYLE", "KIND_COLORS", "KIND_MARKERS", "OKABE_ITO", "choice_slider", "legend_below", "legend_right",
           "live_sliders", "plot_accuracy", "plot_accuracy_and_loss", "plot_band", "plot_by_depth", "plot_by_length",
           "plot_learned_pn", "plot_loss_by_position", "plot_method_dots", "plot_pn_beyond_l", "plot_summary_dots", "plot_train_loss",
           "plot_train_loss_difference", "sliders_widget", "static_slider", "use_book_style"]

DrawFunction = Callable[..., None]


def static_slider(draw: DrawFunction, name: str, values: Sequence, *, fixed: Mapping | None = None,
                  figsize=(6.6, 3.6), fmt: str | None = "{name} = {value:g}", dpi: int = 150,
                  layout: str | None = "constrained", colors: int | None = 64):
    """Pre-render ``draw(fig, **{name: v}, **fixed)`` for every ``v`` in ``values`` as an HTML slider.

    Each value becomes one frame of a matplotlib ``FuncAnimation``; ``to_jshtml()`` embeds the frames
    as PNG images with a slider and play buttons, so the result works without a kernel (static HTML).
    The current value is written above the plot with ``fmt.format(name=name, value=v)`` (as the
    figure's suptitle, or as a corner label if ``draw`` sets its own suptitle); ``fmt=None`` writes
    nothing. The figure is closed afterwards, so no extra static copy is printed.

    Keep ``values`` short (8–16 frames): every frame is stored in the page. The frames are drawn at
    ``dpi`` (150: sharp where the page shows them at 100 pixels per inch of figure) and then reduced to
    ``colors`` colours (``None``: kept as drawn), which makes them about three times smaller with no
    visible change to lines and labels. ``layout`` is the figure's layout engine; ``None`` (``draw`` places
    its axes itself, e.g. with ``fig.subplots_adjust``) renders about twice as fast as ``"constrained"``.

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
    if colors is not None and (isinstance(colors, bool) or not isinstance(colors, int) or not 2 <= colors <= 256):
        raise ValueError(f"colors must be a number of colours from 2 to 256, or None; got {colors!r}")
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
        with matplotlib.rc_context({"savefig.dpi": dpi, "animation.embed_limit": 50.0,
                                    "animation.frame_format": "png"}):
            html = animation.to_jshtml(fps=2, embed_frames=True, default_mode="once")
    finally:
        plt.close(fig)
    if colors is not None:
        html = _quantize_frames(html, colors)
    # shown at the figure's size at 100 pixels per inch (its frames hold dpi/100 times more pixels), never
    # wider than the page
    html = html.replace('<img id="_anim_img', f'<img style="width:{round(figsize[0] * 100)}px;max-width:100%;'
                        f'height:auto" id="_anim_img', 1)
    return HTML(_offline_buttons(html))


# The buttons' icons as text, instead of the Font Awesome stylesheet that to_jshtml links from a CDN (which
# leaves the buttons blank offline). U+FE0E asks for the text form of a symbol, not an emoji.
_BUTTON_ICONS = {"fa fa-minus": "\u2212", "fa fa-fast-backward": "\u23EE\uFE0E", "fa fa-step-backward": "\u23F4\uFE0E|",
                 "fa fa-play fa-flip-horizontal": "\u25C0\uFE0E", "fa fa-pause": "\u23F8\uFE0E",
                 "fa fa-play": "\u25B6\uFE0E", "fa fa-step-forward": "|\u23F5\uFE0E", "fa fa-fast-forward": "\u23ED\uFE0E",
                 "fa fa-plus": "+"}


def _offline_buttons(html: str) -> str:
    html = re.sub(r'<link rel="stylesheet"\s+href="https://maxcdn\.bootstrapcdn\.com/font-awesome/[^"]*">', "", html)
    for icon, text in _BUTTON_ICONS.items():
        html = html.replace(f'<i class="{icon}"></i>', f'<span aria-hidden="true">{text}</span>')
    return html


_FRAME = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=\\\n]+)")


def _quantize_frames(html: str, colors: int) -> str:
    """Every PNG frame of a ``to_jshtml`` page reduced to ``colors`` colours (no dithering), re-encoded."""
    from PIL import Image

    def smaller(match):
        data = base64.b64decode(re.sub(r"[\\\n]", "", match.group(1)))
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")

    return _FRAME.sub(smaller, html)


def sliders_widget(draw: DrawFunction, *, figsize=(6.6, 3.6), layout: str | None = "constrained", **sliders):
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


def live_sliders(draw: DrawFunction, *, figsize=(6.6, 3.6), layout: str | None = "constrained",
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


# Okabe & Ito's colour-blind-safe palette (and, beyond its eight colours, three of Paul Tol's), one colour and
# one marker per attention kind, the same in every chapter.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}

KIND_COLORS = {"softmax": "#0072B2", "ssmax": "#D55E00", "constant": "#009E73", "ssmax-fixed": "#CC79A7",
               "ssmax-bias": "#E69F00", "chiang-log-n": "#56B4E9", "su-log-base": "#000000",
               "qwen-logn": "#882255", "llama4-temperature": "#999933", "yarn": "#44AA99", "learned-pn": "#555555",
               "constant-matched": "#117733", "scale-invariant": "#AA4499"}
"""One colour per attention kind, shared by the chapters' figures (colour-blind safe: Okabe–Ito, then Tol)."""

KIND_MARKERS = {"softmax": "o", "ssmax": "s", "constant": "^", "ssmax-fixed": "D", "ssmax-bias": "v",
                "chiang-log-n": "P", "su-log-base": "x", "qwen-logn": "X", "llama4-temperature": "<", "yarn": ">",
                "learned-pn": ".", "constant-matched": "h", "scale-invariant": "*"}
"""One marker per attention kind, so that kinds whose points coincide stay apart (and apart in grey print)."""

BOOK_STYLE = {
    "figure.dpi": 100,                 # one inch of figure = 100 CSS pixels on the page
    "figure.figsize": (6.6, 3.6),      # the book's code column is 676 px wide at 1280 px
    "savefig.dpi": 200,                # files written with savefig: 2 pixels per CSS pixel
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.titlesize": 11,
    "axes.prop_cycle": matplotlib.cycler(color=[OKABE_ITO[c] for c in (
        "blue", "vermillion", "bluish green", "reddish purple", "orange", "sky blue", "black")]),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "svg.fonttype": "none",            # SVG text stays text: smaller files, sharp at any size
}
"""The book's figure style (:func:`use_book_style`): labels of at least 9 pt at the size the page shows them."""


def use_book_style(*, retina: bool = True) -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib and, in Jupyter or Colab, show figures as PNG at twice the
    pixels of their size on the page (``retina``), so that they are sharp on every screen."""
    matplotlib.rcParams.update(BOOK_STYLE)
    if not retina:
        return
    try:
        from IPython import get_ipython
        if get_ipython() is None:
            return
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # no IPython: figures are saved with savefig.dpi
        return
    set_matplotlib_formats("retina")


def legend_below(fig_or_ax, *, ncols: int | None = None, handles=None, labels=None, **kwargs):
    """A legend outside the data: under the axes (an ``Axes``) or under all of them (a ``Figure`` in
    constrained layout). Duplicate labels are shown once. Returns the legend."""
    if handles is None:
        axes = fig_or_ax.axes if isinstance(fig_or_ax, Figure) else [fig_or_ax]
        found = {}
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if not label.startswith("_"):
                    found.setdefault(label, handle)
        labels, handles = list(found), list(found.values())
    ncols = ncols or min(len(labels), 3) or 1
    if isinstance(fig_or_ax, Figure):
        return fig_or_ax.legend(handles, labels, loc="outside lower center", ncols=ncols, **kwargs)
    return fig_or_ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=ncols,
                            **kwargs)


def legend_right(ax, **kwargs):
    """A legend outside the data, to the right of ``ax``. Returns the legend."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def _segments(x, max_gap: float | None):
    """Index ranges of ``x`` (increasing) within which neighbours are at most ``max_gap`` times apart."""
    x = np.asarray(x, dtype=np.float64)
    if max_gap is None or len(x) < 2:
        return [slice(0, len(x))]
    breaks = [i + 1 for i in range(len(x) - 1) if x[i + 1] > max_gap * x[i] * (1 + 1e-9)]
    edges = [0, *breaks, len(x)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def plot_band(ax, x, per_seed, style: str | None = None, *, dodge: float = 0.0, max_gap: float | None = None,
              **line_kwargs):
    """Draw the mean over seeds of ``per_seed`` (shape ``(seeds, len(x))``) against ``x`` as a line, with a
    band from the lowest to the highest seed in the line's colour; returns the line. ``style`` is a
    matplotlib format string (``"--"``); ``line_kwargs`` go to ``ax.plot`` (``color``, ``label``, ``marker``, …).

    ``dodge`` shifts the points by that fraction of a doubling (x · 2**dodge) so that kinds whose values
    coincide are drawn side by side; ``max_gap`` draws the line and the band only between neighbouring
    points at most that many times apart (x > 0): nothing is drawn across lengths that were not measured,
    where the points stand alone."""
    per_seed = np.asarray(per_seed, dtype=np.float64)
    if per_seed.ndim != 2 or per_seed.shape[1] != len(x):
        raise ValueError(f"per_seed must have shape (seeds, {len(x)}) for {len(x)} x values, got {per_seed.shape}")
    x = np.asarray(x, dtype=np.float64) * 2.0 ** dodge
    mean, low, high = per_seed.mean(axis=0), per_seed.min(axis=0), per_seed.max(axis=0)
    line = None
    for part in _segments(x, max_gap):
        kwargs = dict(line_kwargs)
        if line is not None:
            kwargs.update(color=line.get_color(), label="_nolegend_")
        if part.stop - part.start == 1 and not kwargs.get("marker"):
            kwargs["marker"] = "o"
        segment, = ax.plot(x[part], mean[part], *([style] if style else []), **kwargs)
        line = line or segment
        if part.stop - part.start > 1:
            ax.fill_between(x[part], low[part], high[part], color=line.get_color(), alpha=0.15, lw=0)
        else:  # a point on its own: its seed range as an error bar
            ax.errorbar(x[part], mean[part], yerr=[mean[part] - low[part], high[part] - mean[part]],
                        fmt="none", ecolor=line.get_color(), elinewidth=1, capsize=2)
    return line


def _per_seed(cells) -> np.ndarray:
    """``(seeds, len(cells))`` from a row of :func:`summarize` cells."""
    return np.array([c["per_seed"] for c in cells]).T


def _dodges(kinds, spread: float) -> dict:
    """Offsets (fractions of a doubling) that spread ``kinds`` evenly over ``spread``, centred on 0."""
    kinds = list(kinds)
    if len(kinds) < 2 or not spread:
        return {k: 0.0 for k in kinds}
    return {k: spread * (i / (len(kinds) - 1) - 0.5) for i, k in enumerate(kinds)}


def plot_by_length(ax, summary: dict, metric: str = "accuracy", evaluation: str = "plain", *, style: str = "-",
                   suffix: str = "", kinds=None, dodge: float = 0.0, max_gap: float | None = 2.0) -> None:
    """Draw ``metric`` against evaluation length for every kind of ``summary`` (from
    :func:`length_experiment`; or ``kinds``): the mean over seeds, a band from the worst to the best seed,
    one colour and marker per kind, and a dotted vertical line at the training length L (labelled).
    ``dodge`` spreads the kinds' points over that fraction of a doubling, so that equal values stay visible
    side by side; lengths more than ``max_gap`` times apart are not joined by a line."""
    mults = summary["eval_mult"]
    kinds = list(kinds or summary["results"])
    offsets = _dodges(kinds, dodge)
    for kind in kinds:
        result = summary["results"][kind]
        plot_band(ax, mults, _per_seed(result["evaluations"][evaluation][metric]), style, dodge=offsets[kind],
                  max_gap=max_gap, marker=KIND_MARKERS.get(kind, "o"), color=KIND_COLORS.get(kind),
                  label=kind + suffix)
    ax.axvline(1, color="gray", linestyle=":", linewidth=1, label="training length L")
    ax.set_xscale("log", base=2)
    ax.set_xticks(mults, [f"{m:g}×L" for m in mults])
    ax.minorticks_off()
    ax.set_xlabel(f"sequence length (L = {summary['train_len']})")
    ax.set_ylabel(metric if metric == "accuracy" else "answer loss (nats)")


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


def plot_train_loss_difference(ax, summary: dict, *, reference: str = "softmax", width: int = 20, kinds=None,
                               loss_name: str = "training loss") -> None:
    """Draw each kind's training loss minus ``reference``'s on the same seed (same data, same initial
    weights), smoothed over ``width`` steps: the mean over seeds and the band from the lowest to the highest
    seed, with a line at 0. Where the curves of :func:`plot_train_loss` lie on top of each other, this shows
    by how much, and in which direction, they differ."""
    ref = np.array([moving_average(c, width) for c in summary["results"][reference]["train_loss"]])
    for kind in kinds or [k for k in summary["results"] if k != reference]:
        curves = np.array([moving_average(c, width) for c in summary["results"][kind]["train_loss"]])
        plot_band(ax, np.arange(curves.shape[1]) + width, curves - ref, color=KIND_COLORS.get(kind),
                  label=f"{kind} − {reference}")
    ax.axhline(0, color=KIND_COLORS.get(reference, "k"), linewidth=1.2, label=f"{reference} (= 0)")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{loss_name} − {reference}'s\n(nats, same seed)")


def plot_loss_by_position(ax, summary: dict, evaluation: str = "plain", *, style: str = "-",
                          suffix: str = "", mark_train_len: bool = True) -> None:
    """Draw the test loss against the number of tokens seen, n, for every kind of ``summary``
    (:func:`length_experiment` with ``task="text"``): the mean over seeds of each position bin at the bin's
    upper edge, with a band from the lowest to the highest seed; log-scaled x and (``mark_train_len``) a
    dotted vertical line at n = L (labelled)."""
    x = np.asarray(summary["position_edges"])[1:]
    for kind, result in summary["results"].items():
        plot_band(ax, x, _per_seed(result["evaluations"][evaluation]["loss_by_position"]), style,
                  marker=KIND_MARKERS.get(kind, "o"), markersize=3.5, color=KIND_COLORS.get(kind),
                  label=kind + suffix)
    if mark_train_len:
        ax.axvline(summary["train_len"], color="gray", linestyle=":", linewidth=1, label="n = L (training length)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bytes seen, n (each point: the bin that ends there)")
    ax.set_ylabel("next-byte loss (nats)")


def plot_by_depth(ax, summary: dict, mult, *, style: str = "-", kinds=None, dodge: float = 0.0) -> None:
    """Draw accuracy against the number of keys a query sees, for the evaluation length ``mult·L`` of
    ``summary`` (``task="stream"`` or ``"haystack"``): the mean over seeds at each depth bin's upper
    edge, with the worst-to-best-seed band, one colour and marker per kind; a dotted vertical line at n = L.
    ``dodge`` spreads the kinds' points as in :func:`plot_by_length`."""
    i = list(summary["eval_mult"]).index(mult)
    edges = np.asarray(summary["depth_edges"], dtype=np.float64)
    kinds = list(kinds or summary["results"])
    offsets = _dodges(kinds, dodge)
    for kind in kinds:
        row = summary["results"][kind]["depth"]["accuracy"][i]
        keep = [j for j, c in enumerate(row) if not np.isnan(c["mean"])]
        plot_band(ax, edges[1:][keep], _per_seed([row[j] for j in keep]), style, dodge=offsets[kind],
                  marker=KIND_MARKERS.get(kind, "o"), color=KIND_COLORS.get(kind), label=kind)
    ax.axvline(summary["train_len"], color="gray", linestyle=":", linewidth=1, label="training length L")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"keys the query sees, n (bins up to the value; {mult:g}×L sequences)")
    ax.set_ylabel("accuracy")


def plot_accuracy(ax, results, metric: str = "accuracy", train_len: int | None = None, styles=None, *,
                  max_gap: float | None = None):
    """Mean over seeds against length (log axis), with the min–max band (:func:`plot_band`);
    a dotted vertical line at ``train_len``, labelled "training length L". With ``max_gap``, lengths more
    than that many times apart are not joined: their points stand alone, with the seed range as an error bar."""
    styles = styles or {}
    for r in results:
        plot_band(ax, r.lengths, r._metric(metric), label=r.name, max_gap=max_gap,
                  **{"marker": "o", "ms": 4, **styles.get(r.name, {})})
    if train_len is not None:
        ax.axvline(train_len, color="k", lw=0.8, ls=":", label="training length L")
    ax.set_xscale("log", base=2)
    lengths = list(results[0].lengths) if results else []
    if lengths:
        ax.set_xticks(lengths, [f"{n:,}" for n in lengths])
        ax.minorticks_off()
    ax.set_xlabel("sequence length")
    ax.set_ylabel(metric if metric == "accuracy" else "answer loss (nats)")
    return ax


def plot_accuracy_and_loss(results, train_len: int | None = None, styles=None, figsize=(6.6, 4.4), *,
                           max_gap: float | None = None):
    """The chapters' two-panel figure: accuracy (left) and answer loss on a log axis (right) against
    length, mean over seeds with the min–max band, the legend under both (``max_gap``: see
    :func:`plot_accuracy`). Returns the figure."""
    results = list(results)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    plot_accuracy(ax_acc, results, "accuracy", train_len=train_len, styles=styles, max_gap=max_gap)
    plot_accuracy(ax_loss, results, "loss", train_len=train_len, styles=styles, max_gap=max_gap)
    ax_loss.set_yscale("log")
    n_seeds = results[0]._metric("accuracy").shape[0] if results else 0
    ax_acc.set_title(f"accuracy (band: min–max of {n_seeds} seeds)")
    ax_loss.set_title("answer loss")
    legend_below(fig, ncols=2)
    return fig


LENGTH_GREYS = ("#9a9a9a", "#000000", "#5a5a5a", "#c8c8c8")
"""Marker colours of the dot plots' lengths: greys, since a colour stands for an attention kind in this book."""


def plot_method_dots(ax, results, lengths, metric: str = "accuracy", *, colors=None, markers=("o", "s", "^", "D"),
                     offset: float = 0.16) -> None:
    """A dot plot of ``results`` (:class:`~ssmax_lite.lab.compare.MethodResult`): one row per method, one
    marker per length of ``lengths`` (its mean over seeds), a bar from the worst to the best seed. Methods
    whose values coincide stay on rows of their own, so equal results read as equal, not as one curve
    hiding another. ``colors`` maps a length to a colour (default: the book's palette in order)."""
    results = list(results)
    palette = LENGTH_GREYS  # not the colours of the attention kinds: a colour means a kind in this book
    for k, length in enumerate(lengths):
        dy = offset * (k - (len(lengths) - 1) / 2)
        color = (colors or {}).get(length, palette[k % len(palette)])
        for row, r in enumerate(results):
            values = r.at(length, metric)
            mean = values.mean()
            ax.plot([values.min(), values.max()], [row + dy] * 2, color=color, lw=1.6, solid_capstyle="butt")
            ax.plot(mean, row + dy, markers[k % len(markers)], color=color, ms=6,
                    label=f"n = {length:,}" if row == 0 else "_nolegend_")
    ax.set_yticks(range(len(results)), [r.name for r in results])
    ax.set_ylim(len(results) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(metric if metric == "accuracy" else "answer loss (nats)")


def plot_learned_pn(ax, n, curves, fits: dict[str, Fit]) -> None:
    """Draw each seed's learned ``p_n`` against ``n`` (points; ``curves`` is ``(seeds, len(n))``) and the
    fitted ``fits`` (lines, with :math:`R^2` in the legend), on a log-scaled n axis."""
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    for i, curve in enumerate(curves):
        label = f"learned $p_n$ ({len(curves)} seed(s))" if i == 0 else None
        ax.plot(n, curve, ".", color="0.45", alpha=0.7, markersize=4, label=label)
    dense = np.geomspace(np.min(n), np.max(n), 200)
    for curve, fit in fits.items():
        ax.plot(dense, fit(dense), label=f"{fit.formula()}  (R² = {fit.r2:.2f})", **FIT_STYLES.get(curve, {}))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n, keys the query attends to")
    ax.set_ylabel("learned multiplier $p_n$")


FIT_STYLES = {"log": dict(color=OKABE_ITO["vermillion"], lw=2.5), "power": dict(color=OKABE_ITO["blue"], ls="--"),
              "linear": dict(color=OKABE_ITO["bluish green"], ls=":", lw=2)}
"""How :func:`plot_learned_pn` and :func:`plot_pn_beyond_l` draw each fitted curve."""


def plot_pn_beyond_l(ax, n, pn, fits: dict, n_max: int) -> None:
    """The learned multiplier beyond the training length: the mean learned ``p_n`` (``n = 1 … L``) as a
    table, which a model uses as ``p_L`` for every longer count (a flat line beyond L), and each fitted curve
    of ``fits`` continued to ``n_max``, on a log-scaled n axis."""
    n = np.asarray(n, dtype=np.float64)
    pn = np.asarray(pn, dtype=np.float64)
    train_len = int(n[-1])
    ax.plot(n, pn, ".", color="0.35", markersize=4, label="learned $p_n$ (mean of the seeds), n ≤ L")
    beyond = np.geomspace(train_len, n_max, 120)
    ax.plot(beyond, np.full_like(beyond, pn[-1]), color="0.35", lw=2.5, label="the table beyond L: $p_L$")
    for curve, fit in fits.items():
        style = {**FIT_STYLES.get(curve, {}), "lw": 1.8}
        ax.plot(beyond, fit(beyond), label=f"continued by the {curve} fit", **style)
    ax.axvline(train_len, color="gray", linestyle=":", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")  # a fit that grows fast (a straight line in n) stays on the page with the others
    ticks = [t for t in (1, 1.5, 2, 3, 5, 10, 20, 50, 100) if t <= ax.get_ylim()[1]]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.text(train_len * 1.1, ax.get_ylim()[0], " L", va="bottom", color="gray")
    ax.set_xlabel("n, keys the query attends to")
    ax.set_ylabel("multiplier $p_n$ (log scale)")


def plot_summary_dots(ax, summary: dict, mults, metric: str = "accuracy", evaluation: str = "plain", *,
                      kinds=None, markers=("o", "s", "^", "D")) -> None:
    """A dot plot of a :func:`length_experiment` summary: one row per kind (or ``kinds``), one marker per
    length m·L of ``mults`` (its mean over seeds), a bar from the worst to the best seed. Kinds whose values
    coincide keep rows of their own, so equal results read as equal instead of as one line hiding others."""
    kinds = list(kinds or summary["results"])
    palette = LENGTH_GREYS  # not the colours of the attention kinds: a colour means a kind in this book
    for k, mult in enumerate(mults):
        i = list(summary["eval_mult"]).index(mult)
        dy = 0.16 * (k - (len(mults) - 1) / 2)
        for row, kind in enumerate(kinds):
            cell = summary["results"][kind]["evaluations"][evaluation][metric][i]
            ax.plot([cell["min"], cell["max"]], [row + dy] * 2, color=palette[k % 4], lw=1.6, solid_capstyle="butt")
            ax.plot(cell["mean"], row + dy, markers[k % len(markers)], color=palette[k % 4], ms=6,
                    label=f"{mult:g}×L" if row == 0 else "_nolegend_")
    ax.set_yticks(range(len(kinds)), kinds)
    ax.set_ylim(len(kinds) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"{metric} (marker: mean; bar: worst to best seed)")
