r"""The training chapter's experiments, as functions and as a command line.

``python -m ssmax_lite.experiments length --attention softmax ssmax --pe nope --train-len 64 \
    --eval-mult 1 2 4 8 16 32 --seeds 0 1 2 --json out.json``

trains one model per attention kind and seed (preset ``quick`` on a CPU, ``full`` with ``--preset
full``), evaluates each at lengths ``m·L`` with the number of needles fixed, prints a table of the
accuracy (mean ± standard deviation over seeds) and writes everything to JSON.

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

from .evaluate import accuracy_by_length
from .layers import ATTENTION_KINDS
from .model import POSITION_ENCODINGS
from .train import PRESETS, TrainResult, default_cache_dir, preset, train

__all__ = ["format_table", "length_experiment", "main", "summarize"]


def summarize(values) -> dict:
    """``{"per_seed": [...], "mean": m, "std": sd, "min": lo, "max": hi}`` of a list of per-seed numbers
    (``std`` is the population standard deviation over seeds, 0 for one seed)."""
    arr = np.asarray(values, dtype=np.float64)
    return {"per_seed": [float(v) for v in arr], "mean": float(arr.mean()), "std": float(arr.std()),
            "min": float(arr.min()), "max": float(arr.max())}


def length_experiment(attentions=("softmax", "ssmax"), *, pe: str = "nope", preset_name: str = "quick",
                      seeds=(0, 1, 2), eval_mult=(1, 2, 4, 8, 16, 32), train_len: int | None = None,
                      steps: int | None = None, rope_theta_scale: float | None = None,
                      n_eval: int = 64, cache_dir=None, progress: bool = True, device: str | None = None,
                      ) -> tuple[dict, dict[tuple[str, int], TrainResult]]:
    """Train every ``attention`` kind for every seed, then evaluate at ``m · train_len``.

    Args:
        attentions: attention kinds (see :data:`ssmax_lite.layers.ATTENTION_KINDS`).
        pe: ``"nope"`` or ``"rope"``.
        preset_name: ``"quick"`` or ``"full"`` (see :data:`ssmax_lite.train.PRESETS`).
        seeds: training seeds (the evaluation sequences are the same for every model).
        eval_mult: the multipliers ``m``.
        train_len, steps: override the preset.
        rope_theta_scale: for ``pe="rope"``, also evaluate with θ multiplied by this factor.
        n_eval: evaluation sequences per length.
        cache_dir: passed to :func:`ssmax_lite.train.train`.

    Returns:
        ``(summary, runs)``: ``summary`` is JSON-ready (config, and per kind the loss curves, wall
        times, and per evaluation the accuracy and loss per length as :func:`summarize` dicts);
        ``runs[(kind, seed)]`` is the :class:`~ssmax_lite.train.TrainResult`.
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
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    overrides = {k: v for k, v in (("train_len", train_len), ("steps", steps)) if v is not None}

    summary = {"preset": preset_name, "pe": pe, "seeds": seeds, "eval_mult": list(eval_mult),
               "results": {}}
    runs = {}
    for kind in attentions:
        per_eval = {"plain": []} | ({"theta_scaled": []} if rope_theta_scale else {})
        losses, times = [], []
        for seed in seeds:
            config = preset(preset_name, attention=kind, pe=pe, seed=seed, **overrides)
            result = train(config, progress=progress, cache_dir=cache_dir, device=device)
            runs[(kind, seed)] = result
            losses.append(result.losses.tolist())
            times.append(result.wall_time)
            per_eval["plain"].append(accuracy_by_length(result.model, config.task, config.train_len,
                                                        eval_mult, n_sequences=n_eval))
            if rope_theta_scale:
                theta = config.model.rope_theta * rope_theta_scale
                per_eval["theta_scaled"].append(accuracy_by_length(
                    result.model, config.task, config.train_len, eval_mult, n_sequences=n_eval,
                    rope_theta_value=theta))
        summary["train_len"] = config.train_len
        summary["config"] = {k: v for k, v in config.to_dict().items() if k != "seed"}
        summary["config"]["model"]["attention"] = "per kind"
        summary["lengths"] = list(per_eval["plain"][0].lengths)
        summary["results"][kind] = {
            "train_loss": losses,
            "final_loss": summarize([np.mean(curve[-50:]) for curve in losses]),
            "wall_time_s": times,
            "evaluations": {
                name: {"accuracy": [summarize([e.accuracy[i] for e in evals]) for i in range(len(eval_mult))],
                       "loss": [summarize([e.loss[i] for e in evals]) for i in range(len(eval_mult))]}
                for name, evals in per_eval.items()},
        }
    if rope_theta_scale:
        summary["rope_theta_scale"] = rope_theta_scale
    return summary, runs


def format_table(summary: dict, metric: str = "accuracy", evaluation: str = "plain") -> str:
    """A text table: one row per attention kind, one column per length, ``mean ± std`` over seeds."""
    mults = summary["eval_mult"]
    header = f"{'attention':<12}" + "".join(f"{f'{m:g}×L':>16}" for m in mults)
    lines = [f"{metric} ({evaluation}, pe={summary['pe']}, L={summary['train_len']}, "
             f"{len(summary['seeds'])} seed(s): mean ± std)", header]
    for kind, result in summary["results"].items():
        cells = result["evaluations"][evaluation][metric]
        lines.append(f"{kind:<12}" + "".join(f"{c['mean']:>9.3f} ± {c['std']:.3f}" for c in cells))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ssmax_lite.experiments",
                                     description="Reproduce the training chapter's tables without Jupyter.")
    sub = parser.add_subparsers(dest="command", required=True)
    length = sub.add_parser("length", help="accuracy against evaluation length, per attention kind")
    length.add_argument("--attention", nargs="+", default=["softmax", "ssmax"], choices=ATTENTION_KINDS)
    length.add_argument("--pe", default="nope", choices=POSITION_ENCODINGS)
    length.add_argument("--preset", default="quick", choices=tuple(PRESETS))
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
            progress=not args.no_progress, device=args.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(summary, "accuracy"))
    print()
    print(format_table(summary, "loss"))
    if args.rope_theta_scale:
        print()
        print(format_table(summary, "accuracy", "theta_scaled"))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
