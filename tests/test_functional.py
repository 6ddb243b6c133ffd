"""Properties of ``ssmax_lite.softmax`` and ``ssmax_lite.ssmax`` (numpy and torch).

SSMax is ``softmax((s·log n + b)·x)`` over the n entries that are not masked (``-inf``).
Each test states one property and lets hypothesis look for a counter-example.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ssmax_lite import softmax, ssmax, ssmax_multiplier

settings.register_profile("ssmax", max_examples=60, deadline=None)
settings.load_profile("ssmax")


# --------------------------------------------------------------------------- strategies


@st.composite
def masked_logits(draw, max_rows=4, max_cols=12, bound=20.0, allow_full_mask=True):
    """A float64 (rows, cols) array with some entries set to -inf (masked)."""
    rows = draw(st.integers(1, max_rows))
    cols = draw(st.integers(1, max_cols))
    values = draw(arrays(np.float64, (rows, cols), elements=st.floats(-bound, bound)))
    mask = draw(arrays(np.bool_, (rows, cols)))
    if not allow_full_mask:
        mask[:, 0] = False  # keep at least one entry per row
    return np.where(mask, -np.inf, values)


scales = st.floats(0.05, 2.0)
biases = st.floats(-0.5, 0.5)


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row, with 0·log 0 = 0."""
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=-1)


def unmasked_counts(x: np.ndarray) -> np.ndarray:
    return (~np.isneginf(x)).sum(axis=-1)


# --------------------------------------------------------------------------- normalisation


@given(masked_logits(), scales, biases)
def test_rows_sum_to_one_and_masked_entries_are_exactly_zero(x, s, bias):
    for p in (softmax(x), ssmax(x, s=s, bias=bias)):
        live = unmasked_counts(x) > 0
        np.testing.assert_allclose(p.sum(axis=-1)[live], 1.0, rtol=0, atol=1e-12)
        assert np.all(p[np.isneginf(x)] == 0.0)
        assert np.all(p >= 0.0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fully_masked_row_gives_zeros_not_nan(backend):
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, 1.0, -np.inf]])
    if backend == "torch":
        x = torch.tensor(x)
    for p in (softmax(x), ssmax(x, s=0.7)):
        p = np.asarray(p)
        assert np.all(p[0] == 0.0)
        assert math.isclose(p[1].sum(), 1.0, abs_tol=1e-12)


# --------------------------------------------------------------------------- invariances


@given(masked_logits(allow_full_mask=False), st.floats(-50, 50), scales, biases)
def test_adding_a_constant_changes_nothing(x, c, s, bias):
    np.testing.assert_allclose(softmax(x + c), softmax(x), rtol=0, atol=1e-9)
    # n counts unmasked entries, which a shift does not change
    np.testing.assert_allclose(ssmax(x + c, s=s, bias=bias), ssmax(x, s=s, bias=bias), rtol=0, atol=1e-9)


@given(masked_logits(), st.integers(2, 10_000), scales)
def test_ssmax_equals_softmax_when_multiplier_is_one(x, n, s):
    # s·log n + bias = 1, reached two ways: s = 1/log n, or any s with bias = 1 - s·log n
    np.testing.assert_allclose(ssmax(x, s=1 / math.log(n), n=n), softmax(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ssmax(x, s=s, n=n, bias=1 - s * math.log(n)), softmax(x),
                               rtol=0, atol=1e-9)


@given(masked_logits(allow_full_mask=False, bound=3.0), st.floats(0.05, 1.0), st.floats(0.05, 1.0))
def test_larger_s_gives_lower_entropy(x, s_small, extra):
    s_large = s_small + extra
    h_small, h_large = entropy(ssmax(x, s=s_small)), entropy(ssmax(x, s=s_large))
    # dH/dβ = -β·Var_p(x) <= 0 for the logit multiplier β = s·log n
    assert np.all(h_large <= h_small + 1e-10)


def test_entropy_strictly_decreases_along_s_for_a_non_constant_row():
    x = np.array([0.3, -1.2, 2.0, 0.0, 0.7, -0.4, 1.1, 0.2])
    h = [float(entropy(ssmax(x, s=s))) for s in np.linspace(0.1, 2.0, 12)]
    assert all(later < earlier for earlier, later in zip(h, h[1:]))


@given(st.integers(1, 12), st.floats(-5, 5), scales)
def test_a_constant_row_stays_uniform_for_every_s(n, value, s):
    p = ssmax(np.full(n, value), s=s)
    np.testing.assert_allclose(p, 1.0 / n, rtol=1e-12)


# --------------------------------------------------------------------------- numpy vs torch, n


@given(masked_logits(), scales, biases)
def test_numpy_and_torch_agree(x, s, bias):
    np.testing.assert_allclose(softmax(torch.tensor(x)).numpy(), softmax(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ssmax(torch.tensor(x), s=s, bias=bias).numpy(),
                               ssmax(x, s=s, bias=bias), rtol=0, atol=1e-12)


@given(masked_logits(), scales)
def test_n_none_counts_the_unmasked_entries(x, s):
    counts = np.maximum(unmasked_counts(x), 1)
    np.testing.assert_array_equal(ssmax(x, s=s), ssmax(x, s=s, n=counts))


@given(masked_logits(allow_full_mask=False), scales, st.integers(1, 5000))
def test_ssmax_matches_its_formula(x, s, n):
    # written out: n^{s x_i} / Σ_j n^{s x_j} over unmasked j
    z = np.where(np.isneginf(x), -np.inf, s * math.log(n) * np.where(np.isneginf(x), 0, x))
    expected = np.exp(z - z.max(axis=-1, keepdims=True))
    expected /= expected.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(ssmax(x, s=s, n=n), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_explicit_n_broadcasts_with_dim_removed_or_kept(dim):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5))
    reduced_shape = x.shape[:dim % 3] + x.shape[dim % 3 + 1:]
    n = rng.integers(1, 50, size=reduced_shape)
    expected = softmax(np.log(np.expand_dims(n, dim % 3)) * 0.8 * x, dim=dim)
    np.testing.assert_allclose(ssmax(x, s=0.8, n=n, dim=dim), expected, rtol=1e-12)
    np.testing.assert_allclose(ssmax(x, s=0.8, n=np.expand_dims(n, dim % 3), dim=dim), expected, rtol=1e-12)
    torch_out = ssmax(torch.tensor(x), s=0.8, n=torch.tensor(n), dim=dim)
    np.testing.assert_allclose(torch_out.numpy(), expected, rtol=1e-12)


def test_n_broadcasts_from_a_trailing_shape_and_s_per_row():
    x = np.random.default_rng(1).normal(size=(4, 3, 6))
    n = np.array([2, 8, 100])              # one n per middle index, broadcast over the 4 rows
    s = np.array([[0.5], [1.0], [1.5], [2.0]])  # one s per leading index
    expected = softmax((s * np.log(n))[..., None] * x)
    np.testing.assert_allclose(ssmax(x, s=s, n=n), expected, rtol=1e-12)


# --------------------------------------------------------------------------- dtypes and devices

TORCH_TOLERANCE = {torch.float16: 4e-3, torch.bfloat16: 3e-2, torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.parametrize("dtype", list(TORCH_TOLERANCE))
@given(x=masked_logits(max_cols=16, bound=1e4, allow_full_mask=False), s=st.floats(0.0, 2.0))
@settings(max_examples=40)
def test_large_logits_stay_finite_in_every_dtype(dtype, x, s):
    t = torch.tensor(x).to(dtype)
    for p in (softmax(t), ssmax(t, s=s)):
        assert p.dtype == dtype
        assert torch.isfinite(p).all()
        sums = p.double().sum(dim=-1)
        tolerance = TORCH_TOLERANCE[dtype] * x.shape[-1]
        assert torch.allclose(sums, torch.ones_like(sums), rtol=0, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_dtype_preserved_and_large_logits_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0, -np.inf], [-1e4, -1e4 + 1, 5e3, 2.0]], dtype=dtype)
    for p in (softmax(x), ssmax(x, s=1.5)):
        assert isinstance(p, np.ndarray) and p.dtype == dtype
        assert np.all(np.isfinite(p))
        np.testing.assert_allclose(p.astype(np.float64).sum(axis=-1), 1.0, atol=4e-3)


def test_numpy_in_numpy_out_torch_in_torch_out():
    assert isinstance(ssmax([0.0, 1.0, 2.0], s=0.5), np.ndarray)
    assert isinstance(softmax(np.zeros(3)), np.ndarray)
    out = ssmax(torch.zeros(2, 3, dtype=torch.float64), s=torch.tensor(0.5))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64


def test_torch_device_preserved():
    x = torch.zeros(2, 5, device="cpu")  # the only device the test machine has
    assert ssmax(x, s=0.3).device == x.device
    assert softmax(x).device == x.device


# --------------------------------------------------------------------------- gradients


def test_gradcheck_through_ssmax_wrt_x_s_and_bias():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, dtype=torch.float64, generator=gen)
    x[0, 1] = float("-inf")
    x[2, :2] = float("-inf")
    x.requires_grad_(True)
    s = torch.tensor([[0.4], [0.9], [1.3]], dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 5, dtype=torch.float64, generator=gen)

    def loss(x, s, bias):
        return (ssmax(x, s=s.squeeze(-1), bias=bias) * weights).sum()

    assert torch.autograd.gradcheck(loss, (x, s, bias))


def test_masked_entries_get_zero_gradient():
    x = torch.tensor([[0.5, float("-inf"), 1.0]], dtype=torch.float64, requires_grad=True)
    (ssmax(x, s=0.8) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    assert x.grad[0, 1] == 0.0 and torch.isfinite(x.grad).all()


def test_ssmax_multiplier_is_s_log_n_plus_bias():
    assert math.isclose(float(ssmax_multiplier(100, s=0.5, bias=0.1)), 0.5 * math.log(100) + 0.1)
    s = torch.tensor(0.5, requires_grad=True)
    m = ssmax_multiplier(torch.tensor([1.0, 10.0]), s=s)
    m.sum().backward()
    assert math.isclose(float(s.grad), math.log(10.0), rel_tol=1e-6)
