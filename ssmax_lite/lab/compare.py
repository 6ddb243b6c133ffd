r"""Compare methods on the same task: accuracy against length, over several seeds.

Chapters 4 and 5 train (or convert) one model per method and seed, then evaluate every model on
the *same* sequences (:func:`ssmax_lite.lab.evaluate.accuracy_by_length` draws them from a fixed
seed). This module holds the bookkeeping they share:

* :class:`MethodResult` — one method's accuracy and answer loss, ``(n_seeds, n_lengths)``;
* :func:`evaluate_method` — evaluates a list of models (one per seed) into a ``MethodResult``;
* :func:`format_table` — mean and range over seeds, one row per method, as plain text;

and :func:`ssmax_lite.lab.plotting.plot_accuracy` draws them: mean over seeds with the min–max band.

The spread shown is the range (min to max) over seeds, not a confidence interval: with three
seeds it is the honest summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluate import accuracy_by_length

__all__ = ["MethodResult", "evaluate_method", "format_table"]


@dataclass(frozen=True)
class MethodResult:
    """One method evaluated with several seeds.

    Attributes:
        name: the label used in tables and legends.
        lengths: the evaluated sequence lengths.
        accuracy: ``(n_seeds, n_lengths)`` fraction of answers predicted right.
        loss: ``(n_seeds, n_lengths)`` mean cross-entropy at the answer positions.
    """

    name: str
    lengths: tuple
    accuracy: np.ndarray
    loss: np.ndarray

    def mean(self, metric: str = "accuracy") -> np.ndarray:
        """Mean over seeds, one value per length."""
        return self._metric(metric).mean(axis=0)

    def at(self, length: int, metric: str = "accuracy") -> np.ndarray:
        """Every seed's value at ``length`` (one of :attr:`lengths`)."""
        if length not in self.lengths:
            raise ValueError(f"length must be one of the evaluated lengths {self.lengths}, got {length!r}")
        return self._metric(metric)[:, self.lengths.index(length)]

    def _metric(self, metric: str) -> np.ndarray:
        if metric not in ("accuracy", "loss"):
            raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
        return self.accuracy if metric == "accuracy" else self.loss


def evaluate_method(name: str, models, task, train_len: int, eval_mult, **kwargs) -> MethodResult:
    """Evaluate one model per seed with :func:`~ssmax_lite.lab.evaluate.accuracy_by_length`.

    ``kwargs`` go to ``accuracy_by_length`` (``n_sequences``, ``seed``, …); every model sees the
    same sequences.
    """
    models = list(models)
    if not models:
        raise ValueError(f"models must hold at least one model for {name!r}, got none")
    evals = [accuracy_by_length(m, task, train_len, eval_mult, **kwargs) for m in models]
    return MethodResult(name, tuple(evals[0].lengths), np.stack([e.accuracy for e in evals]),
                        np.stack([e.loss for e in evals]))


def format_table(results, metric: str = "accuracy", digits: int = 3) -> str:
    """Plain-text table: one row per method, one column per length, ``mean [min–max]`` over seeds."""
    results = list(results)
    if not results:
        raise ValueError("results must hold at least one MethodResult")
    lengths = results[0].lengths
    if any(r.lengths != lengths for r in results):
        raise ValueError("every result must be evaluated at the same lengths")
    width = max(len(r.name) for r in results) + 2
    cell = 3 * (digits + 2) + 4 + 2  # "m.mmm [l.lll–h.hhh]" and two spaces before it
    header = f"{metric + ' at length':<{width}}" + "".join(f"{length:>{cell}}" for length in lengths)
    rows = [header]
    for r in results:
        values = r._metric(metric)
        cells = [f"{v.mean():.{digits}f} [{v.min():.{digits}f}–{v.max():.{digits}f}]"
                 for v in values.T]
        rows.append(f"{r.name:<{width}}" + "".join(f"{c:>{cell}}" for c in cells))
    return "\n".join(rows)
