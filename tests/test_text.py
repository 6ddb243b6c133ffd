"""Chapter 3d's pieces: the shipped text corpus, the next-byte task, the loss by position and its bins."""

import gzip
import hashlib
import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ssmax_lite.lab.corpus import CORPUS_SPLITS, DATA_DIR, load_corpus
from ssmax_lite.lab.evaluate import loss_by_bins, loss_by_position, position_edges
from ssmax_lite.lab.experiments import TEXT_RUNS, format_position_table, length_experiment, main
from ssmax_lite.lab.model import ModelConfig, TinyTransformer
from ssmax_lite.lab.tasks import ByteTextTask, RecallStreamTask
from ssmax_lite.lab.train import preset, train




def _model(attention="ssmax", pe="nope", train_len=16):
    torch.manual_seed(0)
    return TinyTransformer(ModelConfig(vocab_size=256, d_model=32, n_layers=2, n_heads=2, attention=attention,
                                       pe=pe, train_len=train_len)).eval()


def test_corpus_splits_are_the_shipped_text_with_its_licence():
    train_text, test_text = load_corpus("train"), load_corpus("test")
    assert train_text.dtype == np.uint8 and not train_text.flags.writeable
    assert len(train_text) > 4_000_000 and len(test_text) > 300_000
    assert bytes(train_text[:40]).startswith(b"# ==== Lib/")
    for split in CORPUS_SPLITS:
        text = gzip.decompress((DATA_DIR / f"python_stdlib_{split}.txt.gz").read_bytes())
        assert hashlib.sha256(text).hexdigest() == CORPUS_SPLITS[split]
    assert "PYTHON SOFTWARE FOUNDATION LICENSE" in (DATA_DIR / "LICENSE-PSF.txt").read_text()
    files = (DATA_DIR / "python_stdlib_files.txt").read_text().split("\n")
    test_files = {line.split("\t")[1] for line in files if line.startswith("test\t")}
    train_files = {line.split("\t")[1] for line in files if line.startswith("train\t")}
    assert len(test_files) == 17 and len(train_files) == 154 and not test_files & train_files
    # the test split holds exactly its 17 files
    assert bytes(test_text).count(b"# ==== Lib/") == 17


def test_byte_task_targets_are_the_next_bytes():
    task = ByteTextTask()
    assert task.vocab_size == 256 and task.min_length() == 1
    batch = task.sample(4, 32, np.random.default_rng(0))
    assert batch.tokens.shape == batch.targets.shape == (4, 32)
    assert torch.equal(batch.tokens[:, 1:], batch.targets[:, :-1])
    assert batch.query_positions.shape == (4, 32) and batch.needle_positions.shape == (4, 0)
    # each window is a piece of the training text
    text = bytes(load_corpus("train"))
    assert bytes(batch.tokens[0].tolist()) + bytes([int(batch.targets[0, -1])]) in text
    again = task.sample(4, 32, np.random.default_rng(0))
    assert torch.equal(batch.tokens, again.tokens)


def test_byte_task_bad_input():
    with pytest.raises(ValueError, match="split must be one of"):
        ByteTextTask("validation")
    with pytest.raises(ValueError, match="length must be"):
        ByteTextTask("test").sample(1, 10**7, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch_size"):
        ByteTextTask().sample(0, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="split must be one of"):
        load_corpus("dev")


def test_loss_by_position_is_the_cross_entropy_at_every_position():
    model, task = _model(), ByteTextTask("test")
    loss = loss_by_position(model, task, 24, n_sequences=6, batch_size=4)
    batch = task.sample(6, 24, np.random.default_rng([1234, 24]))
    with torch.no_grad():
        expected = F.cross_entropy(model(batch.tokens).transpose(1, 2), batch.targets, reduction="none").mean(0)
    np.testing.assert_allclose(loss, expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="ByteTextTask"):
        loss_by_position(model, RecallStreamTask(), 24)


@pytest.mark.parametrize("attention,pe", [("softmax", "nope"), ("ssmax", "rope"), ("ssmax-bias", "nope")])
def test_a_prediction_depends_only_on_the_bytes_before_it(attention, pe):
    """What loss_by_bins relies on: position t's logits are the same in a window cut after t (SSMax's n is
    the number of keys a query sees, t + 1, either way)."""
    model = _model(attention, pe)
    tokens = ByteTextTask("test").sample(3, 40, np.random.default_rng(5)).tokens
    with torch.no_grad():
        full, cut = model(tokens), model(tokens[:, :13])
    torch.testing.assert_close(full[:, :13], cut, rtol=1e-4, atol=1e-5)


def test_position_edges_double_and_hit_the_training_length():
    assert position_edges(64, 16).tolist() == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert position_edges(48, 4).tolist() == [0, 1, 2, 4, 8, 16, 32, 48, 64, 128, 192]
    with pytest.raises(ValueError, match="train_len"):
        position_edges(0, 4)
    with pytest.raises(ValueError, match="max_mult"):
        position_edges(64, 0.5)


def test_loss_by_bins_averages_each_bin_over_its_own_windows():
    model, task = _model(), ByteTextTask("test")
    edges = [0, 1, 4, 16]
    binned = loss_by_bins(model, task, edges, samples=1, min_windows=5)
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        per_position = loss_by_position(model, task, high, n_sequences=5)
        assert binned[i] == pytest.approx(per_position[low:high].mean(), rel=1e-6)
    with pytest.raises(ValueError, match="edges"):
        loss_by_bins(model, task, [0, 4, 2])
    with pytest.raises(ValueError, match="samples"):
        loss_by_bins(model, task, edges, samples=0)


@pytest.mark.slow
def test_text_experiment_summary_table_and_plot(tmp_path):
    summary, runs = length_experiment(["softmax", "ssmax"], pe="rope", task="text", seeds=(0, 1), steps=3,
                                      train_len=16, eval_mult=(4,), n_eval=2, rope_theta_scale=50, progress=False)
    assert summary["position_edges"] == [0, 1, 2, 4, 8, 16, 32, 64] and summary["lengths"] == [64]
    assert len(runs) == 4 and all(isinstance(r.config.task, ByteTextTask) for r in runs.values())
    for result in summary["results"].values():
        assert set(result["evaluations"]) == {"plain", "theta_scaled"}
        cells = result["evaluations"]["plain"]["loss_by_position"]
        assert len(cells) == 7 and all(len(c["per_seed"]) == 2 and 0 < c["min"] <= c["max"] for c in cells)
    json.dumps(summary)  # JSON-ready
    table = format_position_table(summary)
    assert "8 < n ≤ 16" in table and "32 < n ≤ 64" in table and table.count("\n") == 3
    from ssmax_lite.lab.plotting import plot_loss_by_position

    fig, ax = plt.subplots()
    plot_loss_by_position(ax, summary)
    plot_loss_by_position(ax, summary, "theta_scaled", style="--", mark_train_len=False)
    assert len(ax.lines) == 2 + 1 + 2 and ax.get_xscale() == "log"
    plt.close(fig)


def test_cli_runs_the_text_task(tmp_path, capsys):
    out = tmp_path / "text.json"
    code = main(["length", "--task", "text", "--attention", "softmax", "--steps", "2", "--train-len", "8",
                 "--eval-mult", "2", "--seeds", "0", "--n-eval", "2", "--no-progress", "--json", str(out)])
    assert code == 0
    assert "next-byte test loss" in capsys.readouterr().out
    assert json.loads(out.read_text())["position_edges"] == [0, 1, 2, 4, 8, 16]


@pytest.mark.slow
def test_text_presets_fit_together_on_the_cpu():
    """The GPU text preset is never trained in CI: two steps check that its model and task fit together."""
    quick = preset("quick", attention="ssmax", **TEXT_RUNS["quick"])
    assert quick.model.vocab_size == 256 and quick.train_len == 64
    full = preset("full", attention="ssmax-bias", pe="rope", **(TEXT_RUNS["full"] | {"steps": 2, "warmup": 1}))
    full = full.with_(batch_size=4)  # the preset's 64 windows of 256 bytes are a GPU's batch
    assert full.model.d_model == 256 and full.train_len == 256
    result = train(full, device="cpu", progress=False)
    assert result.losses.shape == (2,) and np.all(np.isfinite(result.losses))
