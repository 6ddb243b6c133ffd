r"""Attention fading in numbers: how the largest softmax / SSMax weight behaves as n grows.

The chapters plot these quantities for n up to :math:`10^6`. A logit vector made of a few distinct
values repeated many times ("one strong logit among n-1 equal ones") is handled in closed form
through the counts of equal logits, so no vector of length n is ever built:

.. math::

    w_k = \frac{e^{m z_k}}{\sum_j c_j e^{m z_j}}
        = \frac{\operatorname{softmax}(m z + \log c)_k}{c_k},

where value :math:`z_k` appears :math:`c_k` times and :math:`m` is the logit multiplier
(:math:`m = 1` for softmax, :math:`m = s \log n` for SSMax). For one logit :math:`\Delta` above
:math:`n-1` equal others this gives the top weight

.. math::

    \text{softmax:}\ \frac{1}{1 + (n-1)\,e^{-\Delta}}, \qquad
    \text{SSMax:}\ \frac{1}{1 + (n-1)\,n^{-s\Delta}} \approx \frac{1}{1 + n^{1 - s\Delta}} .

Everything here is numpy and goes through :func:`ssmax_lite.softmax` / :func:`ssmax_lite.ssmax`.
"""

from __future__ import annotations

import numpy as np

from ..core._checks import check_count, check_finite
from ..core.functional import softmax, ssmax, ssmax_multiplier

__all__ = [
    "entropy",
    "fading_bound",
    "gaussian_logit_stats",
    "grouped_entropy",
    "grouped_weights",
    "multiplier_for_top_weight",
    "one_strong_logit_top_weight",
]


def grouped_weights(values, counts, multiplier=1.0):
    r"""Weight of *one* entry of each group: :math:`w_k = e^{m z_k} / \sum_j c_j e^{m z_j}`.

    Args:
        values: the distinct logits :math:`z_k`, shape ``(..., K)``.
        counts: how often each appears, :math:`c_k \ge 0`, broadcastable to ``values``. A group with
            count 0 is absent (weight 0).
        multiplier: :math:`m`, broadcastable to ``values`` with the last axis removed
            (1 for softmax, :math:`s \log n` for SSMax).

    Returns:
        ``w`` with the shape of ``values``; the whole distribution sums to 1: :math:`\sum_k c_k w_k = 1`.
    """
    values = np.asarray(values, dtype=np.float64)
    counts = np.broadcast_to(np.asarray(counts, dtype=np.float64), values.shape)
    check_finite(values, "values")
    check_finite(counts, "counts")
    if np.any(counts < 0):
        raise ValueError(f"counts must be >= 0 (how often each logit appears), got {counts!r}")
    multiplier = np.asarray(multiplier, dtype=np.float64)
    check_finite(multiplier, "multiplier")
    with np.errstate(divide="ignore"):
        log_counts = np.log(counts)  # log 0 = -inf: softmax masks an absent group
    group_mass = softmax(multiplier[..., None] * values + log_counts)
    return np.divide(group_mass, counts, out=np.zeros_like(group_mass), where=counts > 0)


def one_strong_logit_top_weight(n, gap, *, s=None):
    r"""Top weight when one logit is ``gap`` above ``n - 1`` equal ones.

    softmax (``s=None``): :math:`1 / (1 + (n-1) e^{-\Delta})`;
    SSMax with parameter ``s``: :math:`1 / (1 + (n-1) n^{-s\Delta})`.
    Only the gap matters, not the level of the logits. ``n``, ``gap`` and ``s`` broadcast.
    """
    n = np.asarray(n, dtype=np.float64)
    gap = np.asarray(gap, dtype=np.float64)
    check_count(n, "n")
    check_finite(gap, "gap")
    n, gap = np.broadcast_arrays(n, gap)
    multiplier = np.ones_like(n) if s is None else ssmax_multiplier(n, s=s)
    values = np.stack([gap, np.zeros_like(gap)], axis=-1)
    counts = np.stack([np.ones_like(n), n - 1.0], axis=-1)
    return grouped_weights(values, counts, multiplier)[..., 0]


def fading_bound(n, logit_range):
    r"""Upper bound on the largest softmax weight of n logits spanning ``logit_range``:

    .. math:: \max_i \operatorname{softmax}(z)_i \le \frac{1}{(n-1)\,e^{-(z_{\max} - z_{\min})} + 1}.

    (The top entry's weight is largest when the other n-1 all sit at :math:`z_{\min}`.) With a
    bounded range it goes to 0 as n grows: softmax attention fades.
    """
    n = np.asarray(n, dtype=np.float64)
    logit_range = np.asarray(logit_range, dtype=np.float64)
    check_count(n, "n")
    check_finite(logit_range, "logit_range")
    if np.any(logit_range < 0):
        raise ValueError(f"logit_range must be z_max - z_min >= 0, got {logit_range!r}")
    return 1.0 / ((n - 1.0) * np.exp(-logit_range) + 1.0)


def entropy(p, axis: int = -1):
    r"""Shannon entropy in nats, :math:`H(p) = -\sum_i p_i \log p_i` (with :math:`0 \log 0 = 0`)."""
    p = np.asarray(p, dtype=np.float64)
    check_finite(p, "p")
    if np.any(p < 0):
        raise ValueError("p must be a probability distribution (entries >= 0)")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -np.sum(terms, axis=axis)


def grouped_entropy(values, counts, multiplier=1.0):
    r"""Entropy of the distribution of :func:`grouped_weights`: :math:`-\sum_k c_k w_k \log w_k`."""
    counts = np.broadcast_to(np.asarray(counts, dtype=np.float64), np.shape(values))
    w = grouped_weights(values, counts, multiplier)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(w > 0, counts * w * np.log(np.where(w > 0, w, 1.0)), 0.0)
    return -np.sum(terms, axis=-1)


def multiplier_for_top_weight(n, gap, target):
    r"""The fixed logit multiplier (inverse temperature) :math:`\beta` that gives top weight ``target``
    at size ``n`` in the one-strong-logit case:

    .. math:: \frac{1}{1 + (n-1) e^{-\beta\Delta}} = t
              \iff \beta = \frac{1}{\Delta} \log\frac{t\,(n-1)}{1-t}.
    """
    n = np.asarray(n, dtype=np.float64)
    gap = np.asarray(gap, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    check_count(n, "n")
    if np.any(n < 2):
        raise ValueError(f"n must be >= 2 (with one key the weight is always 1), got {n!r}")
    if np.any(gap <= 0) or not np.all(np.isfinite(gap)):
        raise ValueError(f"gap must be finite and > 0, got {gap!r}")
    if np.any((target <= 0) | (target >= 1)):
        raise ValueError(f"target must be a weight strictly between 0 and 1, got {target!r}")
    return np.log(target * (n - 1.0) / (1.0 - target)) / gap


def gaussian_logit_stats(ns, *, sigma=1.0, draws=8, s=None, seed=0):
    r"""Largest weight, entropy and logit range for i.i.d. Gaussian logits :math:`z_i \sim N(0, \sigma^2)`.

    For every n in ``ns`` draws ``draws`` vectors of n logits (seeded, so the result is reproducible)
    and applies softmax (``s=None``) or SSMax with parameter ``s``. ``sigma`` is :math:`\sigma`.

    Returns:
        dict of arrays of shape ``(draws, len(ns))``: ``"max_weight"``, ``"entropy"``,
        ``"logit_range"`` (:math:`z_{\max} - z_{\min}` of each draw).
    """
    ns = [int(n) for n in np.atleast_1d(ns)]
    check_count(np.asarray(ns), "ns")
    check_finite(sigma, "sigma")
    if sigma < 0:
        raise ValueError(f"sigma must be the standard deviation of the logits, >= 0; got {sigma!r}")
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws must be a positive int, got {draws!r}")
    rng = np.random.default_rng(seed)
    stats = {key: np.empty((draws, len(ns))) for key in ("max_weight", "entropy", "logit_range")}
    for j, n in enumerate(ns):
        z = sigma * rng.standard_normal((draws, n))
        p = softmax(z) if s is None else ssmax(z, s=s)
        stats["max_weight"][:, j] = p.max(axis=-1)
        stats["entropy"][:, j] = entropy(p)
        stats["logit_range"][:, j] = z.max(axis=-1) - z.min(axis=-1)
    return stats
