r"""What does SSMax cost in a whole training step of the tiny model? Step-time ratio SSMax / softmax.

For each model size (the ``quick`` and the ``full`` preset of :mod:`ssmax_lite.lab.train`), one model
with ``attention="softmax"`` and one with ``attention="ssmax"`` are built with the same seed, and a
fixed batch of the preset's task is drawn. A *step* is what :func:`ssmax_lite.lab.train.train` does per
step: forward, answer-position loss, backward, gradient clipping, AdamW update (bf16 autocast on CUDA).

Timing: ``--warmup`` steps of each model first, then ``--repeats`` rounds in which both models run
one step each, the order alternating from round to round (interleaved, so that a busy neighbour on a
shared machine slows both alike). The table gives the median step time of each, their ratio (of wall
times, and on the CPU of the process's CPU times, which leave out the moments other jobs held the
cores), and tokens per second (``batch · L / median``). On CUDA every step ends with
``torch.cuda.synchronize()``.

``--compile`` adds both models run through ``torch.compile`` (the option ``train(compile=True)``;
backend ``--backend``, default inductor) to the same rounds, and prints their times, their ratio and
what compiling buys (eager / compiled step time) beside the eager ones.

Usage::

    python benchmarks/training_step.py [--sizes quick full] [--repeats 30] [--device cpu|cuda] [--compile]
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

from ssmax_lite.lab.model import TinyTransformer
from ssmax_lite.lab.train import default_device, make_optimizer, preset, train_step

KINDS = ("softmax", "ssmax")


def make_step(config, device: str, backend: str | None = None):
    """A closure that runs one training step of a fresh model for ``config`` on a fixed batch
    (through ``torch.compile(backend=backend)`` unless ``backend`` is None)."""
    torch.manual_seed(0)
    model = TinyTransformer(config.model).to(device).train()
    optimizer = make_optimizer(model, config, device)
    batch = config.task.sample(config.batch_size, config.train_len, np.random.default_rng(0)).to(device)
    step_model = model if backend is None else torch.compile(model, backend=backend)

    def step():
        train_step(step_model, optimizer, batch, config.grad_clip, device)
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def measure(size: str, device: str, warmup: int, repeats: int, backend: str | None) -> dict:
    """Median (wall, CPU) seconds of a step of each variant: ``softmax``, ``ssmax`` and, with a
    ``backend``, ``softmax compiled`` and ``ssmax compiled``; all interleaved in the same rounds."""
    modes = (None,) if backend is None else (None, backend)
    steps = {f"{kind}{' compiled' if mode else ''}": make_step(preset(size, attention=kind), device, mode)
             for mode in modes for kind in KINDS}
    names = list(steps)
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start, start_cpu = time.perf_counter(), time.process_time()
            steps[name]()
            times[name].append((time.perf_counter() - start, time.process_time() - start_cpu))
    config = preset(size)
    return {"size": size, "batch": config.batch_size, "L": config.train_len,
            "wall": {name: statistics.median(w for w, _ in t) for name, t in times.items()},
            "cpu": {name: statistics.median(c for _, c in t) for name, t in times.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["quick", "full"], choices=("quick", "full"))
    parser.add_argument("--device", default=default_device(), choices=("cpu", "cuda"))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on the CPU")
    parser.add_argument("--compile", action="store_true", help="also time both models under torch.compile")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend for --compile")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU")
    if args.threads:
        torch.set_num_threads(args.threads)
    backend = args.backend if args.compile else None
    on_cpu = args.device == "cpu"
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), "
          f"{args.repeats} interleaved rounds after {args.warmup} warm-up steps"
          f"{f', compiled with {backend}' if backend else ''}")
    header = (f"{'size':>6} {'B':>4} {'L':>5} {'softmax ms':>11} {'ssmax ms':>9} {'ratio':>6} {'cpu':>6} "
              f"{'softmax tok/s':>14} {'ssmax tok/s':>12}")
    if backend:
        header += f" | {'compiled: softmax ms':>20} {'ssmax ms':>9} {'ratio':>6} {'cpu':>6} {'speed-up':>8}"
    print(header)
    for size in args.sizes:
        r = measure(size, args.device, args.warmup, args.repeats, backend)
        wall, cpu = r["wall"], r["cpu"]
        tokens = r["batch"] * r["L"]

        def ratio(ours, base):
            cpu_ratio = f"{cpu[ours] / cpu[base]:>6.3f}" if on_cpu else f"{'-':>6}"
            return f"{wall[ours] / wall[base]:>6.3f} {cpu_ratio}"

        row = (f"{size:>6} {r['batch']:>4} {r['L']:>5} {1e3 * wall['softmax']:>11.1f} {1e3 * wall['ssmax']:>9.1f} "
               f"{ratio('ssmax', 'softmax')} {tokens / wall['softmax']:>14.0f} {tokens / wall['ssmax']:>12.0f}")
        if backend:
            row += (f" | {1e3 * wall['softmax compiled']:>20.1f} {1e3 * wall['ssmax compiled']:>9.1f} "
                    f"{ratio('ssmax compiled', 'softmax compiled')} "
                    f"{wall['ssmax'] / wall['ssmax compiled']:>8.2f}")
        print(row, flush=True)
    print("ratio: ssmax / softmax of median wall times; cpu: of median process CPU times (CPU only); "
          "speed-up: eager ssmax / compiled ssmax")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
