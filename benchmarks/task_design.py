r"""Task design: on which recall stream does softmax fade in *accuracy*, and why?

Trains the ``quick``-sized model (2 layers, 4 heads, d = 64, L = 64, batch 32, NoPE, AdamW as in
``ssmax_lite.lab.train``) on one thread, one model at a time, for each design × attention kind × seed,
and prints one line per model:

* ``deep acc m×:`` accuracy at length ``m·L`` over the queries that see more than ``m·L/2`` keys
  (queries sit at every depth, so this is the accuracy *at* about ``m·L`` keys);
* ``all``: over every query of the length;
* the probe of each layer's best head at ``L`` (the head with the largest weight on the needle):
  its mean needle weight ``w``, the raw logit gap ``Δ = z_needle − mean(z_other)`` (before the
  ``s·log n`` or ``c`` multiplier) and ``Δmax = z_needle − max(z_other)``; then ``w32``, the same
  head's needle weight at ``32·L``; and the learned ``s`` (SSMax) or ``c`` (constant).

The sΔ = 1 boundary (chapter 2): one needle among ``n`` distractors at gap Δ gets weight
``1 / (1 + (n−1)·e^{−Δ})`` under softmax (→ 0 as n grows, whatever Δ) and
``1 / (1 + (n−1)·n^{−sΔ})`` under SSMax (→ 1 when sΔ > 1).

Designs (``--design``; the variants beyond :class:`~ssmax_lite.lab.tasks.RecallStreamTask`'s own
options are defined here, as research code):

* ``stream``: RecallStreamTask(16, 8, 8), filler values uniform over V;
* ``stream-fv1``: the same, one filler value per sequence (``filler_values=1``);
* ``stream-k64``: 64 keys; ``stream-n16``: 32 keys, 16 needles; ``stream-n4``: 4 needles;
* ``one-filler-token``: all filler is one repeated token ``pair(k', b)``;
* ``decoys``: half the filler is ``decoy(k, u_k)``, a separate token type that carries a needle's key
  and one wrong value per key and sequence;
* ``value-answers``: the target is a value token (V classes) instead of the needle token.

Usage (each model takes 15–45 s on one busy core)::

    python benchmarks/task_design.py --design stream-fv1 --attention softmax ssmax --seeds 0 1 2 --wd 2 --steps 600
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from ssmax_lite.lab.evaluate import accuracy_by_depth
from ssmax_lite.lab.model import ModelConfig, TinyTransformer
from ssmax_lite.lab.tasks import IGNORE, LookupBatch, RecallStreamTask
from ssmax_lite.lab.train import learning_rate, make_optimizer, train_step


@dataclass(frozen=True)
class VariantStream(RecallStreamTask):
    """RecallStreamTask with the research variants (same draws as the library class when all are off)."""

    filler_keys: int | None = None      # distinct filler keys per sequence (None: all K − N)
    decoy_rate: float = 0.0             # fraction of filler replaced by decoy(k, u_k) tokens
    value_answers: bool = False         # target = value token instead of the needle token

    @property
    def vocab_size(self) -> int:       # pairs, queries, decoys, value answers
        return 2 * self.n_keys * self.n_values + self.n_keys + self.n_values

    def sample(self, batch_size, length, rng):
        b, n, k_count, v_count, length = batch_size, self.n_needles, self.n_keys, self.n_values, int(length)
        rows = np.arange(b)[:, None]
        key_perm = np.argsort(rng.random((b, k_count)), axis=1)
        needle_keys = key_perm[:, :n]
        fk = self.filler_keys or (k_count - n)
        keys = np.take_along_axis(key_perm[:, n:n + fk], rng.integers(0, fk, (b, length)), axis=1)
        fv = self.filler_values or v_count
        value_sets = np.argsort(rng.random((b, v_count)), axis=1)[:, :fv]
        values = np.take_along_axis(value_sets, rng.integers(0, fv, (b, length)), axis=1)
        tokens = keys * v_count + values
        if self.decoy_rate > 0:
            shift = rng.integers(1, v_count, (b, n))                       # u_k != v_k
            which = rng.integers(0, n, (b, length))
            is_decoy = rng.random((b, length)) < self.decoy_rate
        slots = np.sort(np.argsort(rng.random((b, length)), axis=1)[:, :2 * n], axis=1)
        order = np.argsort(np.argsort(rng.random((b, 2 * n)), axis=1) % n, axis=1, kind="stable")
        needle_pos = np.take_along_axis(slots, order[:, 0::2], axis=1)
        query_pos = np.take_along_axis(slots, order[:, 1::2], axis=1)
        needle_values = rng.integers(0, v_count, (b, n))
        if self.decoy_rate > 0:
            decoy_key = np.take_along_axis(needle_keys, which, axis=1)
            decoy_val = (np.take_along_axis(needle_values, which, axis=1)
                         + np.take_along_axis(shift, which, axis=1)) % v_count
            tokens = np.where(is_decoy, k_count * v_count + k_count + decoy_key * v_count + decoy_val, tokens)
        tokens[rows, needle_pos] = needle_keys * v_count + needle_values
        tokens[rows, query_pos] = k_count * v_count + needle_keys
        targets = np.full((b, length), IGNORE, dtype=np.int64)
        targets[rows, query_pos] = (2 * k_count * v_count + k_count + needle_values if self.value_answers
                                    else tokens[rows, needle_pos])
        t = lambda a: torch.from_numpy(np.array(a, dtype=np.int64))  # noqa: E731
        return LookupBatch(t(tokens), t(targets), t(query_pos), t(needle_pos))


DESIGNS = {
    "stream": RecallStreamTask(16, 8, 8),
    "stream-fv1": RecallStreamTask(16, 8, 8, filler_values=1),
    "stream-k64": RecallStreamTask(64, 8, 8),
    "stream-k64-fv1": RecallStreamTask(64, 8, 8, filler_values=1),
    "stream-n16-fv1": RecallStreamTask(32, 8, 16, filler_values=1),
    "stream-n4-fv1": RecallStreamTask(16, 8, 4, filler_values=1),
    "one-filler-token": VariantStream(16, 8, 8, filler_values=1, filler_keys=1),
    "one-filler-token-k32": VariantStream(32, 8, 8, filler_values=1, filler_keys=1),
    "one-filler-token-k64": VariantStream(64, 8, 8, filler_values=1, filler_keys=1),
    "two-filler-tokens": VariantStream(16, 8, 8, filler_values=2, filler_keys=2),
    "decoys": VariantStream(16, 8, 8, decoy_rate=0.5),
    "decoys-only": VariantStream(16, 8, 8, decoy_rate=1.0),
    "value-answers": VariantStream(16, 8, 8, filler_values=1, value_answers=True),
    "value-answers-uniform": VariantStream(16, 8, 8, value_answers=True),
}


def train_model(task, attention: str, seed: int, *, steps=400, lr=3e-3, wd=0.1, warmup=20, train_len=64,
                batch_size=32):
    """The quick model trained as ``ssmax_lite.lab.train.train`` does (same step and optimiser), any task."""
    config = ModelConfig(vocab_size=task.vocab_size, d_model=64, n_layers=2, n_heads=4, attention=attention,
                         pe="nope", train_len=train_len)
    schedule = SimpleNamespace(lr=lr, warmup=warmup, steps=steps, weight_decay=wd)
    torch.manual_seed(seed)
    model, rng = TinyTransformer(config), np.random.default_rng(seed)
    optimizer = make_optimizer(model, schedule, "cpu")
    model.train()
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        batch = task.sample(batch_size, train_len, rng)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, schedule)
        losses.append(train_step(model, optimizer, batch, 1.0, "cpu").item())
    model.eval()
    return model, float(np.mean(losses[-50:])), time.perf_counter() - start


@torch.no_grad()
def gap_probe(model, task, length, n_sequences=32, seed=99):
    """Per layer, the head with the largest mean weight on the needle: that weight, and the raw gaps."""
    batch = task.sample(n_sequences, length, np.random.default_rng(seed))
    rows, x, out = torch.arange(n_sequences)[:, None], model.embed(batch.tokens), []
    qp, npos = batch.query_positions, batch.needle_positions
    for block in model.blocks:
        h = block.ln_attn(x)
        q, k, _ = block.attn._split_heads(h, None)
        z = ((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]))[rows, :, qp]     # (B, N, H, T) raw logits
        weights = block.attn.attention_weights(h, rope=None)[rows, :, qp, npos]     # (B, N, H)
        z_needle = z.gather(-1, npos[:, :, None, None].expand(*z.shape[:3], 1))[..., 0]
        other = torch.arange(z.shape[-1]) <= qp[:, :, None, None]                   # causal
        other = other & (torch.arange(z.shape[-1]) != npos[:, :, None, None])
        mean_other = (z * other).sum(-1) / other.sum(-1)
        max_other = z.masked_fill(~other, -1e9).max(-1).values
        head = int(weights.mean((0, 1)).argmax())
        out.append(dict(head=head, w=float(weights.mean((0, 1))[head]),
                        gap=float((z_needle - mean_other).mean((0, 1))[head]),
                        gap_max=float((z_needle - max_other).mean((0, 1))[head])))
        x = block(x)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--design", nargs="+", default=["stream"], choices=tuple(DESIGNS))
    parser.add_argument("--attention", nargs="+", default=["softmax", "ssmax"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--wd", type=float, default=0.1)
    parser.add_argument("--eval-mult", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--n-eval", type=int, default=32, help="evaluation sequences per length")
    parser.add_argument("--jsonl", default=None, help="append one JSON line per model to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for design in args.design:
        task = DESIGNS[design]
        for attention in args.attention:
            for seed in args.seeds:
                model, loss, seconds = train_model(task, attention, seed, steps=args.steps, lr=args.lr, wd=args.wd)
                depth = accuracy_by_depth(model, task, 64, args.eval_mult, n_sequences=args.n_eval, batch_size=4)
                deep = [float(depth.at(m * 32, m * 64)[i]) for i, m in enumerate(args.eval_mult)]
                probe, probe_long = gap_probe(model, task, 64), gap_probe(model, task, 64 * 32, n_sequences=4)
                scales = None if attention == "softmax" else model.length_scales().numpy().round(2).tolist()
                print(f"{design} {attention} seed {seed} steps {args.steps} wd {args.wd}: train {seconds:.0f}s "
                      f"loss {loss:.3f} | deep acc " + " ".join(f"{m}x {a:.3f}" for m, a in zip(args.eval_mult, deep))
                      + " | all " + " ".join(f"{a:.3f}" for a in depth.overall)
                      + " | " + " ".join(f"L{i}h{p['head']} w {p['w']:.2f} Δ {p['gap']:.1f} Δmax {p['gap_max']:.1f}"
                                         for i, p in enumerate(probe))
                      + " | w32 " + " ".join(f"{p['w']:.2f}" for p in probe_long)
                      + (f" | s/c {scales}" if scales else ""), flush=True)
                if args.jsonl:
                    with open(args.jsonl, "a") as f:
                        f.write(json.dumps(dict(design=design, attention=attention, seed=seed, steps=args.steps,
                                                lr=args.lr, wd=args.wd, train_s=seconds, loss=loss,
                                                deep=dict(zip(map(str, args.eval_mult), deep)),
                                                overall=depth.overall.tolist(), probe=probe,
                                                probe_32L=probe_long, scales=scales)) + "\n")


if __name__ == "__main__":
    main()
