"""benchmarks/gpu_check.py runs on the CPU (``--device cpu --tiny``) and writes the JSON the book reads."""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssmax_lite.lab.train import flops_per_step, preset

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
KINDS = ["nope/softmax", "nope/ssmax", "nope/constant", "rope/softmax", "rope/ssmax"]


def _run(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_gpu_check_tiny_on_the_cpu_writes_the_json(tmp_path):
    done = _run("--device", "cpu", "--tiny", "--out", str(tmp_path), "--name", "check")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["device"] == "cpu" and report["tiny"] is True and report["gpu"]
    assert report["torch"] == torch.__version__ and report["cuda"] == torch.version.cuda
    assert report["precision"] == "fp32"
    assert dt.datetime.fromisoformat(report["date_utc"]).utcoffset() == dt.timedelta(0)
    assert report["preset"] == "full" and report["task"] == "stream"
    assert report["flops_per_step"] == flops_per_step(preset("full", steps=2, train_len=report["train_len"]))
    assert sorted(report["wall_time_s"]) == sorted(KINDS) and all(t > 0 for t in report["wall_time_s"].values())
    assert sorted(report["summary"]) == sorted(KINDS)
    for key in KINDS:
        pe, attention = key.split("/")
        summary = report["summary"][key]
        assert summary["pe"] == pe and list(summary["results"]) == [attention]
        assert summary["seeds"] == [0] and summary["eval_mult"] == [1, 2]
        result = summary["results"][attention]
        assert len(result["evaluations"]["plain"]["accuracy"]) == 2
        assert "depth" in result and len(result["depth"]["accuracy"]) == 2  # accuracy by keys seen, per length
        assert ("theta_scaled" in result["evaluations"]) == (pe == "rope")
        assert len(report["train_time_s"][key]) == 1
        learned = report["learned"][key]
        assert len(learned["loss_1x"]) == 1 and isinstance(learned["all_seeds_learned"], bool)
    assert "check.json" in done.stdout


@pytest.mark.slow
def test_gpu_check_text_task_tiny_on_the_cpu_writes_the_json(tmp_path):
    done = _run("--device", "cpu", "--tiny", "--task", "text", "--steps", "1", "--out", str(tmp_path),
                "--name", "text")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "text.json").read_text())
    assert report["task"] == "text" and report["train_len"] == 8 and report["steps"] == 1
    kinds = ["nope/softmax", "nope/ssmax", "rope/softmax", "rope/ssmax", "rope/ssmax-bias"]
    assert sorted(report["summary"]) == sorted(kinds)
    assert 3.0 < report["chance_loss"] < 3.3  # the bytes' entropy, in nats
    for key in kinds:
        pe, attention = key.split("/")
        summary = report["summary"][key]
        assert summary["position_edges"] == [0, 1, 2, 4, 8, 16]
        result = summary["results"][attention]
        assert len(result["evaluations"]["plain"]["loss_by_position"]) == 5
        assert ("theta_scaled" in result["evaluations"]) == (pe == "rope")
        assert len(report["learned"][key]["loss_at_L"]) == 1


def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = _run("--out", str(tmp_path))
    assert done.returncode == 2 and "torch sees no GPU" in done.stderr
    assert not list(tmp_path.iterdir())
