"""Switching a trained softmax model to SSMax (and peers), and fine-tuning it afterwards."""

import math

import pytest
import numpy as np
import torch

from ssmax_lite.lab.convert import attention_modules, fine_tune, switch_attention, switch_during_training
from ssmax_lite.lab.model import TinyTransformer
from ssmax_lite.lab.train import preset, train

TRAIN_LEN = 16


def _config(n_layers=1, **changes):
    return preset("quick", attention="softmax", d_model=16, n_heads=2, n_layers=n_layers,
                  train_len=TRAIN_LEN, batch_size=4, **changes)


def _model(n_layers=1, seed=0):
    """A model at initialisation, with query/key weights enlarged so that attention is not uniform."""
    torch.manual_seed(seed)
    model = TinyTransformer(_config(n_layers).model).eval()
    with torch.no_grad():
        for module in attention_modules(model):
            module.qkv.weight.mul_(10.0)
    return model


def _tokens(length, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, _config().task.vocab_size, (3, length), generator=g)


def test_switch_sets_s_so_that_s_log_train_len_is_one():
    model = switch_attention(_model(n_layers=2), "ssmax")
    modules = attention_modules(model)
    assert len(modules) == 2
    for module in modules:
        assert module.attention == "ssmax"
        assert isinstance(module.s, torch.nn.Parameter)
        torch.testing.assert_close(module.s * math.log(TRAIN_LEN), torch.ones(2))
    assert model.config.attention == "ssmax"
    assert model.length_scales().shape == (2, 2)
    assert "blocks.0.attn.s" in model.state_dict()


def test_switched_one_layer_model_is_unchanged_at_the_last_training_position_only():
    softmax = _model()
    switched = switch_attention(_model(), "ssmax")
    x = _tokens(TRAIN_LEN)
    with torch.no_grad():
        before, after = softmax(x), switched(x)
    # s·log n = 1 at n = L_train: the last position's attention row is softmax's exactly
    torch.testing.assert_close(after[:, -1], before[:, -1], rtol=1e-5, atol=1e-6)
    # earlier positions (n < L_train) attend more flatly, so their outputs change
    assert (after[:, 1:-1] - before[:, 1:-1]).abs().amax() > 1e-4


def test_switch_keeps_the_trained_weights():
    model = _model(n_layers=2)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    switch_attention(model, "ssmax-bias", bias_init=0.0)
    state = model.state_dict()
    for key, value in weights.items():
        assert torch.equal(state[key], value), key
    assert {k for k in state if k not in weights} == \
        {f"blocks.{i}.attn.{name}" for i in range(2) for name in ("s", "bias")}


@pytest.mark.parametrize("kind", ["qwen-logn", "llama4-temperature"])
def test_inference_only_switch_leaves_training_lengths_unchanged(kind):
    softmax = _model(n_layers=2)
    switched = switch_attention(_model(n_layers=2), kind)
    with torch.no_grad():
        # within the training length the multiplier is 1 (Llama 4 steps up at n = floor_scale = L_train)
        long = _tokens(4 * TRAIN_LEN)
        before, after = softmax(long), switched(long)
        torch.testing.assert_close(after[:, :TRAIN_LEN - 1], before[:, :TRAIN_LEN - 1], rtol=0, atol=0)
        assert (after[:, TRAIN_LEN:] - before[:, TRAIN_LEN:]).abs().amax() > 1e-3
        switched.train()  # inference-only: no change at all in training mode
        torch.testing.assert_close(switched(long), before, rtol=0, atol=0)


def test_switch_back_to_softmax_restores_the_model():
    model = _model(n_layers=2)
    x = _tokens(3 * TRAIN_LEN)
    with torch.no_grad():
        before = model(x)
        switch_attention(model, "ssmax", s_init=0.7)
        assert not torch.allclose(model(x), before)
        switch_attention(model, "softmax")
        torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    assert all(m.s is None for m in attention_modules(model))
    assert "blocks.0.attn.s" not in model.state_dict()


def test_fine_tune_trains_s_and_the_weights_deterministically():
    config = _config()
    results = []
    for _ in range(2):
        model = switch_attention(_model(), "ssmax")
        results.append(fine_tune(model, config, steps=6, lr=1e-2))
    first, second = results
    assert first.losses.shape == (6,)
    assert (first.losses == second.losses).all()
    for (name, p), (_, q) in zip(first.model.named_parameters(), second.model.named_parameters()):
        assert torch.equal(p, q), name
    assert (first.model.blocks[0].attn.s - 1 / math.log(TRAIN_LEN)).abs().amax() > 1e-4  # s moved
    assert not first.model.training


def test_switch_during_training_is_train_then_switch_then_fine_tune(tmp_path):
    config = _config(steps=8)
    result = switch_during_training(config, 5, warmup=1, cache_dir=tmp_path)
    # the same recipe written out: 5 softmax steps, the switch, 3 steps at lr/3 with 1 warm-up step
    first = train(config.with_(steps=5), progress=False, cache_dir=tmp_path)
    assert any(tmp_path.iterdir())  # phase one was cached (and loaded here)
    by_hand = fine_tune(switch_attention(first.model, "ssmax"), config, 3, lr=config.lr / 3, warmup=1)
    assert result.losses.shape == (3,)
    assert all(m.attention == "ssmax" for m in attention_modules(result.model))
    for (name, p), (_, q) in zip(result.model.named_parameters(), by_hand.model.named_parameters()):
        assert torch.equal(p, q), name


def test_switch_during_training_caches_the_finished_model(tmp_path):
    config = _config(steps=8)
    computed = switch_during_training(config, 5, warmup=1, cache_dir=tmp_path)
    cached = switch_during_training(config, 5, warmup=1, cache_dir=tmp_path)
    assert cached.from_cache and not computed.from_cache
    assert cached.config == computed.config and np.array_equal(cached.losses, computed.losses)
    for (name, p), (_, q) in zip(computed.model.named_parameters(), cached.model.named_parameters()):
        assert torch.equal(p, q), name
    # another switch step or learning rate is another model
    assert not switch_during_training(config, 4, warmup=1, cache_dir=tmp_path).from_cache
    assert not switch_during_training(config, 5, warmup=1, lr=1e-4, cache_dir=tmp_path).from_cache


def test_bad_input_raises_value_error():
    model = _model()
    with pytest.raises(ValueError, match="attention must be one of"):
        switch_attention(model, "scalable")
    with pytest.raises(ValueError, match="no CausalSelfAttention"):
        switch_attention(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="s_init"):
        switch_attention(model, "ssmax", s_init=float("inf"))
    with pytest.raises(ValueError, match="steps"):
        fine_tune(model, _config(), steps=0)
    with pytest.raises(ValueError, match="lr"):
        fine_tune(model, _config(), steps=2, lr=-1.0)
    with pytest.raises(ValueError, match="warmup"):
        fine_tune(model, _config(), steps=2, warmup=5)
    with pytest.raises(ValueError, match="config"):
        fine_tune(model, _config().model, steps=2)
    with pytest.raises(ValueError, match=r"switch_at must be an int in \[1, config.steps - 1 = 7\]"):
        switch_during_training(_config(steps=8), 8)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        switch_during_training(_config().model, 2)
