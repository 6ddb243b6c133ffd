"""Argument checks of :func:`~ssmax_lite.core.functional.softmax` and :func:`~ssmax_lite.core.functional.ssmax`.

Every check raises ``ValueError`` with a message that names the argument and says what is accepted, so that
bad input never turns into a silent NaN. They read values (on the CPU): the attention call, which must not
stall a GPU, checks only shapes and dtypes instead (:mod:`ssmax_lite.core.attention`).
"""

from __future__ import annotations

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


def _as_float64(value, name: str) -> np.ndarray:
    try:
        if isinstance(value, torch.Tensor):
            return value.detach().to("cpu", torch.float64).numpy()
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number or an array of real numbers, "
                         f"got {type(value).__name__}") from None


def check_finite(value, name: str) -> None:
    """Raise unless every entry of ``value`` (a number, numpy array or tensor) is finite."""
    if not np.isfinite(_as_float64(value, name)).all():
        raise ValueError(f"{name} must be finite (no NaN or inf), got {value!r}")


def check_count(n, name: str = "n") -> None:
    """Raise unless ``n`` (a number of keys) is finite and at least 1 everywhere."""
    check_finite(n, name)
    if not (_as_float64(n, name) >= 1).all():
        raise ValueError(f"{name} must be >= 1 (it counts the keys a query attends to), got {n!r}")


def check_no_nan_or_posinf(x, name: str = "x") -> None:
    """Logits may be finite or -inf (masked); NaN and +inf have no meaning as logits."""
    if bool((torch.isnan(x) | torch.isposinf(x)).any()):
        raise ValueError(f"{name} must hold finite logits or -inf for masked entries; it contains NaN or +inf")
