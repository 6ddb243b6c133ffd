r"""Curves fitted to a learned multiplier :math:`p_n`: why :math:`\log n`?

The SSMax paper motivates :math:`s \log n` with a model whose attention logits are multiplied by
:math:`s_h p_n + b_h`, with a free learned :math:`p_n` for every input size :math:`n` (its Fig. 2;
here the ``"learned-pn"`` attention kind). It finds that the learned :math:`p_n` follow
:math:`a_1 \log n + a_2`. This module fits that curve and two others to learned values, by least
squares on :math:`p_n` itself:

* ``"log"``: :math:`a_1 \log n + a_2` (linear least squares in :math:`\log n`);
* ``"power"``: :math:`a\, n^{b}` (linear least squares of :math:`\log p_n` on :math:`\log n`, then
  :math:`R^2` on :math:`p_n`; needs every :math:`p_n > 0`);
* ``"linear"``: :math:`a n + b`.

Each fit reports its parameters and :math:`R^2 = 1 - \sum (p - \hat p)^2 / \sum (p - \bar p)^2`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CURVES", "Fit", "extend_learned_pn", "fit_curve", "fit_curves", "learned_pn"]

CURVES = ("log", "power", "linear")
"""The curves :func:`fit_curve` knows, in the order the chapter shows them."""

_FORMULAS = {"log": "{0:.3f}·ln n + {1:.3f}", "power": "{0:.3f}·n^{1:.3f}", "linear": "{0:.4f}·n + {1:.3f}"}


@dataclass(frozen=True)
class Fit:
    """One curve fitted to ``(n, p)``: its name, its two parameters, :math:`R^2` and the formula."""

    curve: str
    params: tuple
    r2: float

    def __call__(self, n) -> np.ndarray:
        """The fitted curve at ``n``."""
        n = np.asarray(n, dtype=np.float64)
        a, b = self.params
        if self.curve == "log":
            return a * np.log(n) + b
        if self.curve == "power":
            return a * n ** b
        return a * n + b

    def formula(self) -> str:
        """The fitted curve as text, e.g. ``0.152·ln n + 0.945``."""
        return _FORMULAS[self.curve].format(*self.params)


def fit_curve(n, p, curve: str) -> Fit:
    """Fit ``curve`` (one of :data:`CURVES`) to the values ``p`` at counts ``n`` (both 1-D, same length)."""
    if curve not in CURVES:
        raise ValueError(f"curve must be one of {CURVES}, got {curve!r}")
    n = np.asarray(n, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if n.ndim != 1 or n.shape != p.shape or n.size < 3:
        raise ValueError(f"n and p must be 1-D arrays of the same length >= 3, got shapes {n.shape} and {p.shape}")
    if not (np.isfinite(n).all() and np.isfinite(p).all() and (n >= 1).all()):
        raise ValueError("n must hold counts >= 1 and p finite numbers")
    if curve == "power":
        if (p <= 0).any():
            raise ValueError("curve='power' needs every p > 0 (it is fitted in log space)")
        slope, intercept = np.polyfit(np.log(n), np.log(p), 1)
        params = (float(np.exp(intercept)), float(slope))
    else:
        x = np.log(n) if curve == "log" else n
        slope, intercept = np.polyfit(x, p, 1)
        params = (float(slope), float(intercept))
    fit = Fit(curve, params, 0.0)
    residual = ((p - fit(n)) ** 2).sum()
    total = ((p - p.mean()) ** 2).sum()
    return Fit(curve, params, float(1 - residual / total) if total > 0 else float("nan"))


def fit_curves(n, p) -> dict[str, Fit]:
    """Every curve of :data:`CURVES` fitted to ``(n, p)``."""
    return {curve: fit_curve(n, p, curve) for curve in CURVES}


def learned_pn(model) -> np.ndarray:
    r"""The learned :math:`p_1 \dots p_L` of a ``"learned-pn"`` model (one vector, shared by its layers)."""
    pn = getattr(model.blocks[0].attn, "pn", None)
    if pn is None:
        raise ValueError(f"model must use attention='learned-pn', got {model.config.attention!r}")
    return pn.detach().float().cpu().numpy()


def extend_learned_pn(model, fit: Fit, up_to: int):
    r"""A copy of the ``"learned-pn"`` ``model`` whose :math:`p_n` for ``L < n <= up_to`` follow ``fit``.

    A trained model has :math:`p_1 \dots p_L` and uses :math:`p_L` for every longer count; the copy keeps
    the learned values and continues them with the fitted curve, as a formula would. ``up_to`` is the
    longest count the copy will see (longer counts use :math:`p_{\text{up\_to}}`).
    """
    import copy

    import torch
    from torch import nn

    current = model.blocks[0].attn.pn if getattr(model.blocks[0].attn, "pn", None) is not None else None
    if current is None:
        raise ValueError(f"model must use attention='learned-pn', got {model.config.attention!r}")
    length = current.shape[0]
    if isinstance(up_to, bool) or not isinstance(up_to, int) or up_to < length:
        raise ValueError(f"up_to must be an int >= L = {length}, got {up_to!r}")
    continued = torch.as_tensor(fit(np.arange(length + 1, up_to + 1)), dtype=current.dtype, device=current.device)
    twin = copy.deepcopy(model)
    shared = nn.Parameter(torch.cat([current.detach(), continued]))  # on the model's device
    for block in twin.blocks:
        block.attn.pn = shared
    return twin
