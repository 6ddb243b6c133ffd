r"""What does SSMax cost in a whole training step of the tiny model? Step-time ratio SSMax / softmax.

For each model size (the ``quick`` and the ``full`` preset of :mod:`ssmax_lite.train`), one model
with ``attention="softmax"`` and one with ``attention="ssmax"`` are built with the same seed, and a
fixed batch of the preset's task is drawn. A *step* is what :func:`ssmax_lite.train.train` does per
step: forward, answer-position loss, backward, gradient clipping, AdamW update (bf16 autocast on CUDA).

Timing: ``--warmup`` steps of each model first, then ``--repeats`` rounds in which both models run
one step each, the order alternating from round to round (interleaved, so that a busy neighbour on a
shared machine slows both alike). The table gives the median step time of each, their ratio, and
tokens per second (``batch · L / median``). On CUDA every step ends with ``torch.cuda.synchronize()``.

Usage::

    python benchmarks/training_step.py [--sizes quick full] [--repeats 30] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    import ssmax_lite  # noqa: F401
except ImportError:  # run from a checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssmax_lite.model import TinyTransformer
from ssmax_lite.train import default_device, make_optimizer, preset, train_step

KINDS = ("softmax", "ssmax")


def make_step(config, device: str):
    """A closure that runs one training step of a fresh model for ``config`` on a fixed batch."""
    torch.manual_seed(0)
    model = TinyTransformer(config.model).to(device).train()
    optimizer = make_optimizer(model, config, device)
    batch = config.task.sample(config.batch_size, config.train_len, np.random.default_rng(0)).to(device)

    def step():
        train_step(model, optimizer, batch, config.grad_clip, device)
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def measure(size: str, device: str, warmup: int, repeats: int) -> dict:
    steps = {kind: make_step(preset(size, attention=kind), device) for kind in KINDS}
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {kind: [] for kind in KINDS}
    for round_ in range(repeats):
        order = KINDS if round_ % 2 == 0 else KINDS[::-1]
        for kind in order:
            start = time.perf_counter()
            steps[kind]()
            times[kind].append(time.perf_counter() - start)
    config = preset(size)
    tokens = config.batch_size * config.train_len
    median = {kind: statistics.median(t) for kind, t in times.items()}
    return {"size": size, "batch": config.batch_size, "L": config.train_len, "median": median,
            "tokens_per_s": {kind: tokens / m for kind, m in median.items()},
            "ratio": median["ssmax"] / median["softmax"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["quick", "full"], choices=("quick", "full"))
    parser.add_argument("--device", default=default_device(), choices=("cpu", "cuda"))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on the CPU")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), "
          f"{args.repeats} interleaved rounds after {args.warmup} warm-up steps")
    print(f"{'size':>6} {'B':>4} {'L':>5} {'softmax ms':>11} {'ssmax ms':>9} {'ratio':>6} "
          f"{'softmax tok/s':>14} {'ssmax tok/s':>12}")
    for size in args.sizes:
        r = measure(size, args.device, args.warmup, args.repeats)
        print(f"{size:>6} {r['batch']:>4} {r['L']:>5} {1e3 * r['median']['softmax']:>11.1f} "
              f"{1e3 * r['median']['ssmax']:>9.1f} {r['ratio']:>6.3f} "
              f"{r['tokens_per_s']['softmax']:>14.0f} {r['tokens_per_s']['ssmax']:>12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
