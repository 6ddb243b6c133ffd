r"""Measure a trained :class:`~ssmax_lite.model.TinyTransformer` as the context grows.

* :func:`accuracy_by_length` — accuracy and loss at the answer positions at lengths ``m·L``
  (the number of needles stays fixed, so only the haystack grows): claims (b) and (c) of the paper.
* :func:`needle_attention` — the attention weight that each query puts on its needle, per layer
  and head, against the number of keys ``n`` the query sees: claim (d), attention fading measured
  inside a network.
* :func:`attention_map` — the attention matrix of one sequence, one layer and head.
* :func:`learned_scales` — the learned ``s`` (or constant ``c``) per layer and head.

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
from .tasks import IGNORE, LookupBatch, LookupTask

__all__ = ["LengthEval", "accuracy_by_length", "attention_map", "learned_scales", "needle_attention",
           "rope_theta"]


@dataclass(frozen=True)
class LengthEval:
    """Accuracy and answer loss of one model at several lengths ``m·L``.

    Attributes:
        multipliers: the ``m`` values; ``lengths = m · train_len``.
        lengths: sequence lengths evaluated.
        accuracy: fraction of answers whose arg-max prediction is the needle, one per length.
        loss: mean cross-entropy at the answer positions, one per length.
        n_answers: answers per length (``n_sequences · n_needles``).
    """

    multipliers: tuple
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


def _check_eval_args(model, task, train_len, multipliers, n_sequences, batch_size, any_lm=False):
    if any_lm and not (isinstance(model, torch.nn.Module) and hasattr(getattr(model, "config", None), "vocab_size")):
        raise ValueError(f"model must be a TinyTransformer or a module that maps tokens to logits and has "
                         f"config.vocab_size, got {type(model).__name__}")
    if not any_lm and not isinstance(model, TinyTransformer):
        raise ValueError(f"model must be a TinyTransformer, got {type(model).__name__}")
    if not isinstance(task, LookupTask):
        raise ValueError(f"task must be a LookupTask, got {type(task).__name__}")
    if model.config.vocab_size != task.vocab_size:
        raise ValueError(f"the model's vocab_size ({model.config.vocab_size}) does not match the task's "
                         f"({task.vocab_size})")
    if isinstance(train_len, bool) or not isinstance(train_len, int) or train_len < task.min_length():
        raise ValueError(f"train_len must be an int >= {task.min_length()}, got {train_len!r}")
    if len(multipliers) == 0 or any(not (isinstance(m, (int, float)) and m > 0) for m in multipliers):
        raise ValueError(f"multipliers must be a non-empty list of numbers > 0, got {multipliers!r}")
    for name, value in (("n_sequences", n_sequences), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _rows(batch: LookupBatch, start: int, size: int) -> LookupBatch:
    """Sequences ``start … start+size-1`` of a batch (so the batch size never changes the data)."""
    return LookupBatch(*(t[start:start + size] for t in (batch.tokens, batch.targets,
                                                         batch.query_positions, batch.needle_positions)))


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def accuracy_by_length(model: TinyTransformer, task: LookupTask, train_len: int,
                       multipliers=(1, 2, 4, 8, 16, 32), *, n_sequences: int = 64,
                       batch_size: int = 16, seed: int = 1234,
                       rope_theta_value: float | None = None) -> LengthEval:
    r"""Accuracy and loss at the answer positions for sequences of ``round(m · train_len)`` tokens.

    ``model`` is a :class:`~ssmax_lite.model.TinyTransformer` or any module that maps tokens
    ``(B, T)`` to logits ``(B, T, V)`` and has ``config.vocab_size`` (with ``rope_theta_value=None``),
    e.g. a Hugging Face model wrapped by :class:`ssmax_lite.hf_task.TokensToLogits`.
    ``accuracy = mean over answers of [argmax_v p(v | prefix) = needle]``; ``loss`` is the mean
    :math:`-\log p(\text{needle} \mid \text{prefix})`. Each length uses ``n_sequences`` sequences
    drawn at once from ``np.random.default_rng([seed, length])``, then run
    ``batch_size`` at a time.
    """
    _check_eval_args(model, task, train_len, multipliers, n_sequences, batch_size, any_lm=True)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    lengths = tuple(max(task.min_length(), int(round(m * train_len))) for m in multipliers)
    accuracy, loss = [], []
    with rope_theta(model, rope_theta_value):
        for length in lengths:
            everything = task.sample(n_sequences, length, np.random.default_rng([seed, length]))
            correct = total = 0
            loss_sum = 0.0
            for start in range(0, n_sequences, batch_size):
                batch = _rows(everything, start, batch_size).to(device)
                with _autocast(device):
                    logits = model(batch.tokens)
                answer = batch.targets != IGNORE
                picked, target = logits[answer].float(), batch.targets[answer]
                correct += int((picked.argmax(-1) == target).sum())
                loss_sum += float(F.cross_entropy(picked, target, reduction="sum"))
                total += int(answer.sum())
            accuracy.append(correct / total)
            loss.append(loss_sum / total)
    model.train(was_training)
    return LengthEval(tuple(multipliers), lengths, np.array(accuracy), np.array(loss),
                      n_sequences * task.n_needles)


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
    device = next(model.parameters()).device
    out = np.zeros((len(lengths), model.config.n_layers) + ((model.config.n_heads,) if heads == "each" else ()))
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
                    out[i, layer] += on_needle.float().sum(dim=(0, 1)).cpu().numpy()
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
