"""One drawing function, two front ends: a live ipywidgets slider and a pre-rendered HTML slider.

Every interactive figure of the book is written once, as a function

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
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

__all__ = ["choice_slider", "live_sliders", "sliders_widget", "static_slider"]

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
