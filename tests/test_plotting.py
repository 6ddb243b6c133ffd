"""The two slider front ends of ssmax_lite.lab.plotting: both call the same draw(fig, **params)."""

import base64
import re

import matplotlib

matplotlib.use("agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ssmax_lite.lab.plotting import choice_slider, live_sliders, sliders_widget, static_slider  # noqa: E402


def draw_power(fig, k, scale=1.0):
    """A small draw function: the curve scale·x**k."""
    ax = fig.add_subplot()
    x = np.linspace(0.0, 1.0, 50)
    ax.plot(x, scale * x**k)
    ax.set_ylim(0, 2)


def embedded_frames(html: str) -> list[bytes]:
    """The PNG frames that to_jshtml embedded in the page, decoded."""
    # to_jshtml splits the base64 text into lines ending with a backslash
    found = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=\\\n]+)", html)
    return [base64.b64decode(data.replace("\\", "").replace("\n", "")) for data in found]


class Recorder:
    """A draw function that remembers the parameters it was called with."""

    def __init__(self):
        self.calls = []

    def __call__(self, fig, **params):
        self.calls.append(params)
        fig.add_subplot().plot([0, 1], [0, params.get("k", 1)])


def test_static_slider_embeds_one_distinct_frame_per_value():
    values = [1, 2, 3, 4]
    html = static_slider(draw_power, "k", values, fixed={"scale": 1.5}, figsize=(3, 2), dpi=40,
                         layout=None).data
    frames = embedded_frames(html)
    assert len(frames) == len(values)
    assert all(frame.startswith(b"\x89PNG") for frame in frames)
    assert len(set(frames)) == len(values), "each slider position must show a different picture"
    assert 'type="range"' in html


def test_static_slider_passes_value_and_fixed_parameters_to_draw():
    recorder = Recorder()
    static_slider(recorder, "k", [0.5, 2.0], fixed={"scale": 3}, figsize=(2, 2), dpi=30)
    seen = {(call["k"], call["scale"]) for call in recorder.calls}
    assert seen == {(0.5, 3), (2.0, 3)}


def test_static_slider_closes_its_figure():
    before = set(plt.get_fignums())
    static_slider(draw_power, "k", [1, 2], figsize=(2, 2), dpi=30)
    assert set(plt.get_fignums()) == before


def test_static_slider_labels_frames_unless_fmt_is_none():
    def draw_ignoring_k(fig, k):
        draw_power(fig, 2)

    labelled = embedded_frames(static_slider(draw_ignoring_k, "k", [1, 2], figsize=(2, 2), dpi=30).data)
    unlabelled = embedded_frames(static_slider(draw_ignoring_k, "k", [1, 2], figsize=(2, 2), dpi=30,
                                               fmt=None).data)
    assert labelled[0] != labelled[1], "the label 'k = 1' / 'k = 2' must tell the frames apart"
    assert unlabelled[0] == unlabelled[1]


@pytest.mark.parametrize("kwargs, word", [
    (dict(draw=None, name="k", values=[1]), "draw"),
    (dict(draw=draw_power, name="not a name", values=[1]), "name"),
    (dict(draw=draw_power, name="k", values=[]), "values"),
    (dict(draw=draw_power, name="k", values=[1], fixed={"k": 2}), "fixed"),
    (dict(draw=draw_power, name="k", values=[1], figsize=(0, 2)), "figsize"),
    (dict(draw=draw_power, name="k", values=[1], dpi=-5), "dpi"),
    (dict(draw=draw_power, name="k", values=[1], fmt=3), "fmt"),
    (dict(draw=draw_power, name="k", values=[1], layout="grid"), "layout"),
])
def test_static_slider_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        static_slider(**kwargs)


def test_sliders_widget_draws_once_then_on_every_change():
    recorder = Recorder()
    k = widgets.FloatSlider(value=1.0, min=0.0, max=3.0)
    widget = sliders_widget(recorder, k=k, scale=(1, 4, 1))
    assert isinstance(widget, widgets.interactive)
    assert recorder.calls == [{"k": 1.0, "scale": 2}]  # interact's default: the middle of (1, 4)
    k.value = 2.5
    assert recorder.calls[-1] == {"k": 2.5, "scale": 2}
    plt.close("all")


def test_sliders_from_abbreviations_update_on_release():
    widget = sliders_widget(Recorder(), k=(0.0, 2.0, 0.5))
    slider = widget.children[0]
    assert isinstance(slider, widgets.FloatSlider)
    assert slider.continuous_update is False
    plt.close("all")


def test_live_sliders_displays_the_widget_and_returns_none(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    assert live_sliders(Recorder(), k=choice_slider([1, 10, 100], value=10)) is None
    assert len(shown) == 1 and isinstance(shown[0], widgets.interactive)
    plt.close("all")


def test_choice_slider_holds_the_given_values():
    slider = choice_slider([10, 100, 1000], value=100, description="n")
    assert isinstance(slider, widgets.SelectionSlider)
    assert list(slider.options) == [10, 100, 1000] and slider.value == 100
    with pytest.raises(ValueError, match="value"):
        choice_slider([1, 2], value=3)
    with pytest.raises(ValueError, match="values"):
        choice_slider([])


def test_sliders_widget_rejects_bad_arguments():
    with pytest.raises(ValueError, match="slider"):
        sliders_widget(Recorder())
    with pytest.raises(ValueError, match="draw"):
        sliders_widget("not callable", k=(0, 1))
    with pytest.raises(ValueError, match="'k'"):
        sliders_widget(Recorder(), k=object())
    with pytest.raises(ValueError, match="layout"):
        sliders_widget(Recorder(), layout="grid", k=(0, 1))


def test_model_diagram_marks_the_line_ssmax_changes():
    import matplotlib.pyplot as plt

    from ssmax_lite.lab.diagram import draw_model
    from ssmax_lite.lab.model import ModelConfig

    fig = draw_model(ModelConfig(vocab_size=256, n_layers=3, attention="ssmax", pe="rope"))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(r"s_h \log n_i" in t for t in texts)  # the highlighted SSMax line
    assert any("RoPE" in t for t in texts) and "× 3" in texts and any("vocabulary 256" in t for t in texts)
    plt.close(fig)
    with pytest.raises(ValueError, match="config must be a ModelConfig"):
        draw_model({"d_model": 64})


# ------------------------------------------------------------------------- what the reader sees


def test_book_style_labels_and_palette():
    import matplotlib as mpl

    from ssmax_lite.lab.plotting import BOOK_STYLE, KIND_COLORS, KIND_MARKERS, use_book_style

    with mpl.rc_context():
        use_book_style(retina=False)
        sizes = [mpl.rcParams[k] for k in ("font.size", "axes.labelsize", "xtick.labelsize", "ytick.labelsize",
                                           "legend.fontsize", "axes.titlesize")]
        assert min(mpl.font_manager.FontProperties(size=s).get_size_in_points() for s in sizes) >= 9
        # a figure of the default size is shown at most as wide as the book's code column (676 px at 1280 px)
        assert mpl.rcParams["figure.figsize"][0] * mpl.rcParams["figure.dpi"] <= 676
        assert mpl.rcParams["savefig.dpi"] >= 150
    assert set(KIND_MARKERS) == set(KIND_COLORS)
    assert len(set(KIND_COLORS.values())) == len(KIND_COLORS), "two kinds share a colour"
    assert len(set(KIND_MARKERS.values())) == len(KIND_MARKERS), "two kinds share a marker"
    assert BOOK_STYLE["legend.frameon"] is False


def test_static_slider_frames_are_sharp_and_small():
    from PIL import Image
    import io

    html = static_slider(draw_power, "k", [1, 2, 3], figsize=(3, 2), layout=None).data
    frames = embedded_frames(html)
    widths = {Image.open(io.BytesIO(f)).size[0] for f in frames}
    assert widths == {450}, "150 dpi: 1.5 pixels per pixel of the 100 dpi page size"
    assert 'style="width:300px;max-width:100%' in html  # shown at the figure's size, never wider than the page
    assert all(Image.open(io.BytesIO(f)).mode == "P" for f in frames), "frames reduced to a palette"
    plain = embedded_frames(static_slider(draw_power, "k", [1, 2, 3], figsize=(3, 2), layout=None, colors=None).data)
    assert sum(map(len, frames)) < sum(map(len, plain))
    with pytest.raises(ValueError, match="colors"):
        static_slider(draw_power, "k", [1], colors=1)


def test_plot_band_does_not_join_points_far_apart():
    from ssmax_lite.lab.plotting import plot_band

    fig, ax = plt.subplots()
    per_seed = np.array([[1.0, 1.0, 0.5, 0.4], [1.0, 0.9, 0.6, 0.2]])
    plot_band(ax, [32, 64, 1024, 2048], per_seed, max_gap=2.0, label="m")
    segments = [line.get_xdata() for line in ax.lines]
    assert [list(x) for x in segments] == [[32, 64], [1024, 2048]]  # no line across 64 -> 1024
    assert [line.get_label() for line in ax.lines].count("m") == 1
    fig2, ax2 = plt.subplots()
    plot_band(ax2, [1, 2, 4], per_seed[:, :3], dodge=0.5)
    assert np.allclose(ax2.lines[0].get_xdata(), np.array([1, 2, 4]) * 2 ** 0.5)
    plt.close("all")


def test_dot_plots_give_every_method_a_row():
    from ssmax_lite.lab.compare import MethodResult
    from ssmax_lite.lab.plotting import plot_method_dots

    results = [MethodResult(name, (1024, 2048), np.ones((3, 2)), np.zeros((3, 2))) for name in ("a", "b", "c")]
    fig, ax = plt.subplots()
    plot_method_dots(ax, results, (1024, 2048))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    markers = [line for line in ax.lines if line.get_marker() not in ("None", None, "")]
    assert len(markers) == 6 and len({tuple(line.get_ydata()) for line in markers}) == 6  # six separate points
    plt.close(fig)


def test_diagrams_of_the_task_and_the_schedules():
    from ssmax_lite.lab.diagram import draw_schedules, draw_sequence

    fig = draw_sequence([5, 9, 5, 5, 17, 5, 16], needle_positions=[1, 2], query_positions=[6, 4])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("?") == 2 and "n = 7" in texts and "n = 5" in texts
    with pytest.raises(ValueError, match="pair up"):
        draw_sequence([1, 2, 3], [0], [1, 2])
    fig2 = draw_schedules({"(a)": [(0, 10, "softmax", "")], "(f)": [(0, 6, "softmax", ""), (6, 10, "ssmax", "lr / 3")]})
    assert [t.get_text() for t in fig2.axes[0].get_yticklabels()] == ["(a)", "(f)"]
    assert "lr / 3" in [t.get_text() for t in fig2.axes[0].texts]
    plt.close("all")


def test_static_slider_works_offline():
    html = static_slider(draw_power, "k", [1, 2], figsize=(2, 2), layout=None).data
    assert "https://" not in html and "http://" not in html, "the slider fetches something from another site"
    assert 'class="fa' not in html and html.count('aria-hidden="true"') == 9  # nine buttons, each with a text icon


def test_every_attention_kind_has_its_colour_and_marker():
    from ssmax_lite.lab.layers import ATTENTION_KINDS
    from ssmax_lite.lab.plotting import KIND_COLORS, KIND_MARKERS

    assert set(ATTENTION_KINDS) <= set(KIND_COLORS) and set(ATTENTION_KINDS) <= set(KIND_MARKERS)
