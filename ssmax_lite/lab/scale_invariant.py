r"""Scale-invariant attention (Anson, Wang & Aitchison 2025, arXiv 2505.17083), an explicit-logit path.

For one query and the key :math:`t` steps back from it (:math:`t = 0` is the query's own key,
:math:`t = 1` the previous token), with the usual score :math:`S_t = q \cdot k_t / \sqrt{d}`, the paper
replaces the logit :math:`S_t` by

.. math::

    L_t = a_t S_t + m_t, \qquad
    a_t = \sqrt{2\,[\ln(t/\tau + 1) - \ln\alpha + \beta/\alpha]}, \qquad
    m_t = -a_t^2 + \beta/\alpha

(its Eq. 16). For standard normal scores this gives :math:`\mathbb{E}[e^{L_t}] = \alpha/(t/\tau + 1)`, so the
expected total weight of every range :math:`[t, t\Delta)` of keys stays about the same however far back it
lies (the paper's "scale-invariant total attention"), and :math:`\mathbb{E}[e^{L_t} L_t] =
\beta/(t/\tau + 1)`. The paper's boundary condition :math:`a_0 = 1, m_0 = 0` (the nearest keys are left
unscaled) fixes :math:`\alpha = \beta = e^{1/2}`, which leaves

.. math::

    a_t^2 = 1 + 2 \ln(1 + t/\tau), \qquad m_t = -2 \ln(1 + t/\tau),

with one hyperparameter, the length scale :math:`\tau` (the paper found :math:`\tau = 10` best of
:math:`10^{-2} \dots 10^{2}`). Nothing is learned.

Where SSMax multiplies every logit of a query by the same :math:`s \log n` (so the multiplier can be
folded into the query and a fused kernel does the rest), :math:`a_t` and :math:`m_t` depend on the key's
distance, so no query scaling can express them: :func:`scale_invariant_attention` builds the logits
explicitly (in blocks of queries, so that long evaluations do not hold a full :math:`L \times L` matrix
per head at once). :math:`n` keys need :math:`O(n)` memory per query row, which is fine at the book's
lengths; the paper used FlexAttention's ``score_mod`` on a GPU.
"""

from __future__ import annotations

import math

import torch

__all__ = ["ALPHA", "BETA", "DEFAULT_TAU", "scale_invariant_coefficients", "scale_invariant_logits",
           "scale_invariant_attention"]

ALPHA = BETA = math.exp(0.5)
"""The paper's :math:`\\alpha = \\beta = e^{1/2}`, from its boundary condition :math:`a_0 = 1`, :math:`m_0 = 0`."""

DEFAULT_TAU = 10.0
"""The paper's length scale :math:`\\tau` (the best of the five it tried)."""

_QUERY_BLOCK = 512  # queries per block of the explicit path


def scale_invariant_coefficients(distance: torch.Tensor, tau: float = DEFAULT_TAU, *, alpha: float = ALPHA,
                                 beta: float = BETA) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(a_t, m_t)`` for distances ``t >= 0`` (a float tensor): :math:`a_t = \sqrt{2[\ln(t/\tau+1) -
    \ln\alpha + \beta/\alpha]}`, :math:`m_t = -a_t^2 + \beta/\alpha`.

    With the defaults, :math:`a_0 = 1` and :math:`m_0 = 0`. The paper requires :math:`\beta \ge
    \alpha\ln\alpha`, so that :math:`a_t^2 \ge 0` for every :math:`t \ge 0`; a ``ValueError`` otherwise.
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0, got {tau!r}")
    if not (alpha > 0 and beta > 0 and beta >= alpha * math.log(alpha)):
        raise ValueError(f"alpha and beta must be > 0 with beta >= alpha·ln(alpha), got {alpha!r}, {beta!r}")
    a_squared = 2 * (torch.log1p(distance / tau) - math.log(alpha) + beta / alpha)
    return a_squared.sqrt(), beta / alpha - a_squared


def _distances(n_queries: int, n_keys: int, first: int, last: int, device, dtype) -> torch.Tensor:
    """``t = (query position) - (key position)`` for queries ``first … last-1`` of the last ``n_queries``
    of ``n_keys`` positions (a new query sees every cached key), shape ``(last - first, n_keys)``."""
    query_pos = torch.arange(first, last, device=device) + (n_keys - n_queries)
    return (query_pos[:, None] - torch.arange(n_keys, device=device)[None, :]).to(dtype)


def scale_invariant_logits(query: torch.Tensor, key: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    r"""The causal logits :math:`L_t = a_t\,(q \cdot k / \sqrt{d}) + m_t`, ``(…, L_q, L_k)``, with
    :math:`-\infty` where the key lies after the query (query ``i`` of the last ``L_q`` of ``L_k``
    positions sees keys ``0 … L_k - L_q + i``). Computed in float32 for half-precision inputs."""
    return _logits(query, key, tau, 0, query.shape[-2])


def _logits(query, key, tau, first, last):
    work = torch.float64 if query.dtype == torch.float64 else torch.float32
    n_queries, n_keys = query.shape[-2], key.shape[-2]
    t = _distances(n_queries, n_keys, first, last, query.device, work)
    a, m = scale_invariant_coefficients(t.clamp(min=0), tau)
    scores = (query[..., first:last, :] @ key.transpose(-1, -2)).to(work) / math.sqrt(query.shape[-1])
    return (a * scores + m).masked_fill(t < 0, float("-inf"))


def scale_invariant_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                              tau: float = DEFAULT_TAU) -> torch.Tensor:
    r"""Causal scale-invariant attention, ``softmax(L) V`` with :math:`L` from :func:`scale_invariant_logits`.

    ``query (…, L_q, E)``, ``key (…, L_k, E)``, ``value (…, L_k, E_v)`` with ``L_q <= L_k``; returns
    ``(…, L_q, E_v)`` in ``query``'s dtype. Every query sees at least its own key, so no row is empty.
    """
    if query.dim() < 2 or key.shape[-1] != query.shape[-1] or key.shape[-2] != value.shape[-2] \
            or query.shape[-2] > key.shape[-2]:
        raise ValueError(f"query (…, L_q, E), key (…, L_k, E) and value (…, L_k, E_v) with L_q <= L_k, got "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    n_queries = query.shape[-2]
    blocks = []
    for first in range(0, n_queries, _QUERY_BLOCK):
        logits = _logits(query, key, tau, first, min(first + _QUERY_BLOCK, n_queries))
        blocks.append(torch.softmax(logits, dim=-1).to(value.dtype) @ value)
    return torch.cat(blocks, dim=-2) if len(blocks) > 1 else blocks[0]
