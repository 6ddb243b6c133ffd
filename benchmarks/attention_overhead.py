r"""What does SSMax cost over plain softmax attention? Time and peak memory, forward + backward.

Ways to compute causal attention on ``(B, H, L, E)`` tensors (float32 on the CPU, bfloat16 on CUDA):

``softmax``        ``torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)``
``ssmax-fused``    ``ssmax_lite.scaled_dot_product_attention(q, k, v, is_causal=True, s=s)`` with one
                   ``s`` per head that requires grad: ``q`` is multiplied by :math:`s_h \log n_i`
                   (``n_i = i + 1``), then the same fused torch kernel runs
``ssmax-matrix``   the textbook way: the explicit ``L × L`` logits ``q kᵀ/√E``, the causal mask
                   (``-inf``), ``ssmax_lite.ssmax`` along the keys, then ``@ v``
``ssmax-pypi``     the peer package on PyPI, ``scalable-softmax`` (``pip install scalable-softmax``;
                   left out when it is not installed): its ``ScalableSoftmax`` module on the same
                   explicit masked logits, then ``@ v``. It is not quite the same function: one
                   scalar ``s``, and ``n`` = the row length ``L`` for every query, not the keys
                   the query sees; the cost is what is compared

Each step is one forward and one backward (upstream gradient: a fixed random tensor);
gradients reach ``q``, ``k``, ``v`` and ``s``.

**Time.** All variants of one length run in the same process: one warm-up step each, then
``--repeats`` rounds in which every variant runs once, the order rotating from round to round
so that no variant always follows the same neighbour. The table gives the median wall time
of a step and its ratio to ``softmax``, and the ratio of the median CPU times of the process
(``time.process_time``). On a machine shared with other jobs the wall time also counts the
moments those jobs hold the cores; the CPU time does not (it does count threads that spin
while waiting, so it is cleanest with ``--threads 1``).

**Peak memory.** PyTorch has no peak-memory counter for CPU tensors, and the profiler's
``profile_memory`` recorded almost none of the step's allocations in our tries (1 to 8 events), so
we measure the resident memory of the process instead, in a fresh subprocess per variant
and length:

1. glibc is told to serve every allocation of 64 KiB or more with its own ``mmap``
   (``MALLOC_MMAP_THRESHOLD_=65536``), so a freed tensor goes back to the OS at once and a
   later tensor cannot silently reuse memory that is already counted;
2. a warm-up step on a small input loads the kernels and starts the thread pool;
3. the inputs (``q, k, v``, the upstream gradient, ``s``) are allocated and filled, the
   resident size is read (``VmRSS`` in ``/proc/self/status``) and the kernel's high-water
   mark is reset (writing ``5`` to ``/proc/self/clear_refs``);
4. one step runs and the high-water mark ``VmHWM`` is read.

``step MiB`` = ``VmHWM − VmRSS`` before the step: everything the step itself allocates
(outputs, saved activations, gradients, temporaries, kernel buffers). ``total MiB`` adds the
inputs every variant needs (``q, k, v`` and the upstream gradient), i.e. the peak of the
attention call inside a model where those tensors exist anyway. Both ratios are printed.
This needs Linux (``/proc``); elsewhere the memory columns are left empty.

On CUDA (``--device cuda``) every step ends with ``torch.cuda.synchronize()``, the CPU-time
column is left empty, and memory is torch's own counter: ``torch.cuda.max_memory_allocated``
during the step minus the bytes allocated before it (``step``), in the same process.

``ssmax-matrix`` and ``ssmax-pypi`` build several ``B·H·L²`` matrices; when the estimated peak
(``MATRIX_COPIES`` float32 matrices) exceeds ``--matrix-limit-gib`` (default 8) they are skipped
with a printed note. The default run (L = 512, 2048, 8192, 5 repeats) takes 3 to 6 minutes on
two busy CPU cores.

Usage::

    python benchmarks/attention_overhead.py [--lengths 512 2048 8192] [--repeats 5] [--device cuda]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

try:
    import ssmax_lite
except ImportError:  # run from a checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import ssmax_lite

try:  # the peer package, optional: only this benchmark uses it, never the library or the tests
    from scalable_softmax import ScalableSoftmax
except ImportError:
    ScalableSoftmax = None

VARIANTS = ("softmax", "ssmax-fused", "ssmax-matrix") + (("ssmax-pypi",) if ScalableSoftmax else ())
EXPLICIT = ("ssmax-matrix", "ssmax-pypi")  # the variants that build L×L matrices
MATRIX_COPIES = 8  # L×L float32 matrices alive at the peak of ssmax-matrix (measured: about 7 at L=2048)
S_VALUE = 0.3  # a typical learned s; its value does not change the cost
WARMUP_LENGTH = 128


# --------------------------------------------------------------------------- the three variants


def make_inputs(batch: int, heads: int, length: int, head_dim: int, seed: int = 0, device: str = "cpu",
                dtype: torch.dtype = torch.float32):
    """q, k, v (requiring grad), the upstream gradient, and one s per head (float32, requiring grad)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    q, k, v, grad_out = (torch.randn(batch, heads, length, head_dim, generator=gen, device=device, dtype=dtype)
                         for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)
    s = torch.full((heads,), S_VALUE, device=device, requires_grad=True)
    return q, k, v, grad_out, s


def softmax_attention(q, k, v, s):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def ssmax_fused_attention(q, k, v, s):
    return ssmax_lite.scaled_dot_product_attention(q, k, v, is_causal=True, s=s)


def masked_logits(q, k):
    """The explicit ``L × L`` logits ``q kᵀ/√E`` with ``-inf`` above the diagonal."""
    length = q.shape[-2]
    logits = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    causal = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
    return logits.masked_fill(~causal, float("-inf"))


def ssmax_matrix_attention(q, k, v, s):
    """Explicit L×L: logits, causal -inf mask, SSMax over the keys (n_i = i + 1), then @ v."""
    weights = ssmax_lite.ssmax(masked_logits(q, k), s=s.view(-1, 1), dim=-1)  # n counts the unmasked keys
    return weights @ v


_PEER = {}


def ssmax_pypi_attention(q, k, v, s):
    """The peer package's ``ScalableSoftmax`` (one learned scalar s) on the explicit masked logits."""
    if q.device not in _PEER:
        _PEER[q.device] = ScalableSoftmax(s=S_VALUE).to(q.device)
    return _PEER[q.device](masked_logits(q, k), dim=-1) @ v


ATTENTION = {"softmax": softmax_attention, "ssmax-fused": ssmax_fused_attention,
             "ssmax-matrix": ssmax_matrix_attention, "ssmax-pypi": ssmax_pypi_attention}


def step(variant: str, q, k, v, grad_out, s) -> None:
    """One forward and backward; gradients are dropped afterwards so every step starts alike."""
    ATTENTION[variant](q, k, v, s).backward(grad_out)
    for t in (q, k, v, s, *(module.s for module in _PEER.values())):
        t.grad = None
    if q.device.type == "cuda":
        torch.cuda.synchronize()


def matrix_bytes(batch: int, heads: int, length: int) -> int:
    return batch * heads * length * length * 4


# --------------------------------------------------------------------------- time


def time_length(length: int, variants, args) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per step for each variant (``--repeats`` samples), interleaved."""
    inputs = make_inputs(args.batch, args.heads, length, args.head_dim, device=args.device, dtype=args.dtype)
    for variant in variants:  # warm-up
        step(variant, *inputs)
    times = {variant: [] for variant in variants}
    for round_index in range(args.repeats):
        shift = round_index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            start, start_cpu = time.perf_counter(), time.process_time()
            step(variant, *inputs)
            times[variant].append((time.perf_counter() - start, time.process_time() - start_cpu))
    return times


# --------------------------------------------------------------------------- memory


def _proc_status_bytes(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def measure_memory_here(variant: str, length: int, args) -> dict[str, int]:
    """Run inside the fresh subprocess: peak resident bytes of one step above the bytes before it."""
    step(variant, *make_inputs(args.batch, args.heads, WARMUP_LENGTH, args.head_dim))  # load kernels
    gc.collect()
    inputs = make_inputs(args.batch, args.heads, length, args.head_dim)
    gc.collect()
    before = _proc_status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset VmHWM to the current resident size
    step(variant, *inputs)
    peak = _proc_status_bytes("VmHWM")
    return {"step": peak - before, "inputs": sum(t.numel() * t.element_size() for t in inputs[:4])}


def measure_cuda_memory(variant: str, length: int, args) -> dict[str, int]:
    """Peak bytes torch allocates during one step on the GPU, above the bytes allocated before it."""
    inputs = make_inputs(args.batch, args.heads, length, args.head_dim, device="cuda", dtype=args.dtype)
    step(variant, *inputs)  # warm-up: kernels, workspaces and the cached constants exist from here on
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(variant, *inputs)
    return {"step": torch.cuda.max_memory_allocated() - before,
            "inputs": sum(t.numel() * t.element_size() for t in inputs[:4])}


def measure_memory(variant: str, length: int, args) -> dict[str, int] | None:
    """Peak memory of one step: on CUDA torch's counter, on the CPU a fresh subprocess (see the docstring)."""
    if args.device == "cuda":
        return measure_cuda_memory(variant, length, args)
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    command = [sys.executable, __file__, "--memory-of", variant, "--lengths", str(length),
               "--batch", str(args.batch), "--heads", str(args.heads), "--head-dim", str(args.head_dim)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per length (default 5)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                        help="default: float32 on the CPU, bfloat16 on CUDA")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for the timed runs and the memory subprocesses "
                             "(default: torch's choice). On a machine shared with other jobs, "
                             "1 thread avoids stalls at every parallel region")
    parser.add_argument("--matrix-limit-gib", type=float, default=8.0,
                        help="skip ssmax-matrix when MATRIX_COPIES L×L matrices exceed this (default 8)")
    parser.add_argument("--memory-of", choices=VARIANTS, help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args(argv)
    if any(length < 1 for length in args.lengths) or args.repeats < 1:
        parser.error("--lengths and --repeats must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU")
    args.dtype = getattr(torch, args.dtype or ("bfloat16" if args.device == "cuda" else "float32"))
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    if args.memory_of:
        print(json.dumps(measure_memory_here(args.memory_of, args.lengths[0], args)))
        return

    device = torch.cuda.get_device_name() if args.device == "cuda" else \
        f"CPU ({torch.get_num_threads()} threads)"
    print(f"causal attention, forward + backward, {str(args.dtype).removeprefix('torch.')}, {device}, "
          f"B={args.batch}, H={args.heads}, E={args.head_dim}, {args.repeats} interleaved repeats, "
          f"torch {torch.__version__}")
    if ScalableSoftmax is None:
        print("note: the peer package scalable-softmax is not installed; its row is left out")
    header = (f"{'L':>6}  {'variant':<13} {'median s':>9} {'time ratio':>10} {'cpu ratio':>10} "
              f"{'step MiB':>9} {'step ratio':>10} {'total MiB':>9} {'total ratio':>11}")
    print(header)
    print("-" * len(header))
    notes = []
    for length in args.lengths:
        start = time.perf_counter()
        variants = list(VARIANTS)
        estimate = MATRIX_COPIES * matrix_bytes(args.batch, args.heads, length) / 2**30
        if estimate > args.matrix_limit_gib:
            skipped = [variant for variant in variants if variant in EXPLICIT]
            variants = [variant for variant in variants if variant not in EXPLICIT]
            notes.append(f"L={length}: {' and '.join(skipped)} skipped, each would need about {estimate:.0f} GiB "
                         f"({MATRIX_COPIES} matrices of {args.batch}·{args.heads}·{length}² floats; "
                         f"limit --matrix-limit-gib {args.matrix_limit_gib:g})")
        times = time_length(length, variants, args)
        medians = {variant: statistics.median(wall for wall, _ in values) for variant, values in times.items()}
        cpu = {variant: statistics.median(used for _, used in values) for variant, values in times.items()}
        memory = {variant: measure_memory(variant, length, args) for variant in variants}
        for variant in variants:
            cpu_ratio = f"{cpu[variant] / cpu['softmax']:>10.3f}" if args.device == "cpu" else f"{'-':>10}"
            row = f"{length:>6}  {variant:<13} {medians[variant]:>9.4f} " \
                  f"{medians[variant] / medians['softmax']:>10.3f} {cpu_ratio} "
            if memory[variant] is None:
                row += f"{'-':>9} {'-':>10} {'-':>9} {'-':>11}"
            else:
                step_mib = memory[variant]["step"] / 2**20
                total_mib = (memory[variant]["step"] + memory[variant]["inputs"]) / 2**20
                base = memory["softmax"]
                row += (f"{step_mib:>9.1f} {memory[variant]['step'] / base['step']:>10.3f} {total_mib:>9.1f} "
                        f"{(memory[variant]['step'] + memory[variant]['inputs']) / (base['step'] + base['inputs']):>11.3f}")
            print(row, flush=True)
        print(f"{'':>6}  [L={length} took {time.perf_counter() - start:.0f} s]", flush=True)
    for note in notes:
        print("note:", note)
    print("ratios are to softmax at the same L. time ratio: of the median wall times; cpu ratio: of the "
          "median CPU times of the process (not counting time other jobs held the cores). step: memory "
          "the step allocates; total: step + q, k, v and the upstream gradient")


if __name__ == "__main__":
    main()
