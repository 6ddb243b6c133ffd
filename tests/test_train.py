"""The training loop: deterministic on the CPU, learns the lookup, caches by config and source."""

import math

import numpy as np
import pytest
import torch

from ssmax_lite.lab.model import ModelConfig
from ssmax_lite.lab.tasks import LookupTask, RecallStreamTask
from ssmax_lite.lab.train import PRESETS, LossLog, TrainConfig, cache_key, flops_per_step, learning_rate, preset, train

TINY = dict(d_model=32, n_heads=2, n_layers=1, train_len=16, steps=6, batch_size=4,
            task=LookupTask(n_keys=4, n_values=4, n_needles=2))


def test_same_seed_same_run_on_cpu():
    a = train(preset("quick", attention="ssmax", **TINY), device="cpu", progress=False)
    b = train(preset("quick", attention="ssmax", **TINY), device="cpu", progress=False)
    c = train(preset("quick", attention="ssmax", seed=1, **TINY), device="cpu", progress=False)
    np.testing.assert_array_equal(a.losses, b.losses)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    assert not np.array_equal(a.losses, c.losses)


def test_result_holds_curve_time_and_config():
    config = preset("quick", attention="constant", **TINY)
    result = train(config, device="cpu", progress=False)
    assert result.losses.shape == (6,) and np.all(np.isfinite(result.losses))
    assert result.wall_time > 0 and result.config is config and result.device == "cpu"
    assert not result.model.training and not result.from_cache
    # the first losses are near chance over the vocabulary (uniform prediction at init)
    assert abs(result.losses[0] - math.log(config.task.vocab_size)) < 0.5


@pytest.mark.slow
def test_learns_a_short_lookup():
    """A one-needle lookup at L = 16 is learned well below chance in a few hundred steps."""
    config = preset("quick", attention="ssmax", d_model=32, n_heads=2, train_len=16, steps=250,
                    task=LookupTask(n_keys=4, n_values=4, n_needles=1))
    result = train(config, device="cpu", progress=False)
    chance = math.log(4)  # the key is known from the query, only the value is not
    assert result.final_loss(25) < 0.5 * chance


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    config = preset("quick", steps=100, warmup=10, lr=1e-3)
    rates = [learning_rate(step, config) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[-1] == pytest.approx(1e-4, rel=0.01)


def test_cache_returns_the_same_model(tmp_path):
    config = preset("quick", attention="ssmax", **TINY)
    first = train(config, device="cpu", progress=False, cache_dir=tmp_path)
    second = train(config, device="cpu", progress=False, cache_dir=tmp_path)
    assert second.from_cache and len(list(tmp_path.glob("*.pt"))) == 1
    np.testing.assert_array_equal(first.losses, second.losses)
    tokens = torch.randint(0, config.task.vocab_size, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(first.model(tokens), second.model(tokens))


def test_cache_key_depends_on_config():
    base = preset("quick", attention="ssmax")
    keys = {cache_key(base, "cpu"), cache_key(base.with_(seed=1), "cpu"),
            cache_key(base.with_(attention="softmax"), "cpu"), cache_key(base, "cuda"),
            cache_key(base, "cpu", compile=True)}
    assert len(keys) == 5
    assert cache_key(base, "cpu") == cache_key(preset("quick", attention="ssmax"), "cpu")


def test_cache_key_depends_on_the_cpu_code_path():
    # AVX-512, AVX2 or no vector instructions sum in other orders, so a model cached on one path is not
    # the model another path trains: each code path gets its own key (torch reads the variable at start-up)
    import os
    import subprocess
    import sys

    code = ("import torch; from ssmax_lite.lab.train import cache_key, preset; "
            "print(torch.backends.cpu.get_cpu_capability(), cache_key(preset('quick'), 'cpu'))")
    runs = {}
    for capability in ("default", "avx2"):
        env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
        used, key = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                   check=True).stdout.split()
        runs[used] = key
    if len(runs) < 2:
        pytest.skip("this CPU has no AVX2 code path to compare with")
    assert len(set(runs.values())) == 2


def test_presets_build_valid_configs():
    for name in PRESETS:
        for pe in ("nope", "rope"):
            config = preset(name, attention="ssmax", pe=pe)
            assert config.model.vocab_size == config.task.vocab_size
    # the GPU preset trains on the recall stream (queries at every depth), experiments' "full" stream task
    assert preset("full").task == RecallStreamTask(n_keys=64, n_values=16, n_needles=32)
    assert preset("quick", train_len=32).model.train_len == 32


@pytest.mark.parametrize("changes, match", [
    (dict(steps=0), "steps"),
    (dict(lr=float("nan")), "lr"),
    (dict(batch_size=2.5), "batch_size"),
    (dict(train_len=5), "train_len"),
    (dict(task=LookupTask(n_keys=5)), "vocab_size"),
])
def test_bad_train_config_raises(changes, match):
    with pytest.raises(ValueError, match=match):
        preset("quick").with_(**changes)


def test_bad_preset_and_device_raise():
    with pytest.raises(ValueError, match="preset"):
        preset("huge")
    with pytest.raises(ValueError, match="device"):
        train(preset("quick", **TINY), device="tpu", progress=False)
    with pytest.raises(ValueError, match="config"):
        train({"steps": 3})


def test_full_preset_runs_a_few_steps_on_the_cpu():
    """The GPU preset is never trained in CI; this checks that its model, recall-stream task and loop fit
    together (two steps on the CPU), so a Colab reader does not meet a shape error after minutes."""
    config = preset("full", attention="ssmax", steps=2, warmup=1)
    assert isinstance(config.task, RecallStreamTask) and config.model.train_len == 256
    result = train(config, device="cpu", progress=False)
    assert result.losses.shape == (2,) and np.all(np.isfinite(result.losses))


def test_loss_log_copies_pending_losses_in_order():
    log = LossLog(steps=7, every=3)
    for step in range(7):
        log.append(torch.tensor(float(step)))
        assert len(log._pending) < 3  # copied to the host as soon as `every` losses wait
    np.testing.assert_array_equal(log.flush(), np.arange(7, dtype=np.float32))


def test_compiled_training_matches_eager_training(fresh_compiler):
    """The compiled run rounds differently in the last bits only (backend aot_eager: no kernel fusion)."""
    eager = train(preset("quick", attention="ssmax", **TINY), device="cpu", progress=False)
    compiled = train(preset("quick", attention="ssmax", **TINY), device="cpu", progress=False,
                     compile="aot_eager")
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=1e-5)
    assert not any(name.startswith("_orig_mod") for name in compiled.model.state_dict())


@pytest.mark.parametrize("compile", ["no-such-backend", 1, None])
def test_bad_compile_raises(compile):
    with pytest.raises(ValueError, match="compile must be"):
        train(preset("quick", **TINY), device="cpu", progress=False, compile=compile)


def test_flops_per_step_by_hand():
    # vocab 10, d 4, 1 layer, d_ff 16, L 8, batch 2: matrices 4·4² + 2·4·16 = 192, head 10·4 = 40, N = 232;
    # 16 tokens · (6·232 + 12·1·4·8) = 16 · (1392 + 384) = 28,416
    config = TrainConfig(model=ModelConfig(vocab_size=10, d_model=4, n_layers=1, n_heads=2, train_len=8),
                         task=LookupTask(n_keys=2, n_values=4, n_needles=1), batch_size=2)
    assert config.model.vocab_size == config.task.vocab_size
    assert flops_per_step(config) == 28_416
    assert flops_per_step(config.with_(d_ff=8)) == 16 * (6 * (4 * 16 + 2 * 4 * 8 + 40) + 12 * 4 * 8)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        flops_per_step(config.model)


def test_flops_per_step_of_the_gpu_preset():
    # d 256, 4 layers, d_ff 1024, vocab 64·16 + 64 = 1088, L 256, batch 64
    n = 4 * (4 * 256**2 + 2 * 256 * 1024) + 1088 * 256
    assert flops_per_step(preset("full")) == 64 * 256 * (6 * n + 12 * 4 * 256 * 256)  # about 3.9e11
