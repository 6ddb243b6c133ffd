"""The mixed-precision policy of training (bf16 / fp16 + GradScaler / fp32), tested on the CPU.

No GPU is needed: the policy is tested with ``torch.cuda.is_bf16_supported`` replaced, and the fp16 path
(autocast to float16 and a ``torch.amp.GradScaler``) runs on the CPU, where both exist, through the same
``train_step`` and ``fit`` code a GPU runs.
"""

import contextlib

import numpy as np
import pytest
import torch

from ssmax_lite.lab import train as train_module
from ssmax_lite.lab.model import TinyTransformer
from ssmax_lite.lab.tasks import RecallStreamTask
from ssmax_lite.lab.train import (autocast_for, fit, make_grad_scaler, make_optimizer, precision_for, preset,
                              train_step)


def _tiny_config(steps=30):
    return preset("quick", task=RecallStreamTask(n_keys=6, n_values=4, n_needles=2), d_model=32, n_layers=1,
                  n_heads=2, train_len=16, steps=steps, batch_size=16, lr=1e-2, warmup=2, seed=0)


@pytest.fixture
def bf16_support(monkeypatch):
    """Set what ``torch.cuda.is_bf16_supported`` answers; records the keyword arguments it was asked with."""
    calls = []

    def install(answer: bool):
        def fake(including_emulation: bool = True):
            calls.append(including_emulation)
            return answer
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", fake)
        return calls
    return install


def test_policy_cpu_is_fp32(bf16_support):
    calls = bf16_support(True)
    assert precision_for("cpu") == "fp32"
    assert precision_for(torch.device("cpu")) == "fp32"
    assert calls == []  # the CPU never asks CUDA anything


def test_policy_cuda_native_bf16(bf16_support):
    calls = bf16_support(True)
    assert precision_for("cuda") == "bf16"
    assert precision_for(torch.device("cuda", 0)) == "bf16"
    assert calls == [False, False]  # emulated bf16 (a T4 has none in hardware) does not count


@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled, but CUDA is not available")
def test_policy_cuda_without_bf16_is_fp16(bf16_support):
    bf16_support(False)
    assert precision_for("cuda") == "fp16"
    assert isinstance(make_grad_scaler("cuda", "fp16"), torch.amp.GradScaler)


def test_meta_device_counts_as_a_cpu():
    # the tests run model-facing code on "meta" to check where tensors are built (tests/test_meta_device.py)
    assert precision_for("meta") == "fp32"


@pytest.mark.parametrize("device", ["mps", "tpu", 3.5, None])
def test_policy_rejects_other_devices(device):
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        precision_for(device)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        make_grad_scaler(device, "fp16")


def test_autocast_and_scaler_by_precision():
    assert isinstance(autocast_for("cpu", "fp32"), contextlib.nullcontext)
    with autocast_for("cpu", "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with autocast_for("cpu", "fp16"):
        assert torch.get_autocast_dtype("cpu") == torch.float16
    assert make_grad_scaler("cpu", "bf16") is None and make_grad_scaler("cpu", "fp32") is None
    assert make_grad_scaler("cpu", "fp16").is_enabled()
    for bad in ("fp8", "float16", None):
        with pytest.raises(ValueError, match=r"precision must be one of \('bf16', 'fp16', 'fp32'\)"):
            autocast_for("cpu", bad)


def test_train_step_scaler_must_match_precision():
    config = _tiny_config()
    torch.manual_seed(0)
    model = TinyTransformer(config.model)
    optimizer = make_optimizer(model, config, "cpu")
    batch = config.task.sample(4, config.train_len, np.random.default_rng(0))
    with pytest.raises(ValueError, match="scaler must be a torch.amp.GradScaler for precision 'fp16'"):
        train_step(model, optimizer, batch, 1.0, "cpu", precision="fp16")
    with pytest.raises(ValueError, match="scaler must be"):
        train_step(model, optimizer, batch, 1.0, "cpu", precision="fp32", scaler=torch.amp.GradScaler("cpu"))
    with pytest.raises(ValueError, match="precision must be one of"):
        train_step(model, optimizer, batch, 1.0, "cpu", precision="half")


def _run_steps(precision, steps, fused=False):
    config = _tiny_config(steps)
    torch.manual_seed(0)
    model = TinyTransformer(config.model)
    optimizer = make_optimizer(model, config, "cpu")
    if fused:  # on a GPU make_optimizer picks the fused AdamW, which reads the scaler's state itself
        groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in optimizer.param_groups]
        optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), fused=True)
        assert all(g["fused"] for g in optimizer.param_groups)
    scaler = make_grad_scaler("cpu", precision)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        batch = config.task.sample(config.batch_size, config.train_len, rng)
        losses.append(float(train_step(model, optimizer, batch, config.grad_clip, "cpu",
                                       precision=precision, scaler=scaler)))
    return model, losses, scaler


def test_fp16_with_grad_scaler_learns_on_cpu(monkeypatch):
    # the clip must see the unscaled gradients: record the norm it measures at every step
    norms = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(params, max_norm, *args, **kwargs):
        norm = clip(params, max_norm, *args, **kwargs)
        norms.append(float(norm))
        return norm
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)

    model, losses, scaler = _run_steps("fp16", 30)
    assert len(norms) == 30
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights in fp32
    # scaled by 2**16 the norms would be in the thousands; unscaled they are those of fp32 training
    finite = [n for n in norms if np.isfinite(n)]
    assert finite and max(finite) < 100, norms
    assert scaler.get_scale() > 1.0  # the scaler was used (it starts at 2**16 and halves on overflow)


def test_fp16_matches_fp32_closely_on_cpu():
    _, fp32, _ = _run_steps("fp32", 10)
    _, fp16, _ = _run_steps("fp16", 10)
    assert np.allclose(fp16, fp32, rtol=0.05, atol=0.05), (fp16, fp32)


def test_fp16_with_the_fused_adamw_gpus_use():
    _, plain, _ = _run_steps("fp16", 10)
    _, fused, scaler = _run_steps("fp16", 10, fused=True)
    assert np.allclose(fused, plain, rtol=1e-3, atol=1e-3), (fused, plain)


def test_bf16_steps_learn_on_cpu():
    model, losses, scaler = _run_steps("bf16", 30)
    assert scaler is None
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_fit_runs_the_fp16_path_with_a_scaler(monkeypatch):
    """``fit`` asks :func:`precision_for` once and keeps one GradScaler across the steps."""
    monkeypatch.setattr(train_module, "precision_for", lambda device: "fp16")
    made = []
    real = train_module.make_grad_scaler

    def recording(device, precision):
        scaler = real(device, precision)
        made.append(scaler)
        return scaler
    monkeypatch.setattr(train_module, "make_grad_scaler", recording)
    config = _tiny_config(30)
    torch.manual_seed(0)
    result = fit(TinyTransformer(config.model), config, device="cpu", progress=False)
    assert len(made) == 1 and isinstance(made[0], torch.amp.GradScaler)
    assert result.losses[-5:].mean() < 0.7 * result.losses[:5].mean()


def test_cpu_training_takes_the_plain_fp32_path(monkeypatch):
    """On the CPU, fit makes no scaler and no autocast (so CPU runs are what they were before the policy)."""
    monkeypatch.setattr(torch.amp, "GradScaler", None)  # any attempt to build a scaler would fail,
    monkeypatch.setattr(torch, "autocast", None)        # and so would any autocast
    config = _tiny_config(3)
    torch.manual_seed(0)
    result = fit(TinyTransformer(config.model), config, device="cpu", progress=False)
    assert np.all(np.isfinite(result.losses))
