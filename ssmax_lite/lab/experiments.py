r"""The training chapter's experiments, as functions and as a command line.

``python -m ssmax_lite.lab.experiments length --attention softmax ssmax --pe nope --train-len 64 \
    --eval-mult 1 2 4 8 16 32 --seeds 0 1 2 --json out.json``

trains one model per attention kind and seed (preset ``quick`` on a CPU, ``full`` with ``--preset
full``), evaluates each at lengths ``m·L`` with the number of needles fixed, prints a table of the
accuracy (mean ± standard deviation over seeds) and writes everything to JSON.

``--task`` chooses the task: ``haystack`` (the default, chapter 3b: queries at every depth in a haystack of
one repeated token, with the weight decay and steps of :data:`HAYSTACK_RUNS`; the task on which softmax fades
in accuracy), ``lookup`` (the preset's :class:`~ssmax_lite.lab.tasks.LookupTask`, every query at the end of the
sequence: chapter 3) or ``stream`` (:class:`~ssmax_lite.lab.tasks.RecallStreamTask`, queries at every depth in
a varied haystack, see :data:`STREAM_TASKS`) or ``text`` (next-byte prediction on real text, chapter 3d:
:data:`TEXT_RUNS`; the table gives the test loss per position bin up to the largest ``--eval-mult``). With
``stream`` and
``haystack`` the JSON and the printout also give the accuracy by the number of keys a query sees
(:func:`~ssmax_lite.lab.evaluate.accuracy_by_depth`).

:func:`length_experiment` does the same from Python and also returns the trained runs, so that a
notebook can look inside the models.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .evaluate import LengthEval, accuracy_by_depth, accuracy_by_length, loss_by_bins, position_edges
from .layers import ATTENTION_KINDS
from .model import POSITION_ENCODINGS
from .tasks import ByteTextTask, RecallStreamTask
from .train import PRESETS, TrainResult, default_cache_dir, preset, train

__all__ = ["HAYSTACK_RUNS", "STREAM_TASKS", "TASK_NAMES", "TEXT_RUNS", "evaluate_models",
           "evaluate_text_models", "format_depth_table", "format_length_table", "format_position_table",
           "length_experiment", "main", "moving_average", "result_at", "summarize", "train_loss_at"]

TASK_NAMES = ("lookup", "stream", "haystack", "text")
"""``lookup``: the preset's own task (queries at the end); ``stream``: :data:`STREAM_TASKS` of the preset;
``haystack``: :data:`HAYSTACK_RUNS` of the preset (a recall stream on which softmax fades in accuracy);
``text``: :data:`TEXT_RUNS` of the preset (next-byte prediction on real text, evaluated per position)."""

STREAM_TASKS = {
    # measured on the CPU (seeds 10, 11, 12; 20-25 s a model on one busy thread): softmax,
    # ssmax and constant all learn it (answer loss 0.0003 after 400 steps) and score 1.000 at every
    # length up to 32×L and every depth; softmax fades only in the loss (0.004 at 32×L, ssmax 0.0002)
    "quick": RecallStreamTask(n_keys=16, n_values=8, n_needles=8),
    # the GPU preset's own task (ssmax_lite.lab.train.PRESETS["full"]): one needle per 8 tokens at L = 256;
    # at half the size (L = 128, 16 needles) it learns on the CPU, see benchmarks/README.md, "GPU preset"
    "full": RecallStreamTask(n_keys=64, n_values=16, n_needles=32),
}


HAYSTACK_RUNS = {
    # the fading task: queries at every depth, and a haystack of one repeated token (a different one
    # per sequence), so the weight that leaks off the needle votes for one wrong answer; weight decay 1.5
    # keeps the learned logit gap Δ small enough that softmax's answer flips once n·e^(−Δ) > 1, i.e. by
    # 16–32×L. Measured on the CPU (benchmarks/README.md, "one-token haystack"): every kind learns it in
    # 1,200 steps (1.000 at 1×L); softmax drops to 0.43–0.56 at 32×L, SSMax stays at 1.000.
    "quick": dict(task=RecallStreamTask(n_keys=16, n_values=8, n_needles=8, filler_values=1, filler_keys=1),
                  weight_decay=1.5, steps=1200),
}


TEXT_RUNS = {
    # chapter 3d on the CPU: next-byte prediction on CPython's standard library (ssmax_lite.lab.corpus) with the
    # "quick" model at L = 64, 500 steps of 16 windows (0.5 M bytes); weight decay 0.1 as in the paper.
    # Measured on the CPU: 7-9 s a model on one thread; training loss about 2.2 (NoPE) and 1.8 (RoPE)
    # nats per byte at the end, still falling. lr 1e-2 learned faster than 3e-3 (1.62 against 1.76 after
    # 600 steps of 32 windows, RoPE softmax, seed 0).
    "quick": dict(task=ByteTextTask(), steps=500, batch_size=16, lr=1e-2, warmup=50),
    # GPU: the "full" model (d = 256, 4 layers, 8 heads) at L = 256, 2,000 steps of 64 windows (33 M bytes).
    # Not yet run on a GPU; the CPU only checks that it runs (tests/test_text.py).
    "full": dict(task=ByteTextTask(), steps=2000, batch_size=64, lr=3e-3, warmup=200),
}
"""Chapter 3d's runs on real text, per preset (:func:`~ssmax_lite.lab.train.preset` arguments)."""


def summarize(values) -> dict:
    """``{"per_seed": [...], "mean": m, "std": sd, "min": lo, "max": hi}`` of a list of per-seed numbers
    (``std`` is the population standard deviation over seeds, 0 for one seed)."""
    arr = np.asarray(values, dtype=np.float64)
    return {"per_seed": [float(v) for v in arr], "mean": float(arr.mean()), "std": float(arr.std()),
            "min": float(arr.min()), "max": float(arr.max())}


def result_at(summary: dict, kind: str, mult, stat: str = "mean", metric: str = "accuracy",
              evaluation: str = "plain"):
    """One number of a :func:`length_experiment` summary: the ``stat`` over seeds (``"mean"``, ``"min"``,
    ``"max"``, ``"std"``, or ``"per_seed"`` for the list) of ``metric`` (``"accuracy"`` or ``"loss"``) for
    ``kind`` at the length ``mult·L`` (one of ``summary["eval_mult"]``), as ``evaluation`` measured it
    (``"plain"``, or ``"theta_scaled"`` for RoPE models evaluated with a larger θ).

    A chapter binds it to its summary: ``accuracy = functools.partial(result_at, summary)``, then
    ``accuracy("ssmax", 32, "min")``."""
    if kind not in summary["results"]:
        raise ValueError(f"kind must be one of {tuple(summary['results'])}, got {kind!r}")
    if mult not in summary["eval_mult"]:
        raise ValueError(f"mult must be one of the summary's eval_mult {summary['eval_mult']}, got {mult!r}")
    evaluations = summary["results"][kind]["evaluations"]
    if evaluation not in evaluations or metric not in evaluations[evaluation]:
        pairs = [(e, m) for e in evaluations for m in evaluations[e]]
        raise ValueError(f"evaluation and metric must be one of {pairs}, got {(evaluation, metric)!r}")
    cell = evaluations[evaluation][metric][summary["eval_mult"].index(mult)]
    if stat not in cell:
        raise ValueError(f"stat must be one of {tuple(cell)}, got {stat!r}")
    return cell[stat]


def train_loss_at(summary: dict, kind: str, step: int, width: int = 20) -> np.ndarray:
    """Each seed's training loss of ``kind`` averaged over the ``width`` steps that end at ``step`` (the
    value :func:`plot_train_loss` draws at that step), one number per seed."""
    if kind not in summary["results"]:
        raise ValueError(f"kind must be one of {tuple(summary['results'])}, got {kind!r}")
    curves = np.asarray(summary["results"][kind]["train_loss"], dtype=np.float64)
    if isinstance(step, bool) or not isinstance(step, int) or not width <= step <= curves.shape[1]:
        raise ValueError(f"step must be an int in [{width}, {curves.shape[1]}] (width to the steps trained), "
                         f"got {step!r}")
    return curves[:, step - width:step].mean(axis=1)


def length_experiment(attentions=("softmax", "ssmax"), *, pe: str = "nope", preset_name: str = "quick",
                      seeds=(0, 1, 2), eval_mult=(1, 2, 4, 8, 16, 32), train_len: int | None = None,
                      steps: int | None = None, rope_theta_scale: float | None = None,
                      n_eval: int = 64, cache_dir=None, progress: bool = True, device: str | None = None,
                      task: str = "lookup") -> tuple[dict, dict[tuple[str, int], TrainResult]]:
    """Train every ``attention`` kind for every seed, then evaluate at ``m · train_len``.

    Args:
        attentions: attention kinds (see :data:`ssmax_lite.lab.layers.ATTENTION_KINDS`).
        pe: ``"nope"`` or ``"rope"``.
        preset_name: ``"quick"`` or ``"full"`` (see :data:`ssmax_lite.lab.train.PRESETS`).
        seeds: training seeds (the evaluation sequences are the same for every model).
        eval_mult: the multipliers ``m``.
        train_len, steps: override the preset.
        rope_theta_scale: for ``pe="rope"``, also evaluate with θ multiplied by this factor.
        n_eval: evaluation sequences per length.
        cache_dir: passed to :func:`ssmax_lite.lab.train.train`.
        task: ``"lookup"`` (the preset's task), ``"haystack"`` (:data:`HAYSTACK_RUNS`: task, weight
            decay and steps), ``"stream"`` (:data:`STREAM_TASKS`, queries at
            every depth; the summary then also holds ``"depth"``: accuracy per length and depth bin) or
            ``"text"`` (:data:`TEXT_RUNS`: next-byte prediction on real text; the models are evaluated on
            the test split by :func:`evaluate_text_models` up to the largest ``m · train_len`` only, and the
            summary holds the loss per position bin instead of accuracy per length).

    Returns:
        ``(summary, runs)``: ``summary`` is JSON-ready (config, and per kind the loss curves, wall
        times, and per evaluation the accuracy and loss per length as :func:`summarize` dicts);
        ``runs[(kind, seed)]`` is the :class:`~ssmax_lite.lab.train.TrainResult`.
    """
    attentions = list(attentions)
    bad = [a for a in attentions if a not in ATTENTION_KINDS]
    if not attentions or bad:
        raise ValueError(f"attentions must be a non-empty list drawn from {ATTENTION_KINDS}, got {attentions!r}")
    if pe not in POSITION_ENCODINGS:
        raise ValueError(f"pe must be one of {POSITION_ENCODINGS}, got {pe!r}")
    if rope_theta_scale is not None and (pe != "rope" or not rope_theta_scale > 0):
        raise ValueError(f"rope_theta_scale needs pe='rope' and a number > 0, got pe={pe!r}, "
                         f"rope_theta_scale={rope_theta_scale!r}")
    if task not in TASK_NAMES:
        raise ValueError(f"task must be one of {TASK_NAMES}, got {task!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    overrides = {k: v for k, v in (("train_len", train_len), ("steps", steps)) if v is not None}
    if task == "stream":
        if preset_name not in STREAM_TASKS:
            raise ValueError(f"task='stream' has a task for presets {tuple(STREAM_TASKS)}, got {preset_name!r}")
        overrides["task"] = STREAM_TASKS[preset_name]
    if task == "haystack":
        if preset_name not in HAYSTACK_RUNS:
            raise ValueError(f"task='haystack' has a run for presets {tuple(HAYSTACK_RUNS)}, got {preset_name!r}")
        overrides = HAYSTACK_RUNS[preset_name] | overrides  # an explicit steps or train_len still wins
    if task == "text":
        overrides = TEXT_RUNS[preset_name] | overrides

    summary = {"preset": preset_name, "task": task, "pe": pe, "seeds": seeds, "eval_mult": list(eval_mult),
               "results": {}}
    runs = {}
    for kind in attentions:
        losses, times, models = [], [], []
        for seed in seeds:
            config = preset(preset_name, attention=kind, pe=pe, seed=seed, **overrides)
            result = train(config, progress=progress, cache_dir=cache_dir, device=device)
            runs[(kind, seed)] = result
            losses.append(result.losses.tolist())
            times.append(result.wall_time)
            models.append(result.model)
        theta = config.model.rope_theta * rope_theta_scale if rope_theta_scale else None
        if task == "text":
            evaluated = evaluate_text_models(models, config.train_len, max(eval_mult), n_eval=n_eval,
                                             rope_theta_value=theta)
        else:
            evaluated = evaluate_models(models, config.task, config.train_len, eval_mult, n_eval=n_eval,
                                        by_depth=task != "lookup", rope_theta_value=theta)
        summary["train_len"] = config.train_len
        summary["config"] = {k: v for k, v in config.to_dict().items() if k != "seed"}
        summary["config"]["model"]["attention"] = "per kind"
        summary["lengths"] = evaluated.pop("lengths")
        for key in ("depth_edges", "position_edges"):
            if key in evaluated:
                summary[key] = evaluated.pop(key)
        summary["results"][kind] = {"train_loss": losses,
                                    "final_loss": summarize([np.mean(curve[-50:]) for curve in losses]),
                                    "wall_time_s": times} | evaluated
    if rope_theta_scale:
        summary["rope_theta_scale"] = rope_theta_scale
    return summary, runs


def evaluate_models(models, task, train_len: int, eval_mult, *, n_eval: int = 64, by_depth: bool = False,
                    rope_theta_value: float | None = None) -> dict:
    """Evaluate one model per seed at the lengths ``m · train_len`` (every model on the same sequences).

    Returns the part of a :func:`length_experiment` summary that one kind holds, so that models made some
    other way (e.g. switched with :func:`ssmax_lite.lab.convert.switch_attention`) can join a summary:
    ``{"evaluations": {"plain": {"accuracy": [...], "loss": [...]}}, "lengths": [...]}``, one
    :func:`summarize` dict per length; with ``rope_theta_value`` also ``"theta_scaled"`` (RoPE's θ set to
    that value); with ``by_depth`` also ``"depth"`` (:func:`~ssmax_lite.lab.evaluate.accuracy_by_depth`,
    per length and depth bin) and ``"depth_edges"``.
    """
    models = list(models)
    if not models:
        raise ValueError("models must hold at least one model (one per seed), got none")
    if by_depth:  # one pass gives both: its overall accuracy and loss are accuracy_by_length's
        depths = [accuracy_by_depth(m, task, train_len, eval_mult, n_sequences=n_eval) for m in models]
        per_eval = {"plain": [LengthEval(d.eval_mult, d.lengths, d.overall, d.loss, n_eval * task.n_needles)
                               for d in depths]}
    else:
        per_eval = {"plain": [accuracy_by_length(m, task, train_len, eval_mult, n_sequences=n_eval) for m in models]}
    if rope_theta_value is not None:
        per_eval["theta_scaled"] = [accuracy_by_length(m, task, train_len, eval_mult, n_sequences=n_eval,
                                                       rope_theta_value=rope_theta_value) for m in models]
    count = len(per_eval["plain"][0].lengths)
    out = {"lengths": list(per_eval["plain"][0].lengths), "evaluations": {
        name: {"accuracy": [summarize([e.accuracy[i] for e in evals]) for i in range(count)],
               "loss": [summarize([e.loss[i] for e in evals]) for i in range(count)]}
        for name, evals in per_eval.items()}}
    if by_depth:
        out["depth_edges"] = list(depths[0].edges)
        out["depth"] = {"accuracy": [[summarize([d.accuracy[i, j] for d in depths])
                                      for j in range(len(depths[0].edges) - 1)] for i in range(count)],
                        "count": depths[0].count.tolist()}
    return out


def evaluate_text_models(models, train_len: int, max_mult, *, n_eval: int = 16,
                         rope_theta_value: float | None = None) -> dict:
    """Evaluate one language model per seed on the test split of :class:`~ssmax_lite.lab.tasks.ByteTextTask`:
    the loss averaged over each bin of :func:`~ssmax_lite.lab.evaluate.position_edges` (``0 < n ≤ 1``,
    ``1 < n ≤ 2``, …, doubling, with one edge at ``train_len``, up to ``max_mult · train_len`` bytes seen),
    by :func:`~ssmax_lite.lab.evaluate.loss_by_bins` (at least ``n_eval`` windows per bin, and about 2,048
    predictions).

    Returns the part of a :func:`length_experiment` summary that one kind holds:
    ``{"evaluations": {"plain": {"loss_by_position": [...]}}, "lengths": [max_mult · train_len],
    "position_edges": [...]}``, one :func:`summarize` dict per bin; with ``rope_theta_value`` also
    ``"theta_scaled"``.
    """
    models = list(models)
    if not models:
        raise ValueError("models must hold at least one model (one per seed), got none")
    edges = position_edges(train_len, max_mult)
    test = ByteTextTask("test")
    thetas = {"plain": None} | ({} if rope_theta_value is None else {"theta_scaled": rope_theta_value})
    out = {"lengths": [int(edges[-1])], "position_edges": edges.tolist(), "evaluations": {}}
    for name, theta in thetas.items():
        binned = np.array([loss_by_bins(m, test, edges, min_windows=n_eval, rope_theta_value=theta) for m in models])
        out["evaluations"][name] = {"loss_by_position": [summarize(column) for column in binned.T]}
    return out


def format_length_table(summary: dict, metric: str = "accuracy", evaluation: str = "plain") -> str:
    """A text table: one row per attention kind, one column per length, ``mean ± std`` over seeds."""
    mults = summary["eval_mult"]
    width = max(12, *(len(kind) + 2 for kind in summary["results"]))
    header = f"{'attention':<{width}}" + "".join(f"{f'{m:g}×L':>16}" for m in mults)
    lines = [f"{metric} ({evaluation}, pe={summary['pe']}, L={summary['train_len']}, "
             f"{len(summary['seeds'])} seed(s): mean ± std)", header]
    for kind, result in summary["results"].items():
        cells = result["evaluations"][evaluation][metric]
        lines.append(f"{kind:<{width}}" + "".join(f"{c['mean']:>9.3f} ± {c['std']:.3f}" for c in cells))
    return "\n".join(lines)


def format_depth_table(summary: dict) -> str:
    """Accuracy by the keys a query sees (``task="stream"``): one row per kind and length, one column
    per depth bin ``(lo, hi]``, the mean over seeds (``-`` for an empty bin)."""
    edges, mults = summary["depth_edges"], summary["eval_mult"]
    names = [f"{lo:g}<n<={hi:g}" for lo, hi in zip(edges, edges[1:])]
    lines = [f"accuracy by keys seen n (pe={summary['pe']}, L={summary['train_len']}, "
             f"{len(summary['seeds'])} seed(s): mean)",
             f"{'attention':<12}{'length':>8}" + "".join(f"{name:>15}" for name in names)]
    for kind, result in summary["results"].items():
        for m, row in zip(mults, result["depth"]["accuracy"]):
            cells = ["-" if np.isnan(c["mean"]) else f"{c['mean']:.3f}" for c in row]
            lines.append(f"{kind:<12}{f'{m:g}×L':>8}" + "".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)


def format_position_table(summary: dict, evaluation: str = "plain", mults=(1, 4, 16)) -> str:
    """A text table of a ``task="text"`` summary: one row per kind, the test loss of the position bins that
    end at ``m · L`` for each ``m`` of ``mults`` that is an edge, ``mean [lowest–highest seed]``."""
    edges = list(summary["position_edges"])
    train_len = summary["train_len"]
    columns = [edges.index(m * train_len) - 1 for m in mults if m * train_len in edges[1:]]
    width = max(12, *(len(kind) + 2 for kind in summary["results"]))
    lines = [f"next-byte test loss ({evaluation}, pe={summary['pe']}, L={train_len}, {len(summary['seeds'])} "
             f"seed(s)) in the bins of tokens seen n: mean [lowest–highest seed]",
             f"{'attention':<{width}}" + "".join(f"{f'{edges[c]} < n ≤ {edges[c + 1]}':>24}" for c in columns)]
    for kind, result in summary["results"].items():
        cells = [result["evaluations"][evaluation]["loss_by_position"][c] for c in columns]
        texts = [f"{c['mean']:.3f} [{c['min']:.3f}–{c['max']:.3f}]" for c in cells]
        lines.append(f"{kind:<{width}}" + "".join(f"{t:>24}" for t in texts))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ssmax_lite.lab.experiments",
                                     description="Reproduce the training chapter's tables without Jupyter.")
    sub = parser.add_subparsers(dest="command", required=True)
    length = sub.add_parser("length", help="accuracy against evaluation length, per attention kind")
    length.add_argument("--attention", nargs="+", default=["softmax", "ssmax"], choices=ATTENTION_KINDS)
    length.add_argument("--pe", default="nope", choices=POSITION_ENCODINGS)
    length.add_argument("--preset", default="quick", choices=tuple(PRESETS))
    length.add_argument("--task", default="haystack", choices=TASK_NAMES,
                        help="haystack (default; chapter 3b): queries at every depth in a one-token haystack, the task "
                             "on which softmax fades; lookup: the preset's task, queries at the end (chapter 3); "
                             "stream: queries at every depth, varied haystack; text: next-byte prediction on "
                             "CPython's standard library (chapter 3d), evaluated per position up to the largest "
                             "--eval-mult")
    length.add_argument("--train-len", type=int, default=None, help="override the preset's L")
    length.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    length.add_argument("--eval-mult", type=float, nargs="+", default=[1, 2, 4, 8, 16, 32])
    length.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    length.add_argument("--rope-theta-scale", type=float, default=None,
                        help="with --pe rope, also evaluate with θ multiplied by this (the paper: 50)")
    length.add_argument("--n-eval", type=int, default=64, help="evaluation sequences per length")
    length.add_argument("--device", default=None, choices=("cpu", "cuda"))
    length.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (the chapter uses 1: faster for the quick model)")
    length.add_argument("--cache", action="store_true",
                        help=f"reuse trained models from the cache ({default_cache_dir()})")
    length.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    length.add_argument("--json", type=Path, default=None, help="write the results to this file")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    mults = [int(m) if float(m).is_integer() else m for m in args.eval_mult]
    if args.threads is not None:
        if args.threads < 1:
            print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        summary, _ = length_experiment(
            args.attention, pe=args.pe, preset_name=args.preset, seeds=args.seeds, eval_mult=mults,
            train_len=args.train_len, steps=args.steps, rope_theta_scale=args.rope_theta_scale,
            n_eval=args.n_eval, cache_dir=default_cache_dir() if args.cache else None,
            progress=not args.no_progress, device=args.device, task=args.task)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.task == "text":
        for evaluation in summary["results"][args.attention[0]]["evaluations"]:
            print(format_position_table(summary, evaluation))
    else:
        print(format_length_table(summary, "accuracy"))
        print()
        print(format_length_table(summary, "loss"))
    if args.task not in ("lookup", "text"):
        print()
        print(format_depth_table(summary))
    if args.rope_theta_scale and args.task != "text":
        print()
        print(format_length_table(summary, "accuracy", "theta_scaled"))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
        print(f"\nwrote {args.json}")
    return 0


def moving_average(values, width: int = 20) -> np.ndarray:
    """The mean of each window of ``width`` consecutive values (``len(values) - width + 1`` of them)."""
    values = np.asarray(values, dtype=np.float64)
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= len(values):
        raise ValueError(f"width must be an int in [1, {len(values)}] (the number of values), got {width!r}")
    return np.convolve(values, np.ones(width) / width, mode="valid")


if __name__ == "__main__":
    raise SystemExit(main())
