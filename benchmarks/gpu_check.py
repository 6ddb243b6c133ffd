r"""Train the GPU preset for every kind chapter 3 uses, evaluate it, and write one JSON file.

Chapter 3's kinds: softmax, ssmax and constant with NoPE, softmax and ssmax with RoPE (evaluated also
with θ × 50, as the chapter does). Each kind trains on ``--seeds`` (default 0, 1, 2) with the ``full``
preset (:data:`ssmax_lite.lab.train.PRESETS`) on its task with queries at every depth
(:data:`ssmax_lite.lab.experiments.STREAM_TASKS`), through
:func:`ssmax_lite.lab.experiments.length_experiment` (``task="stream"``), and is evaluated at 1, 2, 4, 8,
16 and 32 × L: accuracy and answer loss per length, and accuracy by the number of keys a query sees.

On a GPU every kind runs in its own process, all at once on the one GPU (``--jobs``, default: all
five): the model is small enough that one process leaves the GPU mostly idle, waiting for kernel
launches. On the CPU the kinds run one after the other. Budget: ≤ 8 minutes on one H200-class GPU.

The JSON (``<out>/<name>.json``, ``name`` from the GPU's name, e.g. ``nvidia-h200.json``) holds the
GPU's name, torch's and CUDA's versions, the precision used
(:func:`ssmax_lite.lab.train.precision_for`), the UTC date, the FLOPs per training step
(:func:`ssmax_lite.lab.train.flops_per_step`), each kind's wall time (its whole process: training and
evaluation of every seed) and training time per seed, whether every seed learned (answer loss at 1×L
≤ 5 % of chance, chance = ln of the number of values), and each kind's full ``length_experiment``
summary.

``--device cpu --tiny`` runs the same code at a size the CPU finishes in seconds (the preset at the
task's shortest L, 2 steps, one seed, 1 and 2 × L, 4 sequences): a test of the script, not a result.

``--task text`` does the same for chapter 3d: the ``full`` preset of :data:`ssmax_lite.lab.experiments.TEXT_RUNS`
(d = 256, 4 layers, L = 256, 2,000 steps of 64 windows of CPython's standard library), softmax and SSMax
with NoPE and RoPE and SSMax with bias with RoPE, evaluated by the loss per position bin up to 16×L (RoPE
also with θ × 50), and writes ``<gpu>-text.json``. Budget: ≤ 5 minutes on one H200-class GPU (not yet
measured: no session has had a GPU).

Usage::

    python benchmarks/gpu_check.py                         # on a GPU: writes book/data/gpu/<gpu>.json
    python benchmarks/gpu_check.py --task text             # on a GPU: writes book/data/gpu/<gpu>-text.json
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/check
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's ssmax_lite, in this process and (PYTHONPATH) in the workers
KINDS = (("nope", "softmax"), ("nope", "ssmax"), ("nope", "constant"), ("rope", "softmax"), ("rope", "ssmax"))
"""(pe, attention) of every kind chapter 3 trains."""
TEXT_KINDS = (("nope", "softmax"), ("nope", "ssmax"), ("rope", "softmax"), ("rope", "ssmax"), ("rope", "ssmax-bias"))
"""(pe, attention) of every kind chapter 3d trains on real text (``--task text``)."""
KINDS_BY_TASK = {"stream": KINDS, "text": TEXT_KINDS}
ROPE_THETA_SCALE = 50  # chapter 3 also evaluates the RoPE models with θ × 50, as the paper does
LEARNED = 0.05  # a seed has learned when its answer loss at 1×L is at most this fraction of chance
TINY = dict(steps=2, seeds=[0], eval_mult=[1, 2], n_eval=4)
TEXT_LEARNED = 0.6  # --task text: a seed has learned when its test loss at L is this far below the bytes' entropy


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--task", default="stream", choices=tuple(KINDS_BY_TASK),
                        help="stream (default): chapter 3's recall stream; text: chapter 3d's next-byte prediction "
                             "on CPython's standard library, evaluated per position up to 16×L (budget ≤ 5 min)")
    parser.add_argument("--tiny", action="store_true", help="a tiny run to test the script (no result)")
    parser.add_argument("--out", type=Path, default=ROOT / "book" / "data" / "gpu",
                        help="folder for <name>.json (default book/data/gpu)")
    parser.add_argument("--name", default=None, help="file name without .json (default: from the GPU's name)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--tiny: 0)")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    parser.add_argument("--jobs", type=int, default=None,
                        help="kinds trained at once, one process each (default: 5 on a GPU, 1 on the CPU)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    parser.add_argument("--worker", nargs=2, metavar=("PE", "ATTENTION"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-json", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def _settings(args) -> dict:
    """What every process of one check trains and evaluates."""
    from ssmax_lite.lab.experiments import STREAM_TASKS
    seeds = args.seeds if args.seeds is not None else (TINY["seeds"] if args.tiny else [0, 1, 2])
    steps = args.steps if args.steps is not None else (TINY["steps"] if args.tiny else None)
    if args.task == "text":  # the loss per position bin up to 16×L (with --tiny: 2×L of L = 8)
        return dict(seeds=seeds, steps=steps, train_len=8 if args.tiny else None,
                    eval_mult=TINY["eval_mult"] if args.tiny else [16], n_eval=TINY["n_eval"] if args.tiny else 16)
    return dict(seeds=seeds, steps=steps,
                train_len=STREAM_TASKS["full"].min_length() if args.tiny else None,
                eval_mult=TINY["eval_mult"] if args.tiny else [1, 2, 4, 8, 16, 32],
                n_eval=TINY["n_eval"] if args.tiny else 64)


def run_worker(args) -> int:
    """Train and evaluate one kind; write its summary and wall time to ``--worker-json``."""
    import torch

    from ssmax_lite.lab.experiments import length_experiment

    torch.set_num_threads(args.threads)
    pe, attention = args.worker
    s = _settings(args)
    start = time.perf_counter()
    summary, _ = length_experiment([attention], pe=pe, preset_name="full", seeds=s["seeds"],
                                   eval_mult=s["eval_mult"], train_len=s["train_len"], steps=s["steps"],
                                   rope_theta_scale=ROPE_THETA_SCALE if pe == "rope" else None,
                                   n_eval=s["n_eval"], progress=False, device=args.device, task=args.task)
    if args.device == "cuda":
        torch.cuda.synchronize()
    args.worker_json.write_text(json.dumps({"summary": summary, "wall_time_s": time.perf_counter() - start}))
    return 0


def device_name(device: str) -> str:
    import platform

    import torch
    if device == "cuda":
        return torch.cuda.get_device_name()
    return platform.processor() or platform.machine() or "cpu"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.worker is not None:
        return run_worker(args)
    import torch

    from ssmax_lite.lab.experiments import TEXT_RUNS
    from ssmax_lite.lab.train import flops_per_step, precision_for, preset

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU (use --device cpu --tiny to test the script)")
    kinds = KINDS_BY_TASK[args.task]
    jobs = args.jobs if args.jobs is not None else (len(kinds) if args.device == "cuda" else 1)
    if jobs < 1 or args.threads < 1:
        parser.error(f"--jobs and --threads must be >= 1, got --jobs {jobs} --threads {args.threads}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    s = _settings(args)
    overrides = {k: s[k] for k in ("steps", "train_len") if s[k] is not None}
    config = preset("full", **((TEXT_RUNS["full"] if args.task == "text" else {}) | overrides))
    gpu = device_name(args.device)
    name = args.name or (slug(gpu) + ("-text" if args.task == "text" else "") + ("-tiny" if args.tiny else ""))
    print(f"gpu_check on {gpu} ({args.device}, {precision_for(args.device)}): preset 'full', task {args.task}, "
          f"{config.steps} steps, L = {config.train_len}, seeds {s['seeds']}, {jobs} process(es) at once, "
          f"{flops_per_step(config) / 1e9:.1f} GFLOP per step", flush=True)

    start = time.perf_counter()
    results, walls = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        pending = list(kinds)
        running = []
        while pending or running:
            while pending and len(running) < jobs:
                pe, attention = pending.pop(0)
                out = Path(tmp) / f"{pe}-{attention}.json"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", pe, attention,
                       "--worker-json", str(out), "--device", args.device, "--threads", str(args.threads),
                       "--task", args.task]
                cmd += ["--tiny"] if args.tiny else []
                cmd += ["--seeds", *map(str, s["seeds"])]
                cmd += ["--steps", str(args.steps)] if args.steps is not None else []
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
                running.append((f"{pe}/{attention}", out, subprocess.Popen(cmd, env=env)))
            time.sleep(0.2)
            for item in list(running):
                key, out, process = item
                if process.poll() is None:
                    continue
                running.remove(item)
                if process.returncode != 0:
                    for _, _, other in running:
                        other.kill()
                    print(f"error: the process for {key} exited with {process.returncode}", file=sys.stderr)
                    return 1
                done = json.loads(out.read_text())
                results[key], walls[key] = done["summary"], done["wall_time_s"]
                print(f"{key}: {walls[key]:.1f} s", flush=True)
    total = time.perf_counter() - start

    learned = {}
    if args.task == "text":  # learned: the test loss in the bin that ends at L is 0.6 nats below the bytes' entropy
        from ssmax_lite.lab.corpus import byte_entropy
        chance = byte_entropy()
        threshold = f"test loss in the bin that ends at L <= bytes' entropy - {TEXT_LEARNED} nats"
        for key, summary in results.items():
            column = summary["position_edges"].index(summary["train_len"]) - 1
            kind = summary["results"][key.split("/")[1]]
            loss_l = kind["evaluations"]["plain"]["loss_by_position"][column]["per_seed"]
            learned[key] = {"loss_at_L": loss_l, "all_seeds_learned": all(v <= chance - TEXT_LEARNED for v in loss_l)}
    else:
        chance = math.log(config.task.n_values)
        threshold = f"answer loss at 1xL <= {LEARNED} x chance (ln n_values)"
        for key, summary in results.items():
            kind = summary["results"][key.split("/")[1]]
            loss_1x = kind["evaluations"]["plain"]["loss"][0]["per_seed"]
            acc_1x = kind["evaluations"]["plain"]["accuracy"][0]["per_seed"]
            learned[key] = {"loss_1x": loss_1x, "accuracy_1x": acc_1x,
                            "all_seeds_learned": all(v <= LEARNED * chance for v in loss_1x)}
    report = {
        "name": name, "device": args.device, "gpu": gpu, "torch": torch.__version__,
        "cuda": torch.version.cuda, "precision": precision_for(args.device),
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "tiny": args.tiny,
        "preset": "full", "task": args.task, "steps": config.steps, "train_len": config.train_len,
        "batch_size": config.batch_size, "seeds": s["seeds"], "eval_mult": s["eval_mult"],
        "flops_per_step": flops_per_step(config), "processes_at_once": jobs,
        "total_wall_time_s": total, "wall_time_s": walls,
        "train_time_s": {key: summary["results"][key.split("/")[1]]["wall_time_s"]
                         for key, summary in results.items()},
        "chance_loss": chance, "learned_threshold": threshold,
        "learned": learned, "summary": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"total {total:.1f} s; every seed learned: "
          + ", ".join(f"{k} {'yes' if v['all_seeds_learned'] else 'NO'}" for k, v in learned.items()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
