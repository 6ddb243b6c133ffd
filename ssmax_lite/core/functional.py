r"""Softmax and Scalable-Softmax (SSMax) on numpy arrays and torch tensors.

For logits :math:`z_1, \dots, z_n` (the entries along ``dim`` that are not masked),

.. math::

    \operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}, \qquad
    \operatorname{SSMax}(z)_i = \frac{n^{s z_i}}{\sum_j n^{s z_j}}
                             = \operatorname{softmax}\big((s \log n + b)\, z\big)_i ,

with ``b = 0`` in the paper's main form (Nakanishi 2025, arXiv 2501.19399) and a
learned ``b`` in its bias variant. Masked entries are written as ``-inf``: they
get probability exactly 0 and do not count towards ``n``. A row whose every
entry is masked returns zeros, never NaN.

Both functions accept a numpy array (and return one) or a torch tensor (and
return one of the same dtype and device); a numpy array is computed as a torch
tensor of its own dtype. Half-precision inputs (float16, bfloat16) are computed in
float32 and cast back, so logits up to about ±1e4 stay finite.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch

from ._checks import check_count, check_dim, check_finite, check_no_nan_or_posinf

__all__ = ["softmax", "ssmax", "ssmax_multiplier"]


def softmax(x, dim: int = -1):
    r"""Masked, numerically stable softmax along ``dim``.

    :math:`\operatorname{softmax}(x)_i = e^{x_i - m} / \sum_j e^{x_j - m}` with
    :math:`m = \max_j x_j` over the unmasked entries. Entries equal to ``-inf``
    are masked (probability 0); a fully masked row gives zeros.
    """
    return _on_torch(x, lambda t: _masked_softmax(t, None, check_dim(dim, t.ndim)))


def ssmax(x, s=1.0, n=None, dim: int = -1, bias=0.0):
    r"""Scalable-Softmax along ``dim``: :math:`\operatorname{softmax}((s \log n + b)\, x)`.

    Args:
        x: logits (numpy array or torch tensor). ``-inf`` marks a masked entry.
        s: the scaling parameter, a float or an array/tensor broadcastable like ``n``.
            Larger ``s`` gives a sharper distribution. Must be finite.
        n: the input size in :math:`n^{s x_i}`. ``None`` (default) counts, for every
            row, the entries along ``dim`` that are not ``-inf``. Otherwise an int, or
            an array/tensor broadcastable against ``x`` with ``dim`` removed (or with
            ``dim`` kept as size 1). Must be >= 1.
        dim: the axis that is normalised.
        bias: the additive term ``b`` of the paper's bias variant; must be finite.

    Returns:
        The distribution, same type, shape, dtype (and device) as ``x``. With
        ``s·log n + bias = 1`` it equals :func:`softmax`.
    """
    check_finite(s, "s")
    check_finite(bias, "bias")
    if n is not None:
        check_count(n, "n")

    def compute(t):
        axis = check_dim(dim, t.ndim)
        counts = (~torch.isneginf(t)).sum(dim=axis).clamp(min=1) if n is None else n  # 0 for a fully masked row
        # each of n, s, bias gets its own shape check (the error names it) and the reduced axis back
        counts, scale, offset = (_insert_reduced_axis(value, t, axis, name)
                                 for value, name in ((counts, "n"), (s, "s"), (bias, "bias")))
        return _masked_softmax(t, ssmax_multiplier(counts, s=scale, bias=offset, like=t), axis)

    return _on_torch(x, compute)


def ssmax_multiplier(n, s=1.0, bias=0.0, like=None):
    r"""The factor SSMax multiplies logits by: :math:`s \log n + b` (natural log).

    Returns a torch tensor when ``like`` or any argument is one (on ``like``'s device, in its compute
    dtype, keeping the autograd graph of ``s`` and ``bias``), else a numpy array.
    """
    if isinstance(like, torch.Tensor) or any(isinstance(v, torch.Tensor) for v in (n, s, bias)):
        dtype = _compute_dtype(like.dtype) if isinstance(like, torch.Tensor) else torch.get_default_dtype()
        device = like.device if isinstance(like, torch.Tensor) else None
        return s * torch.log(torch.as_tensor(n, dtype=dtype, device=device)) + bias
    return s * np.log(np.asarray(n, dtype=np.float64)) + bias


# --------------------------------------------------------------------------- helpers


def _on_torch(x, compute):
    """``compute`` a tensor; a numpy array (or list) goes in as a tensor of its dtype and comes back as numpy."""
    if isinstance(x, torch.Tensor):
        if not torch.is_floating_point(x):
            raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        return compute(x)
    array = np.asarray(x)
    array = array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float64)
    return compute(torch.as_tensor(array)).numpy()


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 are computed in float32; float32 and float64 stay as they are."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _insert_reduced_axis(value, x: torch.Tensor, dim: int, name: str):
    """Make ``value`` (given with ``dim`` removed, or kept as size 1) broadcast against ``x``."""
    if isinstance(value, Real):
        return value  # a plain number broadcasts as it is
    value = (value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))).to(x.device)
    if value.ndim == 0:
        return value
    keepdim = value.ndim == x.ndim
    if keepdim and value.shape[dim] != 1:
        raise ValueError(f"{name} has shape {tuple(value.shape)}: with as many dimensions as x "
                         f"{tuple(x.shape)} it must have size 1 along dim={dim}")
    target = tuple(x.shape) if keepdim else tuple(x.shape[:dim]) + tuple(x.shape[dim + 1:])
    # it broadcasts against target without enlarging it: each trailing size is 1 or target's
    if value.ndim > len(target) or any(v not in (1, t) for v, t in zip(value.shape[::-1], target[::-1])):
        raise ValueError(f"{name} has shape {tuple(value.shape)}, which does not broadcast against "
                         f"x's shape {tuple(x.shape)} with dim={dim} removed")
    if keepdim:
        return value
    shape = (1,) * (len(target) - value.ndim) + tuple(value.shape)  # left-pad, then the reduced axis back
    return value.reshape(shape[:dim] + (1,) + shape[dim:])


def _masked_softmax(x: torch.Tensor, multiplier, dim: int) -> torch.Tensor:
    """softmax(multiplier · x) along ``dim``; -inf entries masked; fully masked rows give 0."""
    if x.shape[dim] == 0:
        raise ValueError(f"x has size 0 along dim={dim}: a distribution needs at least one entry")
    check_no_nan_or_posinf(x)
    work = x.to(_compute_dtype(x.dtype))
    masked = torch.isneginf(work)
    safe = torch.where(masked, torch.zeros_like(work), work)  # keeps -inf out of the gradient
    if multiplier is not None:
        safe = safe * (multiplier.to(work.dtype) if isinstance(multiplier, torch.Tensor) else float(multiplier))
    if torch.isinf(safe).any():
        raise ValueError("the scaled logits (s·log n + bias)·x overflow; reduce s, bias or |x|")
    z = torch.where(masked, torch.full_like(safe, float("-inf")), safe)
    z_max = z.detach().amax(dim=dim, keepdim=True)
    z_max = torch.where(torch.isfinite(z_max), z_max, torch.zeros_like(z_max))  # fully masked rows
    e = torch.exp(z - z_max)
    total = e.sum(dim=dim, keepdim=True)
    return (e / torch.where(total > 0, total, torch.ones_like(total))).to(x.dtype)
