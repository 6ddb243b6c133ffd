"""Bookkeeping for comparing methods over seeds (chapters 4 and 5)."""

import numpy as np
import pytest
import torch

from ssmax_lite.lab.compare import MethodResult, evaluate_method, format_table
from ssmax_lite.lab.model import TinyTransformer
from ssmax_lite.lab.train import preset


def _result(name, accuracy, loss=None):
    accuracy = np.asarray(accuracy, dtype=float)
    return MethodResult(name, (64, 256), accuracy, np.zeros_like(accuracy) if loss is None else np.asarray(loss))


def test_table_shows_mean_and_range_over_seeds():
    table = format_table([_result("softmax", [[1.0, 0.5], [0.5, 0.25]]), _result("ssmax", [[1.0, 1.0], [1.0, 1.0]])])
    lines = table.splitlines()
    assert lines[0].split()[-2:] == ["64", "256"]
    assert lines[1].startswith("softmax") and "0.750 [0.500–1.000]" in lines[1] and "0.375 [0.250–0.500]" in lines[1]
    assert "1.000 [1.000–1.000]" in lines[2]


def test_mean_and_at():
    r = _result("x", [[1.0, 0.5], [0.5, 0.25]], loss=[[0.1, 0.2], [0.3, 0.4]])
    np.testing.assert_allclose(r.mean(), [0.75, 0.375])
    np.testing.assert_allclose(r.at(256, "loss"), [0.2, 0.4])
    with pytest.raises(ValueError, match="length must be one of"):
        r.at(128)
    with pytest.raises(ValueError, match="metric must be"):
        r.mean("perplexity")


def test_table_rejects_mismatched_lengths_and_empty_input():
    other = MethodResult("y", (64,), np.ones((1, 1)), np.ones((1, 1)))
    with pytest.raises(ValueError, match="same lengths"):
        format_table([_result("x", [[1.0, 1.0]]), other])
    with pytest.raises(ValueError, match="at least one"):
        format_table([])


def test_evaluate_method_stacks_one_row_per_model():
    config = preset("quick", d_model=16, n_heads=2, n_layers=1, train_len=16)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(TinyTransformer(config.model).eval())
    result = evaluate_method("softmax", models, config.task, 16, (1, 2), n_sequences=4, batch_size=4)
    assert result.lengths == (16, 32)
    assert result.accuracy.shape == result.loss.shape == (2, 2)
    assert np.all((0 <= result.accuracy) & (result.accuracy <= 1)) and np.all(result.loss > 0)
    with pytest.raises(ValueError, match="at least one model"):
        evaluate_method("softmax", [], config.task, 16, (1,))


def test_accuracy_and_loss_figure_draws_mean_and_band_per_method():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssmax_lite.lab.plotting import plot_accuracy_and_loss

    results = [_result("softmax", [[1.0, 0.5], [0.5, 0.25]], loss=[[0.1, 0.2], [0.3, 0.4]]),
               _result("ssmax", [[1.0, 1.0], [1.0, 1.0]], loss=[[0.1, 0.1], [0.1, 0.1]])]
    fig = plot_accuracy_and_loss(results, train_len=64)
    ax_acc, ax_loss = fig.axes
    assert [line.get_label() for line in ax_acc.get_lines()[:2]] == ["softmax", "ssmax"]
    np.testing.assert_allclose(ax_acc.get_lines()[0].get_ydata(), [0.75, 0.375])
    np.testing.assert_allclose(ax_loss.get_lines()[0].get_ydata(), [0.2, 0.3])
    assert ax_loss.get_yscale() == "log" and "2 seeds" in ax_acc.get_title()
    plt.close(fig)
