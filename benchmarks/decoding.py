r"""What does SSMax cost when decoding? One new query over a KV cache, forward only.

For each cache size ``N`` (the keys the new query sees), three calls on ``(B, H, ·, E)`` tensors:

``softmax``      ``torch.nn.functional.scaled_dot_product_attention(q, k, v)``: what a softmax decoder
                 runs for one query (it sees every cached key, so no mask)
``ssmax``        ``ssmax_lite.scaled_dot_product_attention(q, k, v, s=s)`` with one ``s`` per head: the
                 new query sees every cached key (no mask), ``n = N``
``ssmax-chunk``  ``--chunk`` new queries at once (speculative or chunked decoding, ``1 < L_q < N``) with
                 torch's ``causal_lower_right(L_q, N)`` mask, for SSMax and for ``softmax``

Timing: one warm-up call each, then ``--repeats`` rounds in which every variant runs ``--calls``
calls back to back, the order rotating from round to round. The table gives the median time of a
call, the ratio of medians to ``softmax`` for wall time and for the process's CPU time (on a shared
machine the CPU time leaves out the moments other jobs held the cores). On CUDA every timed batch
of calls ends with ``torch.cuda.synchronize()`` and the CPU-time column is left empty.

Usage::

    python benchmarks/decoding.py [--keys 256 4096] [--device cpu|cuda] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

try:
    import ssmax_lite
except ImportError:  # run from a checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import ssmax_lite

S_VALUE = 0.3  # a typical learned s; its value does not change the cost


def make_calls(args, n_keys: int) -> dict:
    """The timed calls for one cache size, as closures over fixed inputs."""
    gen = torch.Generator(device=args.device).manual_seed(0)
    dtype = getattr(torch, args.dtype)

    def randn(length):
        return torch.randn(args.batch, args.heads, length, args.head_dim, generator=gen,
                           device=args.device, dtype=dtype)

    q, k, v = randn(args.chunk), randn(n_keys), randn(n_keys)
    s = torch.full((args.heads,), S_VALUE, device=args.device, requires_grad=True)  # a model's parameter
    one = q[..., -1:, :]
    mask = causal_lower_right(args.chunk, n_keys)
    return {
        "softmax": lambda: F.scaled_dot_product_attention(one, k, v),
        "ssmax": lambda: ssmax_lite.scaled_dot_product_attention(one, k, v, s=s),
        "softmax-chunk": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        "ssmax-chunk": lambda: ssmax_lite.scaled_dot_product_attention(q, k, v, attn_mask=mask, s=s),
    }


def measure(args, n_keys: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of one call of each variant."""
    calls = make_calls(args, n_keys)
    names = list(calls)
    samples = {name: [] for name in names}
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    with torch.no_grad():
        for call in calls.values():
            call()
        sync()
        for round_index in range(args.repeats):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.calls):
                    calls[name]()
                sync()
                samples[name].append(((time.perf_counter() - start) / args.calls,
                                      (time.process_time() - start_cpu) / args.calls))
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in samples.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, nargs="+", default=[256, 4096], help="cache sizes N")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                        help="default: float32 on the CPU, bfloat16 on CUDA")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=4, help="new queries of the -chunk variants (>= 2)")
    parser.add_argument("--calls", type=int, default=20, help="calls per timed sample")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on the CPU")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU")
    if args.chunk < 2 or min(args.keys) < args.chunk or args.calls < 1 or args.repeats < 1:
        parser.error("need --chunk >= 2, every --keys >= --chunk, --calls and --repeats >= 1")
    args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"decoding, forward only, {args.device} ({torch.get_num_threads()} CPU threads), {args.dtype}, "
          f"B={args.batch}, H={args.heads}, E={args.head_dim}, chunk={args.chunk}, "
          f"{args.repeats} rounds of {args.calls} calls, torch {torch.__version__}")
    header = (f"{'N':>6}  {'softmax us':>10} {'ssmax us':>9} {'time':>6} {'cpu':>6}   "
              f"{'chunk: softmax us':>17} {'ssmax us':>9} {'time':>6} {'cpu':>6}")
    print(header)
    print("-" * len(header))
    on_cpu = args.device == "cpu"
    for n_keys in args.keys:
        m = measure(args, n_keys)
        row = f"{n_keys:>6}"
        for base, ours, width in (("softmax", "ssmax", 10), ("softmax-chunk", "ssmax-chunk", 17)):
            cpu = f"{m[ours][1] / m[base][1]:>6.3f}" if on_cpu else f"{'-':>6}"
            row += (f"  {1e6 * m[base][0]:>{width}.1f} {1e6 * m[ours][0]:>9.1f} "
                    f"{m[ours][0] / m[base][0]:>6.3f} {cpu} ")
        print(row, flush=True)
    print("time: ratio of median wall times to softmax; cpu: of median process CPU times (CPU only)")


if __name__ == "__main__":
    main()
