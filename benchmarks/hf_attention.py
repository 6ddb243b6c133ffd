r"""What does SSMax cost inside a Hugging Face model? A small Llama, ``"ssmax"`` against ``"sdpa"``.

Two copies of the same ``LlamaForCausalLM`` (built from a config, same seed): one with transformers' own
``"sdpa"`` attention, one converted by ``ssmax_lite.hf.enable_ssmax(model, train_length=L)`` (a learned s per
layer and head, so its gradient is computed too). Cases, each timed for both models:

* ``train``: ``model(ids, attention_mask=mask, labels=ids, use_cache=False).loss.backward()``;
* ``prefill``: ``model(ids, attention_mask=mask, use_cache=True)`` under ``torch.inference_mode()`` (what
  ``generate()`` runs on a prompt);

each with multi-head attention (8 key/value heads) and grouped-query attention (2), and with a full batch (no
mask: the ``is_causal`` fast path) and a padded one (row 0 left-padded by L/8: a mask in every layer). On
CUDA every case runs under bf16 autocast (float32 weights), as training on a GPU usually does.

Timing: ``--warmup`` steps of each model, then ``--repeats`` rounds in which both run one step, the order
alternating (a busy neighbour slows both alike); on CUDA each step is synchronised before the clock stops.
The table gives the median wall time, on the CPU the median CPU time of the process (``time.process_time``,
which leaves out the time other jobs held the cores), and the ratios ssmax / sdpa.

``--profile`` counts, with torch's profiler, the operators each model calls per layer (those called from
Python or by autograd, not the ones they call inside), in one forward pass and one train step, and lists
the ones SSMax adds. ``--check-sync`` (CUDA) counts the host syncs of one train step of each model with
``torch.cuda.set_sync_debug_mode("warn")``, and runs the attention function under ``"error"``.

Usage::

    python benchmarks/hf_attention.py --threads 1                        # CPU: every case, L = 2048, B = 1
    python benchmarks/hf_attention.py --threads 1 --profile --repeats 0  # CPU operator counts only
    python benchmarks/hf_attention.py --device cuda --check-sync         # GPU: bf16 autocast, B = 4
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

try:
    import ssmax_lite  # noqa: F401
except ImportError:  # run from a checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import transformers
from transformers import LlamaConfig, LlamaForCausalLM

import ssmax_lite.hf as ssmax_hf

KINDS = ("sdpa", "ssmax")
LAYERS = 4
# operators that only describe a tensor (no arithmetic): not counted as work
METADATA = {"aten::view", "aten::expand", "aten::unsqueeze", "aten::reshape", "aten::_unsafe_view", "aten::slice",
            "aten::as_strided", "aten::select", "aten::t", "aten::transpose", "aten::detach", "aten::alias",
            "aten::lift_fresh", "aten::contiguous", "aten::squeeze", "aten::permute"}


def small_llama(kind: str, length: int, kv_heads: int, device, control: bool = False) -> LlamaForCausalLM:
    """4 layers, d = 256, 8 heads of 32, SwiGLU 688, vocab 1000: about 2.9M parameters."""
    config = LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=LAYERS,
                         num_attention_heads=8, num_key_value_heads=kv_heads, max_position_embeddings=length)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(device)
    model.set_attn_implementation("sdpa")
    if kind == "ssmax" and not control:
        ssmax_hf.enable_ssmax(model, train_length=length)
    return model


def make_step(model, case: str, padded: bool, length: int, batch: int, device, autocast):
    ids = torch.randint(0, model.config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(0))
    ids = ids.to(device)
    mask = None
    if padded:
        mask = torch.ones_like(ids)
        mask[0, :length // 8] = 0

    def amp():
        return torch.autocast(device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()

    def train():
        model.train().zero_grad(set_to_none=True)
        with amp():
            loss = model(ids, attention_mask=mask, labels=ids, use_cache=False).loss
        loss.backward()

    def prefill():
        with torch.inference_mode(), amp():
            model.eval()(ids, attention_mask=mask, use_cache=True)

    return train if case == "train" else prefill


def timed(step, device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    w0, c0 = time.perf_counter(), time.process_time()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - w0, time.process_time() - c0


def top_level_ops(step) -> collections.Counter:
    """Operators called from Python or by autograd during ``step`` (not those they call), by name."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    counts = collections.Counter()
    for event in prof.events():
        parent = event.cpu_parent
        if event.name.startswith("aten::") and (parent is None or not parent.name.startswith("aten::")):
            copies = event.name == "aten::to" and any(c.name == "aten::_to_copy" for c in event.cpu_children)
            if event.name not in METADATA and (event.name != "aten::to" or copies):
                counts[event.name] += 1
    return counts


def profile_ops(args, device, autocast) -> None:
    print(f"\noperators per layer (CPU profile; no metadata-only ops such as view/expand, no aten::to without a copy), "
          f"B={args.batch}, L={args.length}")
    print(f"{'case':<28}{'sdpa':>8}{'ssmax':>8}{'added':>8}  ops SSMax adds per layer (removes)")
    for case in ("forward", "train"):
        for kv_heads in (8, 2):
            for padded in (False, True):
                counts = {}
                for kind in KINDS:
                    model = small_llama(kind, args.length, kv_heads, device)
                    step = make_step(model, "train" if case == "train" else "prefill", padded, args.length,
                                     args.batch, device, autocast)
                    step()  # warm-up: lazy initialisation is not counted
                    counts[kind] = top_level_ops(step)
                added, removed = counts["ssmax"] - counts["sdpa"], counts["sdpa"] - counts["ssmax"]
                total = {kind: sum(c.values()) / LAYERS for kind, c in counts.items()}
                name = f"{case}, {kv_heads} kv, {'padded' if padded else 'full'}"
                listed = ", ".join(f"{op[6:]} ×{n / LAYERS:g}" for op, n in sorted(added.items()))
                listed += f" ({', '.join(op[6:] for op in removed)})" if removed else ""
                print(f"{name:<28}{total['sdpa']:>8.1f}{total['ssmax']:>8.1f}"
                      f"{total['ssmax'] - total['sdpa']:>8.1f}  {listed}")


def check_sync(args, device, autocast) -> None:
    """CUDA: host syncs of one train step per model (sync debug "warn"), and the attention function under "error"."""
    print("\nhost syncs per train step (torch.cuda.set_sync_debug_mode('warn'))")
    for padded in (False, True):
        syncs = {}
        for kind in KINDS:
            step = make_step(small_llama(kind, args.length, 2, device), "train", padded, args.length, args.batch,
                             device, autocast)
            step()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    step()
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            syncs[kind] = sum("synchroniz" in str(w.message) for w in caught)
        print(f"  {'padded' if padded else 'full'}: sdpa {syncs['sdpa']}, ssmax {syncs['ssmax']}")
    layer = small_llama("ssmax", args.length, 2, device).model.layers[0].self_attn
    q = torch.randn(args.batch, 8, args.length, 32, device=device)
    k = torch.randn(args.batch, 2, args.length, 32, device=device)
    masks = {"none": None, "bool": torch.ones(args.batch, 1, args.length, args.length, dtype=torch.bool, device=device)}
    for name, mask in masks.items():
        torch.cuda.set_sync_debug_mode("error")
        try:
            ssmax_hf.ssmax_attention_forward(layer, q, k, k, mask, scaling=32 ** -0.5)
            print(f"  ssmax_attention_forward, mask {name}: no sync")
        finally:
            torch.cuda.set_sync_debug_mode("default")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (float32) or cuda (bf16 autocast)")
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=None, help="default: 1 on the CPU, 4 on CUDA")
    parser.add_argument("--cases", nargs="+", default=["train", "prefill"], choices=["train", "prefill"])
    parser.add_argument("--kv-heads", nargs="+", type=int, default=[8, 2], help="8: multi-head; 2: grouped-query")
    parser.add_argument("--padding", nargs="+", default=["full", "padded"], choices=["full", "padded"])
    parser.add_argument("--autocast", choices=["none", "bf16", "fp16"], default=None,
                        help="default: bf16 on CUDA, none on the CPU")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--control", action="store_true",
                        help="A/A control: the 'ssmax' model is a second sdpa model (shows the timing noise)")
    parser.add_argument("--profile", action="store_true", help="operator counts per layer (CPU profile)")
    parser.add_argument("--check-sync", action="store_true", help="CUDA: count host syncs")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    args.batch = args.batch or (4 if device.type == "cuda" else 1)
    autocast = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[
        args.autocast or ("bf16" if device.type == "cuda" else "none")]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"small Llama ({LAYERS} layers, d=256, 8 heads), B={args.batch}, L={args.length}, "
          f"{'float32' if autocast is None else f'{autocast} autocast, float32 weights'}; torch {torch.__version__}, "
          f"transformers {transformers.__version__}, {where}, {torch.get_num_threads()} thread(s); "
          f"{args.repeats} rounds" + ("; CONTROL: both models are sdpa" if args.control else ""))
    if args.repeats:
        print(f"{'case':<28}{'sdpa ms':>10}{'ssmax ms':>10}{'ratio':>8}" + ("" if device.type == "cuda" else
                                                                        f"{'cpu ratio':>11}"))
    for case in args.cases if args.repeats else ():
        for kv_heads in args.kv_heads:
            for padding in args.padding:
                steps = {kind: make_step(small_llama(kind, args.length, kv_heads, device, args.control), case,
                                         padding == "padded", args.length, args.batch, device, autocast)
                         for kind in KINDS}
                for step in steps.values():
                    for _ in range(args.warmup):
                        timed(step, device)
                times = {kind: [] for kind in KINDS}
                for round_ in range(args.repeats):
                    for kind in (KINDS if round_ % 2 == 0 else KINDS[::-1]):
                        times[kind].append(timed(steps[kind], device))
                wall = {kind: statistics.median(t[0] for t in times[kind]) for kind in KINDS}
                cpu = {kind: statistics.median(t[1] for t in times[kind]) for kind in KINDS}
                print(f"{f'{case}, {kv_heads} kv, {padding}':<28}{wall['sdpa'] * 1e3:>10.1f}{wall['ssmax'] * 1e3:>10.1f}"
                      f"{wall['ssmax'] / wall['sdpa']:>8.3f}"
                      + ("" if device.type == "cuda" else f"{cpu['ssmax'] / cpu['sdpa']:>11.3f}"))
                del steps
    if args.profile:
        profile_ops(args, device, autocast)
    if args.check_sync:
        if device.type != "cuda":
            raise SystemExit("--check-sync needs --device cuda")
        check_sync(args, device, autocast)
    return 0


if __name__ == "__main__":
    sys.exit(main())
