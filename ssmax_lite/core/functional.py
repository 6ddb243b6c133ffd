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
return one of the same dtype and device). Half-precision inputs (float16,
bfloat16) are computed in float32 and cast back, so logits up to about ±1e4
stay finite.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch

from ._checks import check_count, check_dim, check_finite, check_no_nan_or_posinf

__all__ = ["softmax", "ssmax", "ssmax_multiplier", "ssmax_multiplier_of_log_n"]


def softmax(x, dim: int = -1):
    r"""Masked, numerically stable softmax along ``dim``.

    :math:`\operatorname{softmax}(x)_i = e^{x_i - m} / \sum_j e^{x_j - m}` with
    :math:`m = \max_j x_j` over the unmasked entries. Entries equal to ``-inf``
    are masked (probability 0); a fully masked row gives zeros.
    """
    return _masked_softmax(x, multiplier=None, dim=dim)


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
    is_torch = isinstance(x, torch.Tensor)
    x_arr = x if is_torch else np.asarray(x)
    dim = check_dim(dim, x_arr.ndim)
    check_finite(s, "s")
    check_finite(bias, "bias")
    if n is None:
        n = _count_unmasked(x_arr, dim)  # may be 0 for fully masked rows: those rows are 0
        n = torch.clamp(n, min=1) if is_torch else np.maximum(n, 1)
    else:
        check_count(n, "n")
    # each of n, s, bias gets its own shape check (the error names it) and the reduced axis back,
    # so that a keepdim-shaped n and a reduced-shaped s cannot broadcast against each other wrongly
    n, s, bias = (_insert_reduced_axis(value, x_arr, dim, name)
                  for value, name in ((n, "n"), (s, "s"), (bias, "bias")))
    multiplier = ssmax_multiplier(n, s=s, bias=bias, like=x_arr)
    return _masked_softmax(x_arr, multiplier=multiplier, dim=dim)


def ssmax_multiplier(n, s=1.0, bias=0.0, like=None):
    r"""The factor SSMax multiplies logits by: :math:`s \log n + b` (natural log).

    ``like`` (an array or tensor) decides the return type; a torch result keeps
    the autograd graph of ``s`` and ``bias``.
    """
    if isinstance(like, torch.Tensor) or any(isinstance(v, torch.Tensor) for v in (n, s, bias)):
        dtype = _compute_dtype(like.dtype) if isinstance(like, torch.Tensor) else torch.get_default_dtype()
        device = like.device if isinstance(like, torch.Tensor) else None
        return ssmax_multiplier_of_log_n(torch.log(torch.as_tensor(n, dtype=dtype, device=device)), s, bias)
    return ssmax_multiplier_of_log_n(np.log(np.asarray(n, dtype=np.float64)), s, bias)


def ssmax_multiplier_of_log_n(log_n, s=1.0, bias=None):
    r""":math:`s \log n + b` from :math:`\log n`: the one place the SSMax formula is written.

    :func:`ssmax_multiplier`, the attention function and the ``ssmax`` kinds of the
    registry all call it; the attention paths pass a cached ``log n``. ``bias=None``
    skips the addition. No checks: the callers check their arguments.
    """
    multiplier = s * log_n
    return multiplier if bias is None else multiplier + bias


# --------------------------------------------------------------------------- helpers


def _compute_dtype(dtype):
    """float16/bfloat16 are computed in float32; float32 and float64 stay as they are."""
    if isinstance(dtype, torch.dtype):
        return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    return np.float32 if dtype == np.float16 else dtype


def _count_unmasked(x, dim: int):
    """Number of entries along ``dim`` that are not ``-inf``, with ``dim`` removed."""
    if isinstance(x, torch.Tensor):
        return (~torch.isneginf(x)).sum(dim=dim)
    return np.sum(~np.isneginf(x), axis=dim)


def _insert_reduced_axis(value, x, dim: int, name: str):
    """Make ``value`` (given with ``dim`` removed, or kept as size 1) broadcast against ``x``."""
    if isinstance(value, Real):
        return value  # a plain number broadcasts as it is
    if isinstance(x, torch.Tensor) and not isinstance(value, torch.Tensor):
        value = torch.as_tensor(np.asarray(value), device=x.device)
    elif not isinstance(x, torch.Tensor):
        value = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if value.ndim == 0:
        return value
    if value.ndim == x.ndim:  # keepdim form
        if value.shape[dim] != 1:
            raise ValueError(f"{name} has shape {tuple(value.shape)}: with as many dimensions as x "
                             f"{tuple(x.shape)} it must have size 1 along dim={dim}")
        target = tuple(x.shape)
    else:
        target = tuple(x.shape[:dim]) + tuple(x.shape[dim + 1:])
    try:
        fits = tuple(np.broadcast_shapes(tuple(value.shape), target)) == target
    except ValueError:
        fits = False
    if not fits:  # also refuses shapes that would enlarge x's own shape
        raise ValueError(f"{name} has shape {tuple(value.shape)}, which does not broadcast against "
                         f"x's shape {tuple(x.shape)} with dim={dim} removed")
    if value.ndim == x.ndim:
        return value
    # left-pad to the reduced rank, then put the reduced axis back at ``dim``
    shape = (1,) * (len(target) - value.ndim) + tuple(value.shape)
    shape = shape[:dim] + (1,) + shape[dim:]
    return value.reshape(shape)


def _check_nonempty(x, dim: int) -> None:
    if x.shape[dim] == 0:
        raise ValueError(f"x has size 0 along dim={dim}: a distribution needs at least one entry")


def _masked_softmax(x, multiplier, dim: int, reduced: bool = False):
    """softmax(multiplier * x) along ``dim``; -inf entries masked; fully masked rows give 0."""
    if isinstance(x, torch.Tensor):
        return _masked_softmax_torch(x, multiplier, dim, reduced)
    return _masked_softmax_numpy(np.asarray(x), multiplier, dim, reduced)


def _masked_softmax_torch(x: torch.Tensor, multiplier, dim: int, reduced: bool):
    if not torch.is_floating_point(x):
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    dim = check_dim(dim, x.ndim)
    _check_nonempty(x, dim)
    check_no_nan_or_posinf(x)
    work = x.to(_compute_dtype(x.dtype))
    masked = torch.isneginf(work)
    safe = torch.where(masked, torch.zeros_like(work), work)  # keeps -inf out of the gradient
    if multiplier is not None:
        if reduced:
            multiplier = _insert_reduced_axis(multiplier, work, dim, "n, s or bias")
        safe = safe * multiplier.to(work.dtype) if isinstance(multiplier, torch.Tensor) \
            else safe * float(multiplier)
    if torch.isinf(safe).any():
        raise ValueError("the scaled logits (s·log n + bias)·x overflow; reduce s, bias or |x|")
    z = torch.where(masked, torch.full_like(safe, float("-inf")), safe)
    z_max = z.detach().amax(dim=dim, keepdim=True)
    z_max = torch.where(torch.isfinite(z_max), z_max, torch.zeros_like(z_max))  # fully masked rows
    e = torch.exp(z - z_max)
    total = e.sum(dim=dim, keepdim=True)
    out = e / torch.where(total > 0, total, torch.ones_like(total))
    return out.to(x.dtype)


def _masked_softmax_numpy(x: np.ndarray, multiplier, dim: int, reduced: bool):
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    dim = check_dim(dim, x.ndim)
    _check_nonempty(x, dim)
    check_no_nan_or_posinf(x)
    work = x.astype(_compute_dtype(x.dtype))
    masked = np.isneginf(work)
    safe = np.where(masked, 0.0, work).astype(work.dtype)
    if multiplier is not None:
        if reduced:
            multiplier = _insert_reduced_axis(multiplier, work, dim, "n, s or bias")
        with np.errstate(over="ignore"):
            safe = (safe * multiplier).astype(work.dtype)
    if np.isinf(safe).any():
        raise ValueError("the scaled logits (s·log n + bias)·x overflow; reduce s, bias or |x|")
    z = np.where(masked, -np.inf, safe)
    z_max = np.max(z, axis=dim, keepdims=True)
    z_max = np.where(np.isfinite(z_max), z_max, 0.0)
    e = np.exp(z - z_max)
    total = np.sum(e, axis=dim, keepdims=True)
    out = e / np.where(total > 0, total, 1.0)
    return out.astype(x.dtype)
