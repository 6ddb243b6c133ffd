"""Argument checks shared by the public functions.

Every check raises ``ValueError`` with a message that names the argument and
says what is accepted, so that bad input never turns into a silent NaN.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch


def check_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """Return ``dim`` as a non-negative axis index of an ``ndim``-dimensional array."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ValueError(f"{name} must be an int axis index, got {dim!r}")
    if ndim == 0:
        raise ValueError("x must have at least one dimension, got a 0-d array")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}={dim} is out of range for an input with {ndim} dimension(s); "
                         f"accepted: {-ndim} to {ndim - 1}")
    return dim % ndim


def check_finite(value, name: str) -> None:
    """Raise unless every entry of ``value`` (a float, numpy array or tensor) is finite."""
    if isinstance(value, torch.Tensor) and value.device.type == "cpu" and value.dtype != torch.bfloat16:
        ok = bool(np.isfinite(value.detach().numpy()).all())  # for a few values, numpy is ~10× quicker
    elif isinstance(value, torch.Tensor):
        ok = bool(torch.isfinite(value.detach()).all())
    elif isinstance(value, Real):
        ok = math.isfinite(float(value))
    else:
        try:
            ok = bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real number or an array of real numbers, "
                             f"got {type(value).__name__}") from None
    if not ok:
        raise ValueError(f"{name} must be finite (no NaN or inf), got {value!r}")


def check_finite_where_free(value: torch.Tensor, name: str) -> None:
    """``check_finite`` for a tensor where reading its values costs nothing: on the CPU, outside
    ``torch.compile``. Elsewhere it is skipped, because the read would make the CPU wait for the
    GPU (a host sync) or break the compiled graph; the value is then the caller's to check."""
    if value.device.type == "cpu" and not torch.compiler.is_compiling():
        check_finite(value, name)


def check_count(n, name: str = "n") -> None:
    """Raise unless ``n`` (a number of keys) is finite and at least 1 everywhere."""
    check_finite(n, name)
    if isinstance(n, torch.Tensor):
        ok = bool((n.detach() >= 1).all())
    else:
        ok = bool(np.all(np.asarray(n, dtype=np.float64) >= 1))
    if not ok:
        raise ValueError(f"{name} must be >= 1 (it counts the keys a query attends to), got {n!r}")


def check_no_nan_or_posinf(x, name: str = "x") -> None:
    """Logits may be finite or -inf (masked); NaN and +inf have no meaning as logits."""
    if isinstance(x, torch.Tensor):
        bad = bool((torch.isnan(x) | torch.isposinf(x)).any())
    else:
        bad = bool(np.any(np.isnan(x) | np.isposinf(x)))
    if bad:
        raise ValueError(f"{name} must hold finite logits or -inf for masked entries; "
                         f"it contains NaN or +inf")
