"""The command line reproduces the chapter's tables: run it on a tiny config and check its JSON."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ssmax_lite.lab.evaluate import accuracy_by_length, needle_attention, rope_theta
from ssmax_lite.lab.experiments import format_length_table, main, moving_average, result_at, summarize, train_loss_at
from ssmax_lite.lab.tasks import LookupTask
from ssmax_lite.lab.train import preset, train

ROOT = Path(__file__).resolve().parents[1]


def test_cli_writes_a_sane_json(tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(["length", "--attention", "softmax", "ssmax", "--pe", "rope", "--train-len", "24",
                 "--steps", "5", "--eval-mult", "1", "2", "--seeds", "0", "1", "--n-eval", "4",
                 "--rope-theta-scale", "50", "--no-progress", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "softmax" in printed and "ssmax" in printed and "2×L" in printed

    summary = json.loads(out.read_text())
    assert summary["pe"] == "rope" and summary["train_len"] == 24 and summary["lengths"] == [24, 48]
    assert summary["seeds"] == [0, 1] and summary["rope_theta_scale"] == 50
    assert set(summary["results"]) == {"softmax", "ssmax"}
    for kind, result in summary["results"].items():
        assert len(result["train_loss"]) == 2 and all(len(c) == 5 for c in result["train_loss"])
        assert all(t > 0 for t in result["wall_time_s"])
        assert set(result["evaluations"]) == {"plain", "theta_scaled"}
        for evaluation in result["evaluations"].values():
            for cell in evaluation["accuracy"]:
                assert len(cell["per_seed"]) == 2
                assert 0 <= cell["min"] <= cell["mean"] <= cell["max"] <= 1
                assert cell["std"] >= 0
            for cell in evaluation["loss"]:
                assert all(np.isfinite(v) and v > 0 for v in cell["per_seed"])


def test_cli_runs_as_a_module(tmp_path):
    out = tmp_path / "m.json"
    done = subprocess.run(
        [sys.executable, "-m", "ssmax_lite.lab.experiments", "length", "--attention", "constant",
         "--train-len", "24", "--steps", "3", "--eval-mult", "1", "--seeds", "3", "--n-eval", "2",
         "--no-progress", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["results"]["constant"]["evaluations"]["plain"]["accuracy"][0]["per_seed"]


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["length", "--attention", "sparsemax"])
    assert main(["length", "--pe", "nope", "--rope-theta-scale", "50", "--steps", "1"]) == 2
    assert "rope_theta_scale" in capsys.readouterr().err


def test_summarize_and_table():
    cell = summarize([0.5, 1.0, 0.75])
    assert cell["mean"] == pytest.approx(0.75) and cell["min"] == 0.5 and cell["max"] == 1.0
    assert cell["std"] == pytest.approx(np.std([0.5, 1.0, 0.75]))
    summary = {"eval_mult": [1, 4], "pe": "nope", "train_len": 8, "seeds": [0],
               "results": {"ssmax": {"evaluations": {"plain": {"accuracy": [summarize([1.0]),
                                                                            summarize([0.25])]}}}}}
    table = format_length_table(summary)
    assert "4×L" in table and "0.250 ± 0.000" in table


def _trained(attention="ssmax", pe="nope"):
    config = preset("quick", attention=attention, pe=pe, d_model=32, n_heads=2, n_layers=1,
                    train_len=16, steps=4, task=LookupTask(n_keys=4, n_values=4, n_needles=2))
    return config, train(config, device="cpu", progress=False)


def test_accuracy_by_length_counts_answers_and_keeps_needles_fixed():
    config, result = _trained()
    ev = accuracy_by_length(result.model, config.task, 16, [1, 2.5], n_sequences=6, batch_size=4)
    assert ev.lengths == (16, 40) and ev.n_answers == 12
    assert np.all((0 <= ev.accuracy) & (ev.accuracy <= 1)) and np.all(ev.loss > 0)
    again = accuracy_by_length(result.model, config.task, 16, [1, 2.5], n_sequences=6, batch_size=3)
    np.testing.assert_allclose(ev.loss, again.loss, rtol=1e-5)  # batching does not change the numbers


def test_needle_attention_is_a_weight_per_layer_and_head():
    config, result = _trained()
    weights = needle_attention(result.model, config.task, [16, 48], n_sequences=3, batch_size=2)
    assert weights.shape == (2, 1, 2)
    assert np.all((weights > 0) & (weights < 1))
    best = needle_attention(result.model, config.task, [16, 48], n_sequences=3, batch_size=3, heads="max")
    assert best.shape == (2, 1)
    # the mean of per-query maxima lies between the best head's mean and 1
    assert np.all(best >= weights.max(axis=-1) - 1e-9) and np.all(best <= 1)
    with pytest.raises(ValueError, match="heads"):
        needle_attention(result.model, config.task, [16], heads="sum")


def test_rope_theta_is_restored_after_evaluation():
    config, result = _trained(pe="rope")
    with rope_theta(result.model, 123_456.0):
        assert result.model.rope.theta == 123_456.0
    assert result.model.rope.theta == config.model.rope_theta
    with pytest.raises(ValueError, match="eval_mult"):
        accuracy_by_length(result.model, config.task, 16, [])
    with pytest.raises(ValueError, match="vocab_size"):
        accuracy_by_length(result.model, LookupTask(n_keys=5), 16)
    assert torch.is_tensor(result.model.blocks[0].attn.s)


# ---------------------------------------------------------------------------------- queries at every depth

from ssmax_lite.lab.evaluate import accuracy_by_depth, depth_edges  # noqa: E402
from ssmax_lite.lab.tasks import RecallStreamTask  # noqa: E402


def _trained_stream():
    task = RecallStreamTask(n_keys=6, n_values=4, n_needles=3)
    config = preset("quick", attention="ssmax", d_model=32, n_heads=2, n_layers=1, train_len=16, steps=4,
                    task=task)
    return config, train(config, device="cpu", progress=False)


def test_depth_edges_double_up_to_the_longest_length():
    assert depth_edges(64, [1, 4, 32]) == (0, 32, 64, 128, 256, 512, 1024, 2048)


def test_accuracy_by_depth_bins_every_answer_and_agrees_with_accuracy_by_length():
    config, result = _trained_stream()
    by_depth = accuracy_by_depth(result.model, config.task, 16, [1, 4], n_sequences=6, batch_size=4)
    by_length = accuracy_by_length(result.model, config.task, 16, [1, 4], n_sequences=6, batch_size=4)
    assert by_depth.edges == (0, 8, 16, 32, 64) and by_depth.lengths == (16, 64)
    assert by_depth.count.sum(axis=1).tolist() == [18, 18]                  # 6 sequences × 3 queries
    assert by_depth.count[0, 2:].sum() == 0                                  # 1×L: no query sees > L keys
    np.testing.assert_allclose(by_depth.overall, by_length.accuracy)
    np.testing.assert_allclose(by_depth.loss, by_length.loss, rtol=1e-5)  # the same answers, summed in another order
    pooled = np.nansum(by_depth.accuracy * by_depth.count, axis=1) / by_depth.count.sum(axis=1)
    np.testing.assert_allclose(pooled, by_depth.overall)
    np.testing.assert_allclose(by_depth.at(0, 64), by_depth.overall)
    with pytest.raises(ValueError, match="n_low"):
        by_depth.at(0, 50)
    with pytest.raises(ValueError, match="edges"):
        accuracy_by_depth(result.model, config.task, 16, [1], edges=[0])


def _run_depth_task(task, tmp_path, capsys):
    """The CLI on a queries-at-every-depth task, 3 steps at L = 24, evaluated at 1× and 2×: its JSON summary."""
    out = tmp_path / f"{task}.json"
    code = main(["length", "--task", task, "--attention", "softmax", "--train-len", "24", "--steps", "3",
                 "--eval-mult", "1", "2", "--seeds", "0", "--n-eval", "4", "--no-progress", "--json", str(out)])
    assert code == 0
    assert "accuracy by keys seen" in capsys.readouterr().out
    return json.loads(out.read_text())


def test_cli_task_stream_reports_accuracy_by_depth(tmp_path, capsys):
    summary = _run_depth_task("stream", tmp_path, capsys)
    assert summary["task"] == "stream" and summary["config"]["task"]["n_needles"] == 8
    assert summary["depth_edges"] == [0, 12, 24, 48]
    depth = summary["results"]["softmax"]["depth"]
    assert [sum(row) for row in depth["count"]] == [32, 32]                 # 4 sequences × 8 queries
    assert len(depth["accuracy"]) == 2 and len(depth["accuracy"][0]) == 3


def test_cli_task_default_is_haystack_lookup_is_an_option_and_bad_task_is_refused(tmp_path):
    out = tmp_path / "default.json"
    assert main(["length", "--attention", "softmax", "--train-len", "24", "--steps", "2", "--eval-mult", "1",
                 "--seeds", "0", "--n-eval", "2", "--no-progress", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["task"] == "haystack"
    out = tmp_path / "lookup.json"
    assert main(["length", "--task", "lookup", "--attention", "softmax", "--train-len", "16", "--steps", "2",
                 "--eval-mult", "1", "--seeds", "0", "--n-eval", "2", "--no-progress", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["task"] == "lookup" and "depth" not in summary["results"]["softmax"]
    assert summary["config"]["task"]["tokens_per_needle"] == 1
    with pytest.raises(SystemExit):
        main(["length", "--task", "mqar"])


def test_cli_task_haystack_uses_its_run_settings_and_explicit_steps_win(tmp_path, capsys):
    summary = _run_depth_task("haystack", tmp_path, capsys)
    config = summary["config"]
    assert summary["task"] == "haystack"
    assert config["task"]["filler_keys"] == 1 and config["task"]["filler_values"] == 1
    assert config["weight_decay"] == 1.5       # the run's setting, from HAYSTACK_RUNS
    assert config["steps"] == 3                # the command line's --steps beats the run's 1,200
    assert len(summary["results"]["softmax"]["train_loss"][0]) == 3


def test_haystack_is_refused_for_a_preset_without_a_run():
    from ssmax_lite.lab.experiments import HAYSTACK_RUNS, length_experiment

    missing = [name for name in ("quick", "full") if name not in HAYSTACK_RUNS]
    if not missing:
        pytest.skip("every preset has a haystack run")
    with pytest.raises(ValueError, match="haystack"):
        length_experiment(["softmax"], preset_name=missing[0], task="haystack", seeds=[0], progress=False)


def test_moving_average_and_train_loss_plot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssmax_lite.lab.plotting import plot_train_loss

    assert np.allclose(moving_average([1, 2, 3, 4], 2), [1.5, 2.5, 3.5])
    with pytest.raises(ValueError, match=r"width must be an int in \[1, 4\]"):
        moving_average([1, 2, 3, 4], 5)
    summary = {"results": {"softmax": {"train_loss": [[4.0, 2.0, 1.0, 0.5], [2.0, 1.0, 0.5, 0.25]]}}}
    fig, ax = plt.subplots()
    plot_train_loss(ax, summary, width=2)
    line = ax.get_lines()[0]
    assert np.allclose(line.get_xdata(), [2, 3, 4])                  # a window is drawn at its last step
    assert np.allclose(line.get_ydata(), [2.25, 1.125, 0.5625])      # the mean over seeds of the smoothed curves
    assert ax.get_yscale() == "log"
    plt.close(fig)


def _two_seed_summary():
    return {"eval_mult": [1, 4], "pe": "nope", "train_len": 8, "seeds": [0, 1],
            "results": {"ssmax": {"evaluations": {"plain": {"accuracy": [summarize([1.0, 0.5]), summarize([0.25, 0.75])]}},
                                  "train_loss": [[4.0, 3.0, 2.0, 1.0], [2.0, 2.0, 0.0, 0.0]]}}}


def test_result_at_reads_one_cell_and_names_bad_arguments():
    summary = _two_seed_summary()
    assert result_at(summary, "ssmax", 4) == pytest.approx(0.5)
    assert result_at(summary, "ssmax", 1, "min") == 0.5
    assert result_at(summary, "ssmax", 4, "per_seed") == [0.25, 0.75]
    with pytest.raises(ValueError, match="kind must be one of"):
        result_at(summary, "softmax", 1)
    with pytest.raises(ValueError, match="mult must be one of"):
        result_at(summary, "ssmax", 2)
    with pytest.raises(ValueError, match="evaluation and metric"):
        result_at(summary, "ssmax", 1, metric="loss")


def test_train_loss_at_is_the_mean_of_the_window_that_ends_at_step():
    summary = _two_seed_summary()
    np.testing.assert_allclose(train_loss_at(summary, "ssmax", 4, width=2), [1.5, 0.0])
    np.testing.assert_allclose(train_loss_at(summary, "ssmax", 2, width=2), [3.5, 2.0])
    # the same value plot_train_loss draws at that step
    np.testing.assert_allclose(train_loss_at(summary, "ssmax", 3, width=2),
                               [moving_average(c, 2)[3 - 2] for c in summary["results"]["ssmax"]["train_loss"]])
    for step in (1, 5, 2.0, True):
        with pytest.raises(ValueError, match="step must be an int"):
            train_loss_at(summary, "ssmax", step, width=2)


def test_plot_band_draws_the_mean_and_the_seed_range():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssmax_lite.lab.plotting import plot_band
    fig, ax = plt.subplots()
    line = plot_band(ax, [1, 2, 3], [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]], "--", color="red", label="x")
    np.testing.assert_allclose(line.get_ydata(), [1.0, 2.0, 3.0])
    assert line.get_linestyle() == "--" and line.get_label() == "x"
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 0.0 and band[:, 1].max() == 4.0
    with pytest.raises(ValueError, match=r"per_seed must have shape \(seeds, 3\)"):
        plot_band(ax, [1, 2, 3], [0.0, 1.0, 2.0])
    plt.close(fig)


def test_result_at_names_a_bad_stat():
    with pytest.raises(ValueError, match="stat must be one of"):
        result_at(_two_seed_summary(), "ssmax", 1, "median")
