r"""Does the GPU preset's task design learn? Evidence from the CPU at half the size.

The ``full`` preset (:data:`ssmax_lite.lab.train.PRESETS`) trains a 4-layer, d = 256 model on
``RecallStreamTask(64, 16, 32)`` at L = 256 (queries at every depth, 32 per sequence). A CPU cannot
afford that in the book's budget, so this script trains the same design at half the size: the same
4 layers, head size 32 (d = 128, 4 heads), the same 64 keys and 16 values, L = 128 with 16 needles (the
same density, one needle per 8 tokens), batch 32, the preset's lr 1e-3, ``--steps`` (default 500) with
10 % warm-up. One thread, one model at a time. For each attention kind and seed it prints the training
time, the mean training loss over the last 50 steps, and the answer loss and accuracy at 1×L on 64
held-out sequences, with "chance" = ln V = ln 16 (the loss of a model that knows the queried key but
not its value; the 1,088-way output makes uniform guessing far worse).

Usage::

    python benchmarks/gpu_preset_cpu.py --attention softmax ssmax --seeds 0 1 2 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from ssmax_lite.lab.evaluate import accuracy_by_length
from ssmax_lite.lab.layers import ATTENTION_KINDS
from ssmax_lite.lab.tasks import RecallStreamTask
from ssmax_lite.lab.train import flops_per_step, preset, train

HALF_SIZE = dict(d_model=128, n_heads=4, train_len=128, batch_size=32,
                 task=RecallStreamTask(n_keys=64, n_values=16, n_needles=16))


def half_size_config(attention: str, seed: int, steps: int, pe: str = "nope"):
    """The ``full`` preset at half the size (see the module docstring)."""
    return preset("full", attention=attention, pe=pe, seed=seed, steps=steps, warmup=steps // 10, **HALF_SIZE)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attention", nargs="+", default=["softmax", "ssmax"], choices=ATTENTION_KINDS)
    parser.add_argument("--pe", default="nope", choices=("nope", "rope"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    chance = math.log(HALF_SIZE["task"].n_values)
    print(f"half-size GPU preset: {flops_per_step(half_size_config('softmax', 0, args.steps)) / 1e9:.1f} GFLOP "
          f"per step; chance = ln {HALF_SIZE['task'].n_values} = {chance:.3f}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    rows = []
    for kind in args.attention:
        for seed in args.seeds:
            config = half_size_config(kind, seed, args.steps, args.pe)
            start = time.perf_counter()
            result = train(config, device="cpu", progress=False)
            ev = accuracy_by_length(result.model, config.task, config.train_len, (1,), n_sequences=64)
            row = dict(attention=kind, pe=args.pe, seed=seed, steps=args.steps, train_s=result.wall_time,
                       total_s=time.perf_counter() - start, final_train_loss=result.final_loss(),
                       loss_1x=float(ev.loss[0]), loss_1x_over_chance=float(ev.loss[0]) / chance,
                       accuracy_1x=float(ev.accuracy[0]))
            rows.append(row)
            print(f"{kind:<8} {args.pe} seed {seed}: train {row['train_s']:.0f} s, last-50 train loss "
                  f"{row['final_train_loss']:.4f}, 1×L loss {row['loss_1x']:.4f} "
                  f"({100 * row['loss_1x_over_chance']:.2f} % of chance), accuracy {row['accuracy_1x']:.3f}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"chance": chance, "torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
