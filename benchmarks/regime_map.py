r"""When does SSMax help? The regime map of chapter 3e, on chapter 3b's one-token haystack.

Trains the ``quick`` haystack model (2 layers, 4 heads, d = 64, L = 64, 1,200 steps; chapter 3b's setting
but for the weight decay) for every cell of

* weight decay {0.1, 0.5, 1.5} (the paper uses 0.1; chapter 3b 1.5),
* positions: NoPE, and RoPE evaluated both with θ as trained and with θ × 50 (the paper's setting),
* methods: softmax, SSMax (``s`` starting at 1/ln L), the matched constant (``constant-matched``:
  ``c'·ln L``, learned, stepping as SSMax does at n = L) and, with NoPE, SSMax with ``s`` starting at 1,
* seeds 0 … 4,

evaluates each model's accuracy at 1, 2, 4, 8, 16 and 32 × L on the chapters' 64 sequences per length, and,
for every softmax model, the "just a temperature" baseline: the same model with its logits multiplied by a
fixed τ at inference only, for τ in :data:`TEMPERATURES`, at 16 and 32 × L. Each verdict follows
:func:`ssmax_lite.lab.verdicts.paired_verdict` at 16 and 32 × L: SSMax against softmax, against the matched
constant, and against softmax at its best fixed τ for that length (chosen on the same sequences, which
favours the baseline).

The models go to the training cache (chapter 3b's own cells, decay 1.5 NoPE seeds 0–2, are the same
models). Each trained-and-evaluated model is kept in ``--work`` (default ``_build/regime_map``), so a run can
be stopped and resumed; ``--jobs`` processes train side by side, one thread each. The result, with the
command, date, commit and machine, goes to ``--out`` (default ``ssmax_lite/lab/data/regime_map.json``: package data, so that the chapter
finds it in Colab too), which the chapter reads. About 3.5 CPU-hours for the full grid (205 minutes of training on a 2-core 2026 machine,
two models at a time).

``--methods scale-invariant --reuse ssmax_lite/lab/data/regime_map.json --out …`` trains scale-invariant
attention (:mod:`ssmax_lite.lab.scale_invariant`, τ = 10) and takes the other methods' per-model results from
the stored map (the same settings and seeds, so the differences stay paired by seed).

``--task majority`` trains the same grid on :class:`~ssmax_lite.lab.tasks.MajorityRecallTask` (three needles
per queried key, the answer the value two of them carry) into ``regime_map_majority.json``; ``--methods``
trains only the methods named (softmax and ssmax are needed for any verdict).

Usage::

    python benchmarks/regime_map.py --jobs 2
    python benchmarks/regime_map.py --task majority --decays 0.1 1.5 --pe nope --methods softmax ssmax constant-matched
    python benchmarks/regime_map.py --decays 0.1 1.5 --methods scale-invariant --reuse ssmax_lite/lab/data/regime_map.json \
        --out ssmax_lite/lab/data/regime_map_scale_invariant.json --jobs 2
    python benchmarks/regime_map.py --decays 1.5 --seeds 0 1 --pe nope --out /tmp/small.json   # a small grid
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import multiprocessing
import platform
import subprocess
import sys
import time
from pathlib import Path

try:
    import ssmax_lite  # noqa: F401
except ImportError:  # run from a checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
DECAYS = (0.1, 0.5, 1.5)
SEEDS = (0, 1, 2, 3, 4)
EVAL_MULT = (1, 2, 4, 8, 16, 32)
TEMPERATURES = (1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
"""Fixed inference-time logit multipliers tried on every softmax model (1.0 is the model itself)."""
VERDICT_MULT = (16, 32)
METHODS = {  # name -> (attention kind, s_init, position encodings it is trained with)
    "softmax": ("softmax", None, ("nope", "rope")),
    "ssmax": ("ssmax", None, ("nope", "rope")),
    "constant-matched": ("constant-matched", None, ("nope", "rope")),
    "ssmax s0=1": ("ssmax", 1.0, ("nope",)),
    "scale-invariant": ("scale-invariant", None, ("nope", "rope")),  # Anson et al. 2025, tau = 10; learns nothing
}


TASKS = ("haystack", "majority")
"""``haystack``: chapter 3b's one-token haystack; ``majority``: the same haystack, but each queried key has three
needles, two with one value and one with another, and the answer is the majority value
(:class:`~ssmax_lite.lab.tasks.MajorityRecallTask`): an aggregation task, where attention on one needle is
not enough."""


def task_changes(task: str) -> dict:
    """The training settings of ``task``: chapter 3b's haystack run, with the majority task in its place."""
    from ssmax_lite.lab.experiments import HAYSTACK_RUNS
    from ssmax_lite.lab.tasks import MajorityRecallTask

    run = dict(HAYSTACK_RUNS["quick"])
    if task == "majority":
        haystack = run["task"]
        run["task"] = MajorityRecallTask(haystack.n_keys, haystack.n_values, haystack.n_needles,
                                         filler_values=haystack.filler_values, filler_keys=haystack.filler_keys)
    return run


def cells(decays, seeds, pes, methods=tuple(METHODS), task="haystack") -> list[dict]:
    """One job per (decay, position encoding, method, seed)."""
    return [dict(decay=decay, pe=pe, method=method, seed=seed, **({"task": task} if task != "haystack" else {}))
            for decay in decays for pe in pes for method, (_, _, trained_with) in METHODS.items()
            if method in methods and pe in trained_with for seed in seeds]


def job_name(job: dict) -> str:
    task = f"{job['task']}-" if job.get("task", "haystack") != "haystack" else ""
    return f"{task}wd{job['decay']}-{job['pe']}-{job['method'].replace(' ', '_').replace('=', '')}-seed{job['seed']}"


def run_job(job: dict, work: str, commit: str = "") -> dict:
    """Train (or load) one model and evaluate it; the result is also written to ``work``, with ``commit``,
    the commit checked out when the run started (whose code the worker imported)."""
    import torch

    torch.set_num_threads(1)
    from ssmax_lite.lab.convert import attention_modules, switch_attention
    from ssmax_lite.lab.evaluate import accuracy_by_length
    from ssmax_lite.lab.train import default_cache_dir, preset, train

    path = Path(work) / f"{job_name(job)}.json"
    if path.exists():
        return json.loads(path.read_text())
    kind, s_init, _ = METHODS[job["method"]]
    config = preset("quick", attention=kind, pe=job["pe"], seed=job["seed"],
                    **(task_changes(job.get("task", "haystack")) | {"weight_decay": job["decay"]}
                       | ({"s_init": s_init} if s_init else {})))
    start = time.perf_counter()
    run = train(config, progress=False, cache_dir=default_cache_dir(), device="cpu")
    task, length = config.task, config.train_len
    result = dict(job, commit=commit, config=config.to_dict(), train_seconds=run.wall_time,
                  from_cache=run.from_cache,
                  final_loss=float(run.losses[-50:].mean()))
    result["accuracy"] = {"plain": accuracy_by_length(run.model, task, length, EVAL_MULT).accuracy.tolist()}
    if job["pe"] == "rope":
        theta = config.model.rope_theta * 50
        result["accuracy"]["theta x50"] = accuracy_by_length(run.model, task, length, EVAL_MULT,
                                                             rope_theta_value=theta).accuracy.tolist()
    if kind == "softmax":  # the "just a temperature" baseline: a fixed multiplier tau, at inference only
        result["temperature"] = {}
        for evaluation in result["accuracy"]:
            theta = None if evaluation == "plain" else config.model.rope_theta * 50
            sweep = {}
            for tau in TEMPERATURES:
                tempered = switch_attention(copy.deepcopy(run.model), "constant")
                with torch.no_grad():
                    for module in attention_modules(tempered):
                        module.c.fill_(tau)
                sweep[str(tau)] = accuracy_by_length(tempered, task, length, VERDICT_MULT,
                                                     rope_theta_value=theta).accuracy.tolist()
            result["temperature"][evaluation] = sweep
    result["seconds"] = time.perf_counter() - start
    path.write_text(json.dumps(result, indent=1))
    return result


def summarize(results: list[dict], decays, seeds) -> dict:
    """Per (decay, evaluation) cell: each method's per-seed accuracies, and the verdicts at 16 and 32 × L."""
    from ssmax_lite.lab.verdicts import paired_verdict

    by_key = {(r["decay"], r["pe"], r["method"], r["seed"]): r for r in results}
    out = []
    chance = 1 / 8  # the haystack's answers: 8 values for the queried key
    for decay in decays:
        for pe, evaluation in (("nope", "plain"), ("rope", "plain"), ("rope", "theta x50")):
            methods = {}
            for method in METHODS:
                rows = [by_key.get((decay, pe, method, seed)) for seed in seeds]
                if all(rows):
                    methods[method] = [row["accuracy"][evaluation] for row in rows]
            if "softmax" not in methods or "ssmax" not in methods:
                continue
            cell = {"decay": decay, "pe": pe, "evaluation": evaluation, "seeds": list(seeds),
                    "accuracy": methods, "verdicts": {}}
            softmax_rows = [by_key[(decay, pe, "softmax", seed)] for seed in seeds]
            best_tau = {}
            for j, mult in enumerate(VERDICT_MULT):
                sweep = {tau: [row["temperature"][evaluation][tau][j] for row in softmax_rows] for tau in
                         softmax_rows[0]["temperature"][evaluation]}
                sweep["1.0"] = [acc[EVAL_MULT.index(mult)] for acc in methods["softmax"]]
                best_tau[mult] = max(sweep, key=lambda tau: sum(sweep[tau]))
                cell.setdefault("best_temperature", {})[str(mult)] = {"tau": float(best_tau[mult]),
                                                                     "accuracy": sweep[best_tau[mult]]}
            comparisons = {"ssmax vs softmax": ("ssmax", "softmax"),
                           "ssmax vs constant-matched": ("ssmax", "constant-matched"),
                           "ssmax vs best fixed temperature": ("ssmax", "temperature"),
                           "ssmax s0=1 vs softmax": ("ssmax s0=1", "softmax"),
                           # "reproduced" here is the scale-invariant paper's claim: it beats softmax and SSMax
                           "scale-invariant vs softmax": ("scale-invariant", "softmax"),
                           "scale-invariant vs ssmax": ("scale-invariant", "ssmax")}
            for name, (method, baseline) in comparisons.items():
                if method not in methods or (baseline != "temperature" and baseline not in methods):
                    continue
                for mult in VERDICT_MULT:
                    i = EVAL_MULT.index(mult)
                    ours = [acc[i] for acc in methods[method]]
                    theirs = (cell["best_temperature"][str(mult)]["accuracy"] if baseline == "temperature"
                              else [acc[i] for acc in methods[baseline]])
                    base_at_l = [acc[0] for acc in methods["softmax" if baseline == "temperature" else baseline]]
                    v = paired_verdict(ours, theirs, method_at_l=[acc[0] for acc in methods[method]],
                                       baseline_at_l=base_at_l, chance=chance)
                    cell["verdicts"][f"{name} at {mult}xL"] = {  # JSON has no NaN: null where there is none
                        "label": v.label, "difference": _number(v.difference),
                        "interval": [_number(x) for x in v.interval],
                        "seeds_used": v.seeds_used, "seeds_excluded": v.seeds_excluded, "reason": v.reason}
            out.append(cell)
    return out


def _number(value: float):
    return None if value != value else value


def _git(*args) -> str:
    """git in the checkout whose ssmax_lite this run imports (``PYTHONPATH`` may name another one)."""
    import ssmax_lite

    where = Path(ssmax_lite.__file__).resolve().parents[1]
    return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True).stdout.strip()


def provenance(argv, results) -> dict:
    """Where the map comes from. Each model records the commit checked out when it was trained and evaluated
    (a worker runs the code it imported when it started); the summary, the commit it was written at."""
    import torch

    git = _git
    from ssmax_lite.lab.train import code_modules

    used = [str(Path(*name.split(".")).with_suffix(".py")) for name in
            code_modules("ssmax_lite.lab.evaluate") + code_modules("ssmax_lite.lab.convert") + ("ssmax_lite.lab.verdicts",)]
    return {"command": "python benchmarks/regime_map.py " + " ".join(argv),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git("rev-parse", "HEAD"),
            "models_trained_at_commits": sorted({r.get("commit", "unknown") for r in results}),
            "uncommitted_changes_to_the_code_it_ran": bool(git("status", "--porcelain", "--", *sorted(set(used)))),
            "machine": f"{platform.machine()} CPU, {torch.backends.cpu.get_cpu_capability()}, one thread a model",
            "task": next((r["task"] for r in results if "task" in r), "haystack"),
            "torch": torch.__version__, "eval_mult": list(EVAL_MULT), "temperatures": list(TEMPERATURES),
            "verdict_mult": list(VERDICT_MULT), "methods": {name: {"attention": kind, "s_init": s0, "pe": list(pes)}
                                                            for name, (kind, s0, pes) in METHODS.items()}}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decays", type=float, nargs="+", default=list(DECAYS), help="weight decays")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="training seeds")
    parser.add_argument("--pe", nargs="+", default=["nope", "rope"], choices=["nope", "rope"])
    parser.add_argument("--task", default="haystack", choices=TASKS, help="haystack (chapter 3b's) or majority")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS), metavar="METHOD",
                        help=f"methods to train, of {', '.join(METHODS)} (softmax and ssmax are needed for verdicts)")
    parser.add_argument("--reuse", help="a stored map (same task) whose per-model results stand in for the "
                                        "methods not named in --methods; needs --out")
    parser.add_argument("--jobs", type=int, default=1, help="processes training side by side")
    parser.add_argument("--work", help="per-model results (default _build/regime_map, _majority for that task)")
    parser.add_argument("--out", help="the summary (default ssmax_lite/lab/data/regime_map.json, or "
                                      "regime_map_majority.json: package data, so Colab installs it with the library)")
    args = parser.parse_args(argv)
    out_given = args.out is not None
    suffix = "" if args.task == "haystack" else f"_{args.task}"
    args.work = args.work or str(ROOT / "_build" / f"regime_map{suffix}")
    args.out = args.out or str(ROOT / "ssmax_lite" / "lab" / "data" / f"regime_map{suffix}.json")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    reused = []
    if args.reuse:
        if not out_given:
            parser.error("--reuse needs --out (the stored map it reads stays as it is)")
        stored = json.loads(Path(args.reuse).read_text())
        if stored["provenance"].get("task", "haystack") != args.task:
            parser.error(f"--reuse {args.reuse} holds task {stored['provenance'].get('task', 'haystack')!r}, "
                         f"not {args.task!r}")
        reused = [m for m in stored["models"] if m["method"] not in args.methods and m["decay"] in args.decays
                  and m["pe"] in args.pe and m["seed"] in args.seeds]
    if not {"softmax", "ssmax"} <= set(args.methods) | {m["method"] for m in reused}:
        parser.error(f"--methods must include softmax and ssmax (every verdict compares with them), got {args.methods}")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    jobs = cells(args.decays, args.seeds, args.pe, args.methods, args.task)
    print(f"{len(jobs)} models, {args.jobs} at a time", flush=True)
    start, commit = time.perf_counter(), _git("rev-parse", "HEAD")
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = []
        for result in pool.imap_unordered(_run, [(job, args.work, commit) for job in jobs]):
            results.append(result)
            acc = result["accuracy"]["plain"]
            print(f"[{len(results)}/{len(jobs)} {time.perf_counter() - start:.0f} s] {job_name(result)}: "
                  f"accuracy at 1xL {acc[0]:.3f}, 32xL {acc[-1]:.3f}", flush=True)
    provenance_now = provenance(argv, results)
    if reused:
        provenance_now["reused"] = {"path": args.reuse, "models": len(reused),
                                    "made_by": json.loads(Path(args.reuse).read_text())["provenance"]}
        results = results + reused
    summary = {"provenance": provenance_now, "cells": summarize(results, args.decays, args.seeds),
               "models": sorted(results, key=job_name)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    for cell in summary["cells"]:
        print(f"decay {cell['decay']}, {cell['pe']} ({cell['evaluation']}):")
        for name, v in cell["verdicts"].items():
            difference = "no seed learned" if v["difference"] is None else f"{v['difference']:+.3f}"
            print(f"  {name:<44} {v['label']:<18} {difference}")
    print(f"wrote {args.out} [{time.perf_counter() - start:.0f} s]")
    return 0


def _run(args):
    return run_job(*args)


if __name__ == "__main__":
    raise SystemExit(main())
