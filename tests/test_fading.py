"""ssmax_lite.lab.fading: the closed forms the chapters plot agree with softmax/SSMax on explicit vectors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmax_lite import softmax, ssmax
from ssmax_lite.lab.fading import (
    entropy,
    fading_bound,
    gaussian_logit_stats,
    grouped_entropy,
    grouped_weights,
    multiplier_for_top_weight,
    one_strong_logit_top_weight,
)

finite_logits = st.floats(min_value=-20, max_value=20, allow_nan=False)


def expand(values, counts):
    """The explicit logit vector: values[k] repeated counts[k] times."""
    return np.repeat(np.asarray(values, dtype=float), np.asarray(counts, dtype=int))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite_logits, min_size=1, max_size=5),
       counts=st.lists(st.integers(0, 40), min_size=5, max_size=5),
       multiplier=st.floats(0.0, 3.0))
def test_grouped_weights_equal_softmax_of_the_expanded_vector(values, counts, multiplier):
    counts = counts[:len(values)]
    if sum(counts) == 0:
        counts[0] = 1
    w = grouped_weights(values, counts, multiplier)
    explicit = softmax(multiplier * expand(values, counts))
    np.testing.assert_allclose(np.repeat(w, counts), explicit, rtol=1e-10, atol=1e-300)
    assert np.sum(np.asarray(counts) * w) == pytest.approx(1.0)


def test_top_weight_matches_explicit_vectors_in_the_papers_figure_1_case():
    # -2 everywhere, +3 once (gap 5); SSMax with s = 0.43.
    for n in (10, 100, 1000, 100_000):
        z = np.full(n, -2.0)
        z[-1] = 3.0
        assert one_strong_logit_top_weight(n, 5.0) == pytest.approx(softmax(z)[-1], rel=1e-12)
        assert one_strong_logit_top_weight(n, 5.0, s=0.43) == pytest.approx(ssmax(z, s=0.43)[-1], rel=1e-12)


def test_top_weight_closed_forms():
    n = np.array([2.0, 10.0, 1e3, 1e6])
    np.testing.assert_allclose(one_strong_logit_top_weight(n, 3.0), 1 / (1 + (n - 1) * np.exp(-3.0)))
    np.testing.assert_allclose(one_strong_logit_top_weight(n, 3.0, s=0.5), 1 / (1 + (n - 1) * n ** -1.5))
    assert one_strong_logit_top_weight(1, 2.0) == 1.0  # a single key gets everything
    # at s·gap = 1 the SSMax top weight is exactly n / (2n - 1), which tends to 1/2
    np.testing.assert_allclose(one_strong_logit_top_weight(n, 2.0, s=0.5), n / (2 * n - 1))


@settings(max_examples=60, deadline=None)
@given(z=st.lists(finite_logits, min_size=1, max_size=60))
def test_fading_bound_holds_for_any_logits(z):
    z = np.asarray(z)
    bound = fading_bound(z.size, z.max() - z.min())
    assert softmax(z).max() <= bound * (1 + 1e-12)


def test_fading_bound_is_reached_by_one_strong_logit():
    n = np.array([3, 50, 10**5])
    np.testing.assert_allclose(fading_bound(n, 4.0), one_strong_logit_top_weight(n, 4.0))


def test_entropy_of_uniform_and_one_hot():
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(np.log(8))
    assert entropy(np.array([0.0, 1.0, 0.0])) == 0.0


@settings(max_examples=40, deadline=None)
@given(values=st.lists(finite_logits, min_size=2, max_size=4),
       counts=st.lists(st.integers(1, 30), min_size=4, max_size=4),
       multiplier=st.floats(0.0, 2.0))
def test_grouped_entropy_equals_entropy_of_the_expanded_distribution(values, counts, multiplier):
    counts = counts[:len(values)]
    explicit = softmax(multiplier * expand(values, counts))
    assert grouped_entropy(values, counts, multiplier) == pytest.approx(entropy(explicit), abs=1e-9)


def test_multiplier_for_top_weight_round_trip():
    n, gap = 1000, 2.0
    beta = multiplier_for_top_weight(n, gap, 0.9)
    z = np.zeros(n)
    z[0] = gap
    assert softmax(beta * z)[0] == pytest.approx(0.9)


def test_gaussian_logit_stats_are_seeded_and_respect_the_bound():
    ns = [10, 100, 1000]
    a = gaussian_logit_stats(ns, sigma=1.5, draws=4, seed=3)
    b = gaussian_logit_stats(ns, sigma=1.5, draws=4, seed=3)
    for key in ("max_weight", "entropy", "logit_range"):
        assert a[key].shape == (4, 3)
        np.testing.assert_array_equal(a[key], b[key])
    assert np.all(a["max_weight"] <= fading_bound(np.array(ns), a["logit_range"]))
    assert np.all(a["entropy"] <= np.log(ns) + 1e-12)


def test_gaussian_logit_stats_with_ssmax_uses_ssmax():
    stats = gaussian_logit_stats([50], sigma=1.0, draws=2, s=0.8, seed=0)
    z = 1.0 * np.random.default_rng(0).standard_normal((2, 50))
    np.testing.assert_allclose(stats["max_weight"][:, 0], ssmax(z, s=0.8).max(axis=-1))


@pytest.mark.parametrize("call, word", [
    (lambda: grouped_weights([1.0, 2.0], [1, -1]), "counts"),
    (lambda: grouped_weights([1.0, np.nan], [1, 1]), "values"),
    (lambda: grouped_weights([1.0, 2.0], [1, 1], multiplier=np.inf), "multiplier"),
    (lambda: one_strong_logit_top_weight(0, 1.0), "n"),
    (lambda: one_strong_logit_top_weight(10, np.nan), "gap"),
    (lambda: fading_bound(10, -1.0), "logit_range"),
    (lambda: entropy([0.5, -0.5]), "p"),
    (lambda: multiplier_for_top_weight(10, 1.0, 1.0), "target"),
    (lambda: multiplier_for_top_weight(10, 0.0, 0.5), "gap"),
    (lambda: multiplier_for_top_weight(1, 1.0, 0.5), "n"),
    (lambda: gaussian_logit_stats([10], sigma=-1.0), "sigma"),
    (lambda: gaussian_logit_stats([10], draws=0), "draws"),
    (lambda: gaussian_logit_stats([0]), "ns"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()
