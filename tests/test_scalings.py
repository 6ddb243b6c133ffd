"""The length-scaling registry: each formula against values worked out by hand from its source,
and every method's fused forward against explicit attention built from ``attention_weights``."""

import math

import numpy as np
import pytest
import torch

from ssmax_lite.lab.layers import ATTENTION_KINDS, CausalSelfAttention
from ssmax_lite.lab.scalings import SCALINGS, fixed_params, get_scaling, length_multiplier


# ----------------------------------------------------------------------------- formulas by hand


def test_llama4_temperature_steps_at_the_source_floor_scale():
    # HF Llama 4: 1 + 0.1 * log(floor((pos + 1) / 8192) + 1), n = pos + 1.
    at = lambda pos: float(length_multiplier("llama4-temperature", pos + 1, train_len=64,
                                             floor_scale=8192))
    assert at(0) == 1.0
    assert at(8190) == 1.0
    assert at(8191) == pytest.approx(1 + 0.1 * math.log(2), abs=1e-12)
    assert at(2 * 8192 - 2) == pytest.approx(1 + 0.1 * math.log(2), abs=1e-12)
    assert at(2 * 8192 - 1) == pytest.approx(1 + 0.1 * math.log(3), abs=1e-12)


def test_llama4_temperature_floor_scale_defaults_to_the_training_length():
    n = np.arange(1, 200)
    rescaled = length_multiplier("llama4-temperature", n, train_len=64)
    expected = 1 + 0.1 * np.log(n // 64 + 1)
    np.testing.assert_allclose(rescaled, expected, rtol=0, atol=1e-12)
    assert rescaled[62] == 1.0 and rescaled[63] == pytest.approx(1 + 0.1 * math.log(2))  # n = 63, 64


@pytest.mark.parametrize("train_len", [64, 512, 2048])
def test_qwen_logn_is_one_inside_and_log_base_train_len_beyond(train_len):
    # Qwen-1: math.log(i, seq_length) if i > seq_length else 1, i the 1-based position.
    assert float(length_multiplier("qwen-logn", 1, train_len=train_len)) == 1.0
    assert float(length_multiplier("qwen-logn", train_len, train_len=train_len)) == 1.0
    assert float(length_multiplier("qwen-logn", 2 * train_len, train_len=train_len)) == \
        pytest.approx(math.log(2 * train_len, train_len), rel=1e-12)
    assert float(length_multiplier("qwen-logn", train_len ** 2, train_len=train_len)) == pytest.approx(2.0)


@pytest.mark.parametrize("factor", [1.0, 2.0, 4.0, 32.0])
def test_yarn_attention_factor_squared(factor):
    expected = (0.1 * math.log(factor) + 1) ** 2
    n = np.arange(1, 50)
    got = length_multiplier("yarn", n, train_len=64, factor=factor)
    np.testing.assert_allclose(got, expected, rtol=1e-12)  # constant in n


def test_yarn_factor_four_and_default_factor_from_context_length():
    assert float(length_multiplier("yarn", 3, train_len=64, factor=4.0)) == \
        pytest.approx((0.1 * math.log(4) + 1) ** 2, rel=1e-12)
    # factor None: context / training length, so 256 keys after training on 64 is factor 4
    assert float(length_multiplier("yarn", 3, train_len=64, context_len=256)) == \
        pytest.approx((0.1 * math.log(4) + 1) ** 2, rel=1e-12)
    # no extension (factor <= 1): 1, as HF's get_mscale
    assert float(length_multiplier("yarn", 3, train_len=64, context_len=32)) == 1.0


def test_su_log_base_512_and_rescaled_base():
    assert float(length_multiplier("su-log-base", 512, train_len=64, base_len=512)) == pytest.approx(1.0)
    assert float(length_multiplier("su-log-base", 4096, train_len=64, base_len=512)) == pytest.approx(4 / 3)
    assert float(length_multiplier("su-log-base", 64, train_len=64)) == pytest.approx(1.0)
    assert float(length_multiplier("su-log-base", 8, train_len=64)) == pytest.approx(0.5)


def test_chiang_log_n_is_the_natural_log():
    n = np.array([1.0, math.e, 64.0])
    np.testing.assert_allclose(length_multiplier("chiang-log-n", n, train_len=64), [0.0, 1.0, math.log(64)])


def test_ssmax_family_multipliers():
    n = np.array([1.0, 8.0, 64.0, 128.0])
    # default s = 1/ln(train_len): exactly 1 at the training length
    np.testing.assert_allclose(length_multiplier("ssmax", n, train_len=64), np.log(n) / math.log(64))
    np.testing.assert_allclose(length_multiplier("ssmax-fixed", n, train_len=64, s=0.43), 0.43 * np.log(n))
    np.testing.assert_allclose(length_multiplier("ssmax-bias", n, train_len=64, s=0.5, bias=0.2),
                               0.5 * np.log(n) + 0.2)
    np.testing.assert_allclose(length_multiplier("constant", n, train_len=64, c=1.5), 1.5)
    np.testing.assert_allclose(length_multiplier("softmax", n, train_len=64), 1.0)


def test_torch_and_numpy_agree_for_every_method():
    n = np.arange(1, 300, dtype=np.float64)
    for name in SCALINGS:
        got_np = length_multiplier(name, n, train_len=64)
        got_t = length_multiplier(name, torch.as_tensor(n), train_len=64)
        assert isinstance(got_t, torch.Tensor)
        np.testing.assert_allclose(got_t.numpy(), got_np, rtol=1e-12, err_msg=name)


def test_inference_only_methods_are_one_inside_the_training_length():
    n = np.arange(1, 64)  # positions strictly inside a 64-token training sequence
    for name in ("qwen-logn", "llama4-temperature"):
        np.testing.assert_array_equal(length_multiplier(name, n, train_len=64), 1.0)
    assert float(length_multiplier("yarn", 63, train_len=64)) == 1.0  # context 63 <= 64: no extension


def test_registry_metadata():
    # every kind but one is a per-query multiplier of the registry; scale-invariant attention changes each logit
    assert set(ATTENTION_KINDS) == set(SCALINGS) | {"scale-invariant"}
    assert ATTENTION_KINDS[:5] == ("softmax", "ssmax", "ssmax-fixed", "ssmax-bias", "constant")
    with open("book/references.bib", encoding="utf-8") as f:
        bib = f.read()
    for s in SCALINGS.values():
        assert s.applied in ("never", "always", "inference")
        assert s.depends_on in ("n", "position", "context")
        assert s.citation is None or f"{{{s.citation}," in bib, s.name
    assert SCALINGS["ssmax"].learned == ("s",) and SCALINGS["ssmax-bias"].learned == ("s", "bias")
    assert {k for k, s in SCALINGS.items() if s.applied == "inference"} == \
        {"qwen-logn", "llama4-temperature", "yarn"}
    assert SCALINGS["llama4-temperature"].source_constants == {"floor_scale": 8192}
    assert SCALINGS["su-log-base"].source_constants == {"base_len": 512}


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, match", [
    (lambda: get_scaling("log-n"), "scaling must be one of"),
    (lambda: fixed_params("ssmax", 1), "train_len"),
    (lambda: fixed_params("ssmax", 64.0), "train_len"),
    (lambda: fixed_params("su-log-base", 64, base_len=1), "base_len"),
    (lambda: fixed_params("llama4-temperature", 64, floor_scale=0), "floor_scale"),
    (lambda: fixed_params("llama4-temperature", 64, beta=float("nan")), "beta"),
    (lambda: fixed_params("yarn", 64, factor=-2.0), "factor"),
    (lambda: fixed_params("qwen-logn", 64, floor_scale=8), "unknown"),
    (lambda: length_multiplier("softmax", 0, train_len=64), "n must be >= 1"),
    (lambda: length_multiplier("ssmax", np.array([1.0, np.nan]), train_len=64), "n must be finite"),
    (lambda: length_multiplier("chiang-log-n", 4, train_len=64, s=2.0), "unknown"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_attention_module_rejects_unknown_kind_and_params():
    with pytest.raises(ValueError, match="attention must be one of"):
        CausalSelfAttention(16, 2, "logn")
    with pytest.raises(ValueError, match="unknown"):
        CausalSelfAttention(16, 2, "yarn", train_len=8, scaling_params={"base_len": 3})


# ----------------------------------------------------------------------------- the fused module


def _explicit_attention(module: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(m_i · q_i K^T / sqrt(E)) V through ``attention_weights``, then the output projection."""
    _, _, v = module._split_heads(x, None)
    y = module.attention_weights(x) @ v
    return module.out(y.transpose(1, 2).reshape(x.shape))


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
@pytest.mark.parametrize("length", [5, 24])  # within and beyond train_len = 8
def test_fused_forward_equals_explicit_attention(kind, length):
    torch.manual_seed(0)
    module = CausalSelfAttention(32, 4, kind, train_len=8, bias_init=0.3).double().eval()
    with torch.no_grad():  # make the learned per-head values differ across heads
        for name in ("s", "bias", "c"):
            if getattr(module, name) is not None:
                getattr(module, name).mul_(torch.linspace(0.5, 1.5, 4, dtype=torch.float64))
    x = torch.randn(3, length, 32, dtype=torch.float64)
    torch.testing.assert_close(module(x), _explicit_attention(module, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", SCALINGS)
def test_module_multiplier_is_the_registry_formula(kind):
    module = CausalSelfAttention(16, 2, kind, train_len=8).eval()
    m = module.query_multiplier(20, 20, dtype=torch.float64)
    n = np.arange(1, 21, dtype=np.float64)
    expected = length_multiplier(kind, n, train_len=8)
    if m is None:
        np.testing.assert_array_equal(expected, 1.0)
    else:
        # learned and fixed per-head values are stored in float32
        np.testing.assert_allclose(np.broadcast_to(m.detach().squeeze(-1).numpy(), (2, 20)),
                                   np.broadcast_to(expected, (2, 20)), rtol=1e-6)


@pytest.mark.parametrize("kind", ["qwen-logn", "llama4-temperature", "yarn"])
def test_inference_only_methods_are_softmax_in_training_mode(kind):
    torch.manual_seed(0)
    module = CausalSelfAttention(16, 2, kind, train_len=8)
    softmax = CausalSelfAttention(16, 2, "softmax", train_len=8)
    softmax.load_state_dict(module.state_dict())
    x = torch.randn(2, 30, 16)
    assert torch.equal(module.train()(x), softmax(x))
    assert not torch.allclose(module.eval()(x), softmax.eval()(x))


def test_learned_scalings_get_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 12, 16)
    for kind, names in (("ssmax", ("s",)), ("ssmax-bias", ("s", "bias")), ("constant", ("c",))):
        module = CausalSelfAttention(16, 2, kind, train_len=8)
        module(x).square().sum().backward()
        for name in names:
            grad = getattr(module, name).grad
            assert grad is not None and grad.shape == (2,) and bool((grad != 0).all()), (kind, name)
    fixed = CausalSelfAttention(16, 2, "ssmax-fixed", train_len=8)
    assert "s" in dict(fixed.named_buffers()) and "s" not in dict(fixed.named_parameters())
