r"""What does one SSMax call cost on top of torch's ``scaled_dot_product_attention``, at tiny sizes?

At tiny sizes the kernel itself takes microseconds, so what a wrapper adds per call (argument checks,
Python branches, the small kernels of :math:`s \log n_i`) is what decides the cost. Cases, on
``(B=1, H=4, L, E=16)`` float32 tensors with a per-head tensor ``s`` (no gradient: a forward call):

``decode-N``  one new query over ``N`` cached keys: ``ssmax_lite.scaled_dot_product_attention(q, k, v, s=s)``
              (the newest query sees every key, so no mask) against ``F.scaled_dot_product_attention(q, k, v)``
``causal-N``  ``N`` queries over ``N`` keys with ``is_causal=True``, both calls
``chunk-N``   4 new queries over ``N`` keys with torch's ``causal_lower_right(4, N)`` mask, both calls

Timing: the two calls of a case alternate in rounds of ``--calls`` calls each (the order swapping from
round to round), ``--rounds`` rounds; the table gives the median time per call of each and their
difference, which is the overhead. One CPU thread (``--threads``).

Usage::

    python benchmarks/call_overhead.py [--keys 8 256] [--rounds 21] [--calls 2000]
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


def cases(n_keys: int) -> dict[str, tuple]:
    """``name -> (torch call, SSMax call)`` for one key count, as closures over fixed inputs."""
    gen = torch.Generator().manual_seed(0)

    def randn(length):
        return torch.randn(1, 4, length, 16, generator=gen)

    s = torch.full((4,), 0.3)
    one, many, k, v = randn(1), randn(4), randn(n_keys), randn(n_keys)
    mask = causal_lower_right(4, n_keys)
    return {
        f"decode-{n_keys}": (lambda: F.scaled_dot_product_attention(one, k, v),
                             lambda: ssmax_lite.scaled_dot_product_attention(one, k, v, s=s)),
        f"causal-{n_keys}": (lambda: F.scaled_dot_product_attention(k, k, v, is_causal=True),
                             lambda: ssmax_lite.scaled_dot_product_attention(k, k, v, is_causal=True, s=s)),
        f"chunk-{n_keys}": (lambda: F.scaled_dot_product_attention(many, k, v, attn_mask=mask),
                            lambda: ssmax_lite.scaled_dot_product_attention(many, k, v, attn_mask=mask, s=s)),
    }


def median_per_call(pair, rounds: int, calls: int) -> tuple[float, float]:
    """Median seconds per call of the torch call and of the SSMax call, measured alternately."""
    for fn in pair:  # warm-up: kernels, caches
        for _ in range(50):
            fn()
    samples = ([], [])
    for r in range(rounds):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            for _ in range(calls):
                pair[which]()
            samples[which].append((time.perf_counter() - start) / calls)
    return statistics.median(samples[0]), statistics.median(samples[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[8, 256], help="key counts N")
    parser.add_argument("--rounds", type=int, default=21, help="alternating rounds per case")
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU ({torch.backends.cpu.get_cpu_capability()}), {args.threads} thread(s), "
          f"B=1, H=4, E=16, float32, per-head s; median of {args.rounds} rounds of {args.calls} calls")
    print(f"{'case':<12}{'torch SDPA µs':>15}{'SSMax µs':>12}{'overhead µs':>14}{'ratio':>8}")
    with torch.no_grad():
        for n_keys in args.keys:
            for name, pair in cases(n_keys).items():
                plain, ssmax = median_per_call(pair, args.rounds, args.calls)
                print(f"{name:<12}{plain * 1e6:>15.1f}{ssmax * 1e6:>12.1f}{(ssmax - plain) * 1e6:>14.1f}"
                      f"{ssmax / plain:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
