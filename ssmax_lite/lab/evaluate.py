r"""Measure a trained :class:`~ssmax_lite.lab.model.TinyTransformer` as the context grows.

* :func:`accuracy_by_length` — accuracy and loss at the answer positions at lengths ``m·L``
  (the number of needles stays fixed, so only the haystack grows): claims (b) and (c) of the paper.
* :func:`accuracy_by_depth` — the same, with every answer binned by the number of keys ``n`` its
  query sees (for :class:`~ssmax_lite.lab.tasks.RecallStreamTask`, whose queries sit at every depth).
* :func:`needle_attention` — the attention weight that each query puts on its needle, per layer
  and head, against the number of keys ``n`` the query sees: claim (d), attention fading measured
  inside a network.
* :func:`attention_map` — the attention matrix of one sequence, one layer and head.
* :func:`learned_scales` — the learned ``s`` (or constant ``c``) per layer and head.
* :func:`loss_by_position` and :func:`loss_by_bins` — a language model's loss at every position of real
  text (:class:`~ssmax_lite.lab.tasks.ByteTextTask`), or averaged over bins of positions: the paper's Fig. 5.

All evaluation data comes from its own generator (``seed``), so every model of a comparison sees
the same sequences. For RoPE models, ``rope_theta`` evaluates with another base θ (the paper raises
it 50× for long contexts) and puts the training θ back afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .model import TinyTransformer
from .tasks import IGNORE, TASK_TYPES, ByteTextTask, LookupBatch, LookupTask, RecallStreamTask
from .train import autocast_for, precision_for

__all__ = ["DepthEval", "LengthEval", "accuracy_by_depth", "accuracy_by_length", "attention_map", "depth_edges",
           "learned_scales", "loss_by_bins", "loss_by_position", "needle_attention", "position_edges",
           "rope_theta"]


@dataclass(frozen=True)
class LengthEval:
    """Accuracy and answer loss of one model at several lengths ``m·L``.

    Attributes:
        eval_mult: the ``m`` values; ``lengths = m · train_len``.
        lengths: sequence lengths evaluated.
        accuracy: fraction of answers whose arg-max prediction is the needle, one per length.
        loss: mean cross-entropy at the answer positions, one per length.
        n_answers: answers per length (``n_sequences · n_needles``).
    """

    eval_mult: tuple
    lengths: tuple
    accuracy: np.ndarray
    loss: np.ndarray
    n_answers: int


@contextlib.contextmanager
def rope_theta(model: TinyTransformer, theta: float | None):
    """Context manager: evaluate ``model`` with RoPE base ``theta`` (``None``: leave it as it is)."""
    if theta is None:
        yield model
        return
    old = model.rope.theta if model.rope is not None else None
    model.set_rope_theta(theta)
    try:
        yield model
    finally:
        model.rope.theta = old


def _check_eval_args(model, task, train_len, eval_mult, n_sequences, batch_size, any_lm=False):
    if any_lm and not (isinstance(model, torch.nn.Module) and hasattr(getattr(model, "config", None), "vocab_size")):
        raise ValueError(f"model must be a TinyTransformer or a module that maps tokens to logits and has "
                         f"config.vocab_size, got {type(model).__name__}")
    if not any_lm and not isinstance(model, TinyTransformer):
        raise ValueError(f"model must be a TinyTransformer, got {type(model).__name__}")
    if not isinstance(task, TASK_TYPES):
        raise ValueError(f"task must be one of {tuple(t.__name__ for t in TASK_TYPES)}, "
                         f"got {type(task).__name__}")
    if model.config.vocab_size != task.vocab_size:
        raise ValueError(f"the model's vocab_size ({model.config.vocab_size}) does not match the task's "
                         f"({task.vocab_size})")
    if isinstance(train_len, bool) or not isinstance(train_len, int) or train_len < task.min_length():
        raise ValueError(f"train_len must be an int >= {task.min_length()}, got {train_len!r}")
    if len(eval_mult) == 0 or any(not (isinstance(m, (int, float)) and m > 0) for m in eval_mult):
        raise ValueError(f"eval_mult must be a non-empty list of numbers > 0, got {eval_mult!r}")
    for name, value in (("n_sequences", n_sequences), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _rows(batch: LookupBatch, start: int, size: int) -> LookupBatch:
    """Sequences ``start … start+size-1`` of a batch (so the batch size never changes the data)."""
    return LookupBatch(*(t[start:start + size] for t in (batch.tokens, batch.targets,
                                                         batch.query_positions, batch.needle_positions)))


def _autocast(device: torch.device):
    """The forward pass in the precision training uses on ``device`` (fp32 on the CPU, bf16 or fp16 on a GPU)."""
    return autocast_for(device, precision_for(device))


@torch.no_grad()
def accuracy_by_length(model: TinyTransformer, task: LookupTask, train_len: int,
                       eval_mult=(1, 2, 4, 8, 16, 32), *, n_sequences: int = 64,
                       batch_size: int = 16, seed: int = 1234,
                       rope_theta_value: float | None = None) -> LengthEval:
    r"""Accuracy and loss at the answer positions for sequences of ``round(m · train_len)`` tokens.

    ``model`` is a :class:`~ssmax_lite.lab.model.TinyTransformer` or any module that maps tokens
    ``(B, T)`` to logits ``(B, T, V)`` and has ``config.vocab_size`` (with ``rope_theta_value=None``),
    e.g. a Hugging Face model wrapped by :class:`ssmax_lite.lab.hf_task.TokensToLogits`.
    ``accuracy = mean over answers of [argmax_v p(v | prefix) = needle]``; ``loss`` is the mean
    :math:`-\log p(\text{needle} \mid \text{prefix})`. Each length uses ``n_sequences`` sequences
    drawn at once from ``np.random.default_rng([seed, length])``, then run
    ``batch_size`` at a time.
    """
    _check_eval_args(model, task, train_len, eval_mult, n_sequences, batch_size, any_lm=True)
    lengths = tuple(max(task.min_length(), int(round(m * train_len))) for m in eval_mult)
    correct, total, loss_sum = (t.cpu().numpy() for t in _length_tallies(
        model, task, lengths, n_sequences=n_sequences, batch_size=batch_size, seed=seed,
        rope_theta_value=rope_theta_value))
    return LengthEval(tuple(eval_mult), lengths, correct / total, loss_sum / total, n_sequences * task.n_needles)


def _length_tallies(model, task, lengths, **sampling) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The compute half of :func:`accuracy_by_length`: right answers, answers and the summed answer loss
    per length, float64 tensors on the model's device (read back once, at the end)."""
    device = next(model.parameters()).device
    correct, total, loss_sum = (torch.zeros(len(lengths), dtype=torch.float64, device=device) for _ in range(3))
    for i, batch, logits in _logits_by_length(model, task, lengths, **sampling):
        picked, target = _at_answers(batch, logits)
        correct[i] += (picked.argmax(-1) == target).sum()
        loss_sum[i] += F.cross_entropy(picked, target, reduction="sum").double()
        total[i] += target.numel()
    return correct, total, loss_sum


def _at_answers(batch: LookupBatch, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits (float32) and targets at the answer positions, flattened row by row in order of position:
    ``logits[batch.targets != IGNORE]`` without a boolean mask, whose size only the data knows."""
    positions = batch.query_positions.sort(dim=-1).values
    rows = torch.arange(positions.shape[0], device=positions.device)[:, None]
    return logits[rows, positions].flatten(0, 1).float(), batch.targets[rows, positions].flatten()


def _logits_by_length(model, task, lengths, *, n_sequences: int, batch_size: int, seed: int,
                      rope_theta_value: float | None):
    """Yield ``(i, batch, logits)`` for every batch of the ``n_sequences`` sequences of length ``lengths[i]``,
    drawn at once from ``np.random.default_rng([seed, length])`` (so every model sees the same ones), run in
    eval mode with RoPE's θ set to ``rope_theta_value``; the model's mode is restored at the end."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with rope_theta(model, rope_theta_value):
            for i, length in enumerate(lengths):
                everything = task.sample(n_sequences, length, np.random.default_rng([seed, length]))
                for start in range(0, n_sequences, batch_size):
                    batch = _rows(everything, start, batch_size).to(device)
                    with _autocast(device):
                        logits = model(batch.tokens)
                    yield i, batch, logits
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class DepthEval:
    """Accuracy of one model at several lengths, with the answers binned by query depth.

    A query at position ``t`` sees ``n = t + 1`` keys. Bin ``j`` holds the answers with
    ``edges[j] < n <= edges[j + 1]``.

    Attributes:
        eval_mult, lengths: as in :class:`LengthEval`.
        edges: the bin edges in keys (``len(edges) - 1`` bins).
        accuracy: ``(len(lengths), n_bins)``; NaN where a bin holds no answer.
        count: ``(len(lengths), n_bins)`` answers per bin.
        overall: accuracy over every answer of each length (:func:`accuracy_by_length`'s ``accuracy``).
        loss: mean cross-entropy over every answer of each length (:func:`accuracy_by_length`'s ``loss``).
    """

    eval_mult: tuple
    lengths: tuple
    edges: tuple
    accuracy: np.ndarray
    count: np.ndarray
    overall: np.ndarray
    loss: np.ndarray

    def at(self, n_low: float, n_high: float) -> np.ndarray:
        """Accuracy per length over the answers with ``n_low < n <= n_high`` (pooled bins; the
        range must fall on bin edges). NaN for a length with no answer there."""
        edges = np.asarray(self.edges, dtype=np.float64)
        if n_low not in edges or n_high not in edges or not n_low < n_high:
            raise ValueError(f"n_low and n_high must be bin edges {self.edges} with n_low < n_high, "
                             f"got {n_low!r}, {n_high!r}")
        cols = slice(int(np.flatnonzero(edges == n_low)[0]), int(np.flatnonzero(edges == n_high)[0]))
        count = self.count[:, cols].sum(axis=1)
        correct = np.nansum(self.accuracy[:, cols] * self.count[:, cols], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, correct / np.maximum(count, 1), np.nan)


def depth_edges(train_len: int, eval_mult) -> tuple:
    """Bin edges in keys: 0, ``L/2``, ``L``, then ``2L, 4L, …`` up to the longest evaluated length."""
    top = max(eval_mult) * train_len
    edges = [0, train_len / 2, train_len]
    while edges[-1] < top:
        edges.append(edges[-1] * 2)
    return tuple(edges)


@torch.no_grad()
def accuracy_by_depth(model: TinyTransformer, task, train_len: int, eval_mult=(1, 4, 16, 32), *,
                      edges=None, n_sequences: int = 64, batch_size: int = 16, seed: int = 1234,
                      rope_theta_value: float | None = None) -> DepthEval:
    r"""Accuracy at lengths ``m · train_len`` with every answer binned by the keys its query sees.

    The sequences are those of :func:`accuracy_by_length` (same ``seed``), so ``overall`` and ``loss``
    equal its accuracy and loss (the loss up to the order of a float sum). For a query at position ``t``,
    ``n = t + 1``; ``edges`` default to :func:`depth_edges` (``0, L/2, L, 2L, 4L, …``). Meant for
    :class:`~ssmax_lite.lab.tasks.RecallStreamTask` (queries at every depth); with a
    :class:`~ssmax_lite.lab.tasks.LookupTask` every answer falls in the last bin of its length.
    """
    _check_eval_args(model, task, train_len, eval_mult, n_sequences, batch_size)
    edges = depth_edges(train_len, eval_mult) if edges is None else tuple(float(e) for e in edges)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be at least two increasing numbers, got {edges!r}")
    lengths = tuple(max(task.min_length(), int(round(m * train_len))) for m in eval_mult)
    correct, count, hits, total, loss_sum = (t.cpu().numpy() for t in _depth_tallies(
        model, task, lengths, edges, n_sequences=n_sequences, batch_size=batch_size, seed=seed,
        rope_theta_value=rope_theta_value))
    count = count.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(count > 0, correct / np.maximum(count, 1), np.nan)
    return DepthEval(tuple(eval_mult), lengths, edges, accuracy, count, hits / total, loss_sum / total)


def _depth_tallies(model, task, lengths, edges, **sampling) -> tuple[torch.Tensor, ...]:
    """The compute half of :func:`accuracy_by_depth`, float64 tensors on the model's device: right answers
    and answers per (length, bin), then right answers, answers and summed loss per length."""
    device = next(model.parameters()).device
    n_bins = len(edges) - 1
    correct, count = (torch.zeros(len(lengths), n_bins, dtype=torch.float64, device=device) for _ in range(2))
    hits, total, loss_sum = (torch.zeros(len(lengths), dtype=torch.float64, device=device) for _ in range(3))
    bounds = torch.tensor(edges, dtype=torch.float64, device=device)
    for i, batch, logits in _logits_by_length(model, task, lengths, **sampling):
        rows = torch.arange(batch.tokens.shape[0], device=logits.device)[:, None]
        picked = logits[rows, batch.query_positions].float()            # (B, N, vocab)
        target = batch.targets[rows, batch.query_positions]
        right = (picked.argmax(-1) == target).flatten().double()
        loss_sum[i] += F.cross_entropy(picked.flatten(0, 1), target.flatten(), reduction="sum").double()
        keys_seen = (batch.query_positions + 1).flatten().double()
        which = torch.bucketize(keys_seen, bounds) - 1                   # edges[j] < n <= edges[j+1]
        inside = ((which >= 0) & (which < n_bins)).double()
        which = which.clamp(0, n_bins - 1)
        correct[i].scatter_add_(0, which, right * inside)
        count[i].scatter_add_(0, which, inside)
        hits[i] += right.sum()
        total[i] += right.numel()
    return correct, count, hits, total, loss_sum


@torch.no_grad()
def needle_attention(model: TinyTransformer, task: LookupTask, lengths, *, n_sequences: int = 8,
                     batch_size: int = 2, seed: int = 4321, heads: str = "each",
                     rope_theta_value: float | None = None) -> np.ndarray:
    r"""Mean attention weight from each query onto its needle, per length, layer (and head).

    For a query at position ``t`` (it sees ``n = t + 1`` keys) and its needle at position ``j``,
    the weight is :math:`a_{t j}` of each layer's attention matrix (``attn.attention_weights``),
    averaged over the queries and ``n_sequences`` sequences of each length.

    ``heads="each"`` returns ``(len(lengths), n_layers, n_heads)``. ``heads="max"`` first takes,
    for every query, the largest weight on its needle over the heads of a layer (different heads
    may retrieve different keys), then averages: ``(len(lengths), n_layers)``.
    Builds ``T × T`` matrices, so keep ``batch_size`` small for long sequences.
    """
    if heads not in ("each", "max"):
        raise ValueError(f"heads must be 'each' or 'max', got {heads!r}")
    lengths = [int(n) for n in lengths]
    _check_eval_args(model, task, max(task.min_length(), min(lengths)), [1], n_sequences, batch_size)
    return _needle_weights(model, task, lengths, n_sequences=n_sequences, batch_size=batch_size, seed=seed,
                           heads=heads, rope_theta_value=rope_theta_value).cpu().numpy()


def _needle_weights(model, task, lengths, *, n_sequences, batch_size, seed, heads, rope_theta_value):
    """The compute half of :func:`needle_attention`: a float64 tensor on the model's device."""
    device = next(model.parameters()).device
    out = torch.zeros((len(lengths), model.config.n_layers) + ((model.config.n_heads,) if heads == "each" else ()),
                      dtype=torch.float64, device=device)
    with rope_theta(model, rope_theta_value):
        for i, length in enumerate(lengths):
            everything = task.sample(n_sequences, length, np.random.default_rng([seed, length]))
            for start in range(0, n_sequences, batch_size):
                batch = _rows(everything, start, batch_size).to(device)
                rows = torch.arange(batch.tokens.shape[0], device=device)[:, None]
                x = model.embed(batch.tokens)
                for layer, block in enumerate(model.blocks):
                    weights = block.attn.attention_weights(block.ln_attn(x), rope=model.rope)  # (B,H,T,T)
                    on_needle = weights[rows, :, batch.query_positions, batch.needle_positions]  # (B,N,H)
                    if heads == "max":
                        on_needle = on_needle.max(dim=-1).values
                    out[i, layer] += on_needle.float().sum(dim=(0, 1)).double()
                    del weights
                    x = block(x, rope=model.rope)
            out[i] /= n_sequences * task.n_needles
    return out


@torch.no_grad()
def attention_map(model: TinyTransformer, tokens: torch.Tensor, layer: int, head: int,
                  rope_theta_value: float | None = None) -> np.ndarray:
    """The ``(T, T)`` attention matrix of the first sequence of ``tokens`` in one layer and head."""
    n_layers, n_heads = model.config.n_layers, model.config.n_heads
    if not (isinstance(layer, int) and 0 <= layer < n_layers):
        raise ValueError(f"layer must be an int in [0, {n_layers}), got {layer!r}")
    if not (isinstance(head, int) and 0 <= head < n_heads):
        raise ValueError(f"head must be an int in [0, {n_heads}), got {head!r}")
    with rope_theta(model, rope_theta_value):
        weights = model.attention_weights(tokens[:1].to(next(model.parameters()).device))
    return weights[layer][0, head].float().cpu().numpy()


def learned_scales(model: TinyTransformer) -> np.ndarray:
    """The learned ``s`` (SSMax kinds) or ``c`` (``"constant"``) per layer and head, ``(n_layers, n_heads)``."""
    return model.length_scales().cpu().numpy()


@torch.no_grad()
def loss_by_position(model: TinyTransformer, task: ByteTextTask, length: int, *, n_sequences: int = 32,
                     batch_size: int = 8, seed: int = 1234, rope_theta_value: float | None = None) -> np.ndarray:
    r"""The next-token loss at every position of ``length``-token sequences, averaged over sequences.

    Entry ``t`` (0-based) is the mean over ``n_sequences`` windows of :math:`-\log p(x_{t+1} \mid x_{\le t})`,
    the loss of a prediction made from ``n = t + 1`` tokens. The windows come from
    ``np.random.default_rng([seed, length])`` (every model of a comparison sees the same text).
    ``rope_theta_value`` evaluates a RoPE model with another base θ, as in :func:`accuracy_by_length`.
    """
    if not isinstance(task, ByteTextTask):
        raise ValueError(f"task must be a ByteTextTask (every position has a target), got {type(task).__name__}")
    _check_eval_args(model, task, length, [1], n_sequences, batch_size)
    return (_position_loss_sums(model, task, length, n_sequences=n_sequences, batch_size=batch_size, seed=seed,
                                rope_theta_value=rope_theta_value) / n_sequences).cpu().numpy()


def _position_loss_sums(model, task, length, *, n_sequences, batch_size, seed, rope_theta_value) -> torch.Tensor:
    """The compute half of :func:`loss_by_position`: the loss at each position summed over the windows,
    a float64 tensor on the model's device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    everything = task.sample(n_sequences, length, np.random.default_rng([seed, length]))
    total = torch.zeros(length, dtype=torch.float64, device=device)
    with rope_theta(model, rope_theta_value):
        for start in range(0, n_sequences, batch_size):
            batch = _rows(everything, start, batch_size).to(device)
            with _autocast(device):
                logits = model(batch.tokens)
            loss = F.cross_entropy(logits.float().transpose(1, 2), batch.targets, reduction="none")
            total += loss.sum(0).double()
    model.train(was_training)
    return total


def position_edges(train_len: int, max_mult) -> np.ndarray:
    """Bin edges for :func:`loss_by_bins`: ``0, 1, 2, 4, …`` doubling up to ``max_mult · train_len``
    tokens seen, plus ``train_len`` itself (so that one bin ends exactly at L)."""
    if isinstance(train_len, bool) or not isinstance(train_len, int) or train_len < 1:
        raise ValueError(f"train_len must be an int >= 1, got {train_len!r}")
    if not (isinstance(max_mult, (int, float)) and max_mult >= 1):
        raise ValueError(f"max_mult must be a number >= 1, got {max_mult!r}")
    top = int(round(max_mult * train_len))
    edges = {0, train_len, top} | {2 ** k for k in range(top.bit_length()) if 2 ** k < top}
    return np.array(sorted(edges))


def loss_by_bins(model: TinyTransformer, task: ByteTextTask, edges, *, samples: int = 2048, min_windows: int = 16,
                 seed: int = 1234, rope_theta_value: float | None = None) -> np.ndarray:
    r"""The next-token loss averaged over each bin ``edges[i] < n ≤ edges[i+1]`` of tokens seen.

    In a causal model the prediction at position ``t`` depends on tokens ``0 … t`` only, so it is the same
    whether the window ends there or runs on. Each bin is therefore measured on its own windows of
    ``edges[i+1]`` tokens (:func:`loss_by_position`), as many as give about ``samples`` predictions in the
    bin and at least ``min_windows``: short contexts get thousands of windows for the price of a few long
    ones, and the curve is not dominated by the noise of a handful of texts at small ``n``.
    """
    edges = np.asarray(edges)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) or edges[0] < 0:
        raise ValueError(f"edges must be increasing integers from >= 0, got {edges.tolist()}")
    for name, value in (("samples", samples), ("min_windows", min_windows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    out = []
    for low, high in zip(edges[:-1].tolist(), edges[1:].tolist()):
        windows = max(min_windows, -(-samples // (high - low)))
        loss = loss_by_position(model, task, high, n_sequences=windows, batch_size=max(1, 16384 // high),
                                seed=seed, rope_theta_value=rope_theta_value)
        out.append(loss[low:high].mean())
    return np.array(out)
