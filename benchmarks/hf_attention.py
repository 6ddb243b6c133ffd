r"""What does SSMax cost inside a Hugging Face model? A small Llama, ``"ssmax"`` against ``"sdpa"``.

Two copies of the same ``LlamaForCausalLM`` (built from a config, same seed) run forward + backward
of the language-model loss on one fixed batch: one with transformers' own ``"sdpa"`` attention, one
with :mod:`ssmax_lite.hf`'s ``"ssmax"`` (a learned ``s`` per layer and head, so its gradient is
computed too). A step is ``loss = model(ids, labels=ids).loss; loss.backward()``; gradients are
cleared between steps.

Timing: ``--warmup`` steps of each model, then ``--repeats`` rounds in which both run one step, the
order alternating (a busy neighbour on a shared machine slows both alike). The table gives the median
wall time and the median CPU time of the process (``time.process_time``, which leaves out the time
other jobs held the cores) and their ratios ssmax / sdpa.

Usage::

    python benchmarks/hf_attention.py [--length 2048] [--batch 1] [--repeats 15] [--threads 1] [--control]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

try:
    import ssmax_lite  # noqa: F401
except ImportError:  # run from a checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import LlamaConfig, LlamaForCausalLM

import ssmax_lite.hf as ssmax_hf

KINDS = ("sdpa", "ssmax")


def small_llama(kind: str, length: int, kv_heads: int, control: bool = False) -> LlamaForCausalLM:
    """4 layers, d = 256, 8 heads of 32, SwiGLU 688, vocab 1000: about 2.9M parameters."""
    config = LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=kv_heads, max_position_embeddings=length)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).train()
    if kind == "ssmax" and not control:
        ssmax_hf.enable_ssmax(model, train_length=length)
    return model


def make_step(kind: str, length: int, batch: int, kv_heads: int, control: bool = False):
    model = small_llama(kind, length, kv_heads, control)
    ids = torch.randint(0, model.config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(0))

    def step():
        model.zero_grad(set_to_none=True)
        model(ids, labels=ids, use_cache=False).loss.backward()

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--kv-heads", type=int, default=8, help="8: multi-head; fewer: grouped-query")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--control", action="store_true",
                        help="A/A control: the 'ssmax' row is a second sdpa model (shows the timing noise)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    steps = {kind: make_step(kind, args.length, args.batch, args.kv_heads, args.control) for kind in KINDS}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    wall = {kind: [] for kind in KINDS}
    cpu = {kind: [] for kind in KINDS}
    for round_ in range(args.repeats):
        for kind in (KINDS if round_ % 2 == 0 else KINDS[::-1]):
            w0, c0 = time.perf_counter(), time.process_time()
            steps[kind]()
            wall[kind].append(time.perf_counter() - w0)
            cpu[kind].append(time.process_time() - c0)

    print(f"small Llama (4 layers, d=256, 8 heads, {args.kv_heads} kv heads), B={args.batch}, L={args.length}, "
          f"forward+backward, float32; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{platform.processor() or platform.machine()}; {args.repeats} rounds"
          + ("; CONTROL: both rows are sdpa" if args.control else ""))
    print(f"{'attention':<10}{'wall s':>10}{'wall ratio':>12}{'cpu s':>10}{'cpu ratio':>11}")
    base_wall, base_cpu = statistics.median(wall["sdpa"]), statistics.median(cpu["sdpa"])
    for kind in KINDS:
        w, c = statistics.median(wall[kind]), statistics.median(cpu[kind])
        print(f"{kind:<10}{w:>10.3f}{w / base_wall:>12.3f}{c:>10.3f}{c / base_cpu:>11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
