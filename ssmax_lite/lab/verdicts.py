r"""Verdicts by a rule: does a method beat its baseline on seeds, and can this experiment even tell?

One claim compares a method (SSMax) with a baseline (softmax, or a control) on the same seeds, by one
number per seed (accuracy at :math:`m \cdot L`, higher is better; or a loss, lower is better). The rule,
applied in this order:

1. **Seeds that did not learn are left out, and counted.** A seed is used only if both of its models
   learned the task: accuracy at the training length at least ``learned`` (0.99).
2. **Not testable here** when the measure cannot separate the two: both means at the ceiling (accuracy
   at least ``ceiling``, 0.99) or both within ``chance_margin`` (0.05) of chance. This takes precedence.
3. Otherwise the paired differences :math:`d_i = \text{method}_i - \text{baseline}_i` (signed so that
   positive means the method is better) give a 95 % interval
   :math:`\bar d \pm t_{0.975,\,k-1}\, s_d / \sqrt{k}` over the :math:`k` seeds used (Student's t):
   **reproduced** if it lies above 0 (the paper's direction), **refuted** if below, **inconclusive** if it
   contains 0 or fewer than two seeds remain.

With identical differences on every seed (:math:`s_d = 0`) the interval is that one value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["VERDICTS", "Verdict", "paired_verdict", "t_quantile"]

VERDICTS = ("reproduced", "refuted", "inconclusive", "not testable here")

# two-sided 95 % quantiles of Student's t, t_{0.975, df}, for df = 1 … 30 (beyond: the normal's 1.960)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_quantile(df: int) -> float:
    """:math:`t_{0.975,\\,df}`, the two-sided 95 % quantile of Student's t with ``df`` degrees of freedom."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be an int >= 1, got {df!r}")
    return _T975[df - 1] if df <= len(_T975) else 1.960


@dataclass(frozen=True)
class Verdict:
    """The rule's answer for one claim.

    Attributes:
        label: one of :data:`VERDICTS`.
        difference: mean paired difference (method − baseline, signed so that positive favours the
            method), over the seeds used; NaN if none.
        interval: its 95 % interval ``(low, high)``; NaN where it has none.
        seeds_used: seeds whose two models both learned.
        seeds_excluded: seeds left out because a model did not learn.
        reason: one sentence saying why.
    """

    label: str
    difference: float
    interval: tuple
    seeds_used: int
    seeds_excluded: int
    reason: str

    def __str__(self) -> str:
        low, high = self.interval
        return (f"{self.label} (difference {self.difference:+.3f}, 95% interval [{low:+.3f}, {high:+.3f}], "
                f"{self.seeds_used} seeds, {self.seeds_excluded} excluded)")


def paired_verdict(method, baseline, *, method_at_l, baseline_at_l, chance: float, higher_is_better: bool = True,
                   learned: float = 0.99, ceiling: float = 0.99, chance_margin: float = 0.05) -> Verdict:
    """The verdict on "``method`` beats ``baseline``" from one number per seed each (same seeds, same order).

    ``method_at_l`` and ``baseline_at_l`` are the two models' accuracies at the training length (to decide
    which seeds learned); ``chance`` is the measure's chance level. For a loss pass ``higher_is_better=False``
    (then the ceiling test does not apply, and chance is the loss of a uniform guess).
    """
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in (method, baseline, method_at_l, baseline_at_l)]
    if len({a.size for a in arrays}) != 1 or arrays[0].size == 0:
        raise ValueError(f"method, baseline, method_at_l and baseline_at_l must hold one number per seed each "
                         f"(the same seeds), got sizes {[a.size for a in arrays]}")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("method, baseline, method_at_l and baseline_at_l must be finite")
    method, baseline, method_at_l, baseline_at_l = arrays
    keep = (method_at_l >= learned) & (baseline_at_l >= learned)
    used, excluded = int(keep.sum()), int((~keep).sum())
    none = (math.nan, math.nan)
    if used == 0:
        return Verdict("inconclusive", math.nan, none, 0, excluded, "no seed on which both models learned the task")
    means = method[keep].mean(), baseline[keep].mean()
    near_chance = all(abs(m - chance) <= chance_margin for m in means)
    at_ceiling = higher_is_better and all(m >= ceiling for m in means)
    sign = 1.0 if higher_is_better else -1.0
    differences = sign * (method[keep] - baseline[keep])
    mean = float(differences.mean())
    if at_ceiling or near_chance:
        where = f"at the ceiling (both ≥ {ceiling})" if at_ceiling else f"within {chance_margin} of chance"
        return Verdict("not testable here", mean, none, used, excluded, f"both methods are {where}")
    if used < 2:
        return Verdict("inconclusive", mean, none, used, excluded, "fewer than two seeds learned the task")
    half = t_quantile(used - 1) * float(differences.std(ddof=1)) / math.sqrt(used)
    low, high = mean - half, mean + half
    if low > 0:
        return Verdict("reproduced", mean, (low, high), used, excluded, "the interval lies above 0")
    if high < 0:
        return Verdict("refuted", mean, (low, high), used, excluded, "the interval lies below 0")
    return Verdict("inconclusive", mean, (low, high), used, excluded, "the interval contains 0")
