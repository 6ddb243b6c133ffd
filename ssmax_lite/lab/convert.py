r"""Switch a trained model's attention to SSMax (or another length scaling), then optionally fine-tune.

The SSMax paper's configurations (e) and (f) start from a softmax model:

* (e) "Softmax was replaced with SSMax post-training";
* (f) "switched to SSMax during the final phase of pretraining".

:func:`switch_attention` does the replacement in every
:class:`~ssmax_lite.lab.layers.CausalSelfAttention` of a model, keeping all trained weights. With
the default :math:`s = 1/\log L_{\text{train}}`,

.. math::

    s \log n = \frac{\log n}{\log L_{\text{train}}} = 1 \quad \text{at } n = L_{\text{train}},

so the switched model computes *exactly* what the softmax model computed at the last position
of a training sequence, flatter attention at earlier positions (:math:`n < L_{\text{train}}`)
and sharper attention beyond the training length. :func:`fine_tune` then continues training
the switched model (all weights and the new ``s``) for a few steps on the same task.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .layers import CausalSelfAttention
from .train import (LossLog, TrainConfig, TrainResult, _load, _save, cache_key, code_fingerprint, default_device,
                    learning_rate, make_grad_scaler, make_optimizer, precision_for, train, train_step)

__all__ = ["attention_modules", "fine_tune", "switch_attention", "switch_during_training"]


def attention_modules(model: nn.Module) -> list[CausalSelfAttention]:
    """Every :class:`CausalSelfAttention` inside ``model``, in order; ``ValueError`` if there is none."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    found = [m for m in model.modules() if isinstance(m, CausalSelfAttention)]
    if not found:
        raise ValueError("model has no CausalSelfAttention module to switch")
    return found


def switch_attention(model: nn.Module, attention: str = "ssmax", *, s_init: float | None = None,
                     bias_init: float = 0.0, scaling_params: dict | None = None) -> nn.Module:
    """Replace the attention of every layer of ``model`` by ``attention``, in place, and return ``model``.

    Args:
        model: a trained model (e.g. a :class:`~ssmax_lite.lab.model.TinyTransformer`).
        attention: a kind of :data:`ssmax_lite.lab.layers.ATTENTION_KINDS`, default ``"ssmax"``.
        s_init: the new ``s``; default ``1/log(train_len)`` so that ``s·log L_train = 1``.
        bias_init, scaling_params: as in :class:`~ssmax_lite.lab.layers.CausalSelfAttention`.

    A model with a frozen ``config`` dataclass that has an ``attention`` field (``TinyTransformer``)
    gets a copy of it with the new kind, so that e.g. ``model.length_scales()`` follows the switch.
    New parameters (``s``) are created on the model's device; build the optimizer afterwards.
    """
    for module in attention_modules(model):  # set_attention checks the kind before it changes anything
        module.set_attention(attention, s_init=s_init, bias_init=bias_init, scaling_params=scaling_params)
    config = getattr(model, "config", None)
    if dataclasses.is_dataclass(config) and any(f.name == "attention" for f in dataclasses.fields(config)):
        changes = {"attention": attention}
        if s_init is not None and any(f.name == "s_init" for f in dataclasses.fields(config)):
            changes["s_init"] = s_init
        model.config = dataclasses.replace(config, **changes)
    if hasattr(model, "share_learned_pn"):
        model.share_learned_pn()  # "learned-pn": one p_n for every layer, as when built with that kind
    return model


def fine_tune(model: nn.Module, config: TrainConfig, steps: int, *, lr: float | None = None,
              warmup: int | None = None, data_seed: int = 1, progress: bool = False) -> TrainResult:
    r"""Continue training ``model`` (all its parameters) on ``config``'s task for ``steps`` steps.

    The recipe is :mod:`ssmax_lite.lab.train`'s: the answer-position cross-entropy, AdamW with
    β = (0.9, 0.95), weight decay ``config.weight_decay`` on matrices only, gradient clipping
    ``config.grad_clip``, a linear warm-up over ``warmup`` steps (default ``steps // 10``) and a
    cosine decay from ``lr`` (default ``config.lr``) to ``0.1·lr``; a fresh optimizer, so its
    moments start from zero. Batches come from ``numpy.random.default_rng((config.seed, data_seed))``,
    a stream different from pre-training's (``default_rng(config.seed)``). Runs on the model's
    device, on the CPU deterministic for a seed.

    Returns:
        a :class:`~ssmax_lite.lab.train.TrainResult` whose ``model`` is ``model`` (in eval mode).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    lr = config.lr if lr is None else lr
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    warmup = steps // 10 if warmup is None else warmup
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= steps:
        raise ValueError(f"warmup must be an int in [0, steps={steps}], got {warmup!r}")
    attention_modules(model)  # raises for a model without attention to train
    device = next(model.parameters()).device
    schedule = dataclasses.replace(config, steps=steps, lr=lr, warmup=warmup)

    optimizer = make_optimizer(model, schedule, device.type)
    precision = precision_for(device)
    scaler = make_grad_scaler(device, precision)
    rng = np.random.default_rng((config.seed, data_seed))
    log = LossLog(steps)

    from tqdm.auto import trange

    model.train()
    start = time.perf_counter()
    for step in trange(steps, desc="fine-tune", disable=not progress, leave=True):
        batch = config.task.sample(config.batch_size, config.train_len, rng).to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, schedule)
        log.append(train_step(model, optimizer, batch, config.grad_clip, device.type,
                              precision=precision, scaler=scaler))
    losses = log.flush()
    wall_time = time.perf_counter() - start
    model.eval()
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError(f"fine-tuning diverged (non-finite loss); lower lr={lr}")
    return TrainResult(model, losses, wall_time, config, device.type)


def switch_during_training(config: TrainConfig, switch_at: int, attention: str = "ssmax", *,
                           lr: float | None = None, warmup: int = 10, cache_dir=None) -> TrainResult:
    r"""The paper's configuration (f): train ``config`` with softmax, switch to ``attention``, train on.

    Phase one is :func:`~ssmax_lite.lab.train.train` of ``config`` with ``attention="softmax"`` and
    ``steps=switch_at`` (a complete run with its own warm-up and cosine decay; cached in ``cache_dir``).
    The model is then switched with :func:`switch_attention` (:math:`s = 1/\log L`) and trained for the
    remaining ``config.steps - switch_at`` steps by :func:`fine_tune` at ``lr`` (default ``config.lr / 3``)
    with ``warmup`` warm-up steps; its batches are drawn from a stream other than phase one's. The total
    number of steps equals ``config.steps``. The paper gives neither the switch step nor the schedule after it.
    With ``cache_dir`` the finished model is cached too (keyed like :func:`~ssmax_lite.lab.train.train`'s, plus
    ``switch_at``, ``attention``, ``lr``, ``warmup`` and this module's code), so chapters 3b and 5 share it.

    Returns:
        the fine-tune's :class:`~ssmax_lite.lab.train.TrainResult` (its ``losses`` are phase two's).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    if isinstance(switch_at, bool) or not isinstance(switch_at, int) or not 1 <= switch_at < config.steps:
        raise ValueError(f"switch_at must be an int in [1, config.steps - 1 = {config.steps - 1}], got {switch_at!r}")
    lr = config.lr / 3 if lr is None else lr
    cache_file = None
    if cache_dir is not None:
        device = default_device()
        digest = hashlib.sha256(cache_key(config.with_(attention=attention), device).encode())
        digest.update(f"switch_during_training {switch_at} {attention} {lr!r} {warmup}".encode())
        digest.update(code_fingerprint(inspect.getsource(sys.modules[__name__])).encode())
        cache_file = Path(cache_dir) / f"{digest.hexdigest()[:16]}.pt"
        if cache_file.exists():
            return dataclasses.replace(_load(cache_file, config.with_(attention=attention), device), config=config)
    first = train(config.with_(attention="softmax", steps=switch_at), progress=False, cache_dir=cache_dir)
    model = switch_attention(first.model, attention)
    result = fine_tune(model, config, config.steps - switch_at, lr=lr, warmup=warmup)
    if cache_file is not None:
        _save(cache_file, result)
    return result
