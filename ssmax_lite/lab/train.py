r"""Train a :class:`~ssmax_lite.lab.model.TinyTransformer` on a :class:`~ssmax_lite.lab.tasks.LookupTask`.

One function, :func:`train`, takes a :class:`TrainConfig` (model, task, optimiser, seed) and returns a
:class:`TrainResult` (the trained model, the loss at every step, the wall time). The loss is the
cross-entropy at the answer positions only:

.. math::

    \mathcal{L} = -\frac{1}{|A|} \sum_{(b, t) \in A} \log p_\theta(y_{b,t} \mid x_{b, \le t}),

with :math:`A` the query positions of the batch. Optimiser as in the SSMax paper's pretraining
(AdamW, β = (0.9, 0.95), weight decay 0.1 only on matrices, gradient clipping 1.0), with a linear
warm-up and a cosine decay to 10 % of the peak learning rate, since the runs here are short.

Precision (:func:`precision_for`): on a GPU with native bf16 (Ampere and later) the loop uses bf16
autocast; on an older GPU (e.g. Colab's T4) fp16 autocast with a :class:`torch.amp.GradScaler`; on the
CPU plain fp32, deterministic for a seed: ``torch`` (weights) and the task's numpy generator are both
seeded from ``TrainConfig.seed``. The losses stay on the device during training (:class:`LossLog`) and are
copied to the host once every :data:`LOG_EVERY` steps, so that a GPU is not made to wait for the
CPU at every step. ``train(config, compile=True)`` runs the model through ``torch.compile``
(off by default; it pays on a GPU, where the tiny model is bound by kernel launches).

:func:`preset` gives the two sizes the book uses: ``"quick"`` (a CPU trains it in seconds) and
``"full"`` (for a GPU: a bigger model on the recall stream, :class:`~ssmax_lite.lab.tasks.RecallStreamTask`,
at L = 256; :func:`flops_per_step` gives its cost per step).

Optional cache: ``train(config, cache_dir=...)`` stores the trained weights under a hash of the
config *and* of the source of the modules that define the model, the task and the loop, so a later
chapter can reuse a model that an earlier one trained, and any code change trains afresh.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .model import ModelConfig, TinyTransformer
from .tasks import IGNORE, TASK_TYPES, LookupTask, RecallStreamTask

__all__ = ["LOG_EVERY", "LossLog", "PRECISIONS", "PRESETS", "TrainConfig", "TrainResult", "autocast_for",
           "default_cache_dir", "default_device", "fit", "flops_per_step", "make_grad_scaler", "make_optimizer",
           "precision_for", "preset", "train", "train_step"]

LOG_EVERY = 50  # steps between two copies of the losses from the device to the host


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (and so its cache key).

    Args:
        model: the :class:`~ssmax_lite.lab.model.ModelConfig`; its ``train_len`` is the training length.
        task: the :class:`~ssmax_lite.lab.tasks.LookupTask`.
        steps: optimiser steps.
        batch_size: sequences per step.
        lr: peak learning rate; ``warmup`` steps of linear warm-up, then cosine to ``0.1·lr``.
        weight_decay: AdamW decay on matrices (rank ≥ 2) only.
        grad_clip: gradient-norm clipping.
        seed: seeds the weights (torch) and the training data (numpy).
    """

    model: ModelConfig
    task: LookupTask = field(default_factory=LookupTask)
    steps: int = 400
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a ModelConfig, got {type(self.model).__name__}")
        if not isinstance(self.task, TASK_TYPES):
            raise ValueError(f"task must be one of {tuple(t.__name__ for t in TASK_TYPES)}, "
                             f"got {type(self.task).__name__}")
        if self.model.vocab_size != self.task.vocab_size:
            raise ValueError(f"model.vocab_size ({self.model.vocab_size}) must equal the task's "
                             f"vocab_size ({self.task.vocab_size})")
        if self.model.train_len < self.task.min_length():
            raise ValueError(f"model.train_len ({self.model.train_len}) must be at least the task's "
                             f"min_length() ({self.task.min_length()})")
        for name in ("steps", "batch_size", "seed"):
            value = getattr(self, name)
            low = 0 if name == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {self.warmup!r}")
        for name in ("lr", "grad_clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")

    @property
    def train_len(self) -> int:
        return self.model.train_len

    def with_(self, **changes) -> "TrainConfig":
        """A copy with some fields changed; model fields (``attention``, ``pe``, …) are accepted too."""
        model_fields = {k: changes.pop(k) for k in list(changes) if k in ModelConfig.__dataclass_fields__}
        model = replace(self.model, **model_fields) if model_fields else self.model
        return replace(self, model=model, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model, in eval mode, on the device it trained on.
        losses: the answer-position loss at every step (float32 numpy array of length ``steps``).
        wall_time: seconds the training loop took (for a cached model, the original run's time).
        config: the :class:`TrainConfig`.
        device: ``"cpu"`` or ``"cuda"``.
        from_cache: whether the weights were loaded from the cache.
    """

    model: TinyTransformer
    losses: np.ndarray
    wall_time: float
    config: TrainConfig
    device: str
    from_cache: bool = False

    def final_loss(self, last: int = 50) -> float:
        """Mean loss over the last ``last`` steps."""
        return float(np.mean(self.losses[-last:]))


# ---------------------------------------------------------------------------------- presets

PRESETS = {
    # CPU: the chapter's default. 2 layers, 4 heads, d = 64, one-step lookup at L = 64.
    "quick": dict(d_model=64, n_layers=2, n_heads=4, train_len=64, steps=400, batch_size=32,
                  lr=3e-3, warmup=20, task=LookupTask(8, 8, 4, tokens_per_needle=1)),
    # GPU (e.g. Colab): wider and deeper, L = 256, the recall stream with queries at every depth (32 of
    # them per sequence). The two-token LookupTask(64, 64, 4) that stood here stayed at chance on an H200
    # (answer loss 4.145 ≈ ln 64 for all 5 kinds): 4 supervised positions out of 256 are too sparse a
    # signal for the model to find the retrieving circuit. The same design at half the size (d = 128,
    # L = 128, 16 needles, 500 steps) learns on the CPU: see benchmarks/README.md, "GPU preset".
    "full": dict(d_model=256, n_layers=4, n_heads=8, train_len=256, steps=2000, batch_size=64,
                 lr=1e-3, warmup=200, task=RecallStreamTask(n_keys=64, n_values=16, n_needles=32)),
}


def preset(name: str = "quick", *, attention: str = "softmax", pe: str = "nope", seed: int = 0,
           **changes) -> TrainConfig:
    """The :class:`TrainConfig` of preset ``"quick"`` or ``"full"`` with the given attention, pe and seed.

    Further keyword arguments override any :class:`TrainConfig` or :class:`ModelConfig` field.
    """
    if name not in PRESETS:
        raise ValueError(f"preset name must be one of {tuple(PRESETS)}, got {name!r}")
    p = dict(PRESETS[name])
    task = changes.pop("task", p.pop("task"))
    model_keys = ("d_model", "n_layers", "n_heads", "train_len")
    model = ModelConfig(vocab_size=task.vocab_size, attention=attention, pe=pe,
                        **{k: p.pop(k) for k in model_keys})
    return TrainConfig(model=model, task=task, seed=seed, **p).with_(**changes)


def flops_per_step(config: TrainConfig) -> int:
    r"""Floating-point operations of one training step (forward and backward) of ``config``, by the usual count.

    With :math:`N` the weights that multiply activations (per layer :math:`4d^2` in attention and
    :math:`2 d\,d_{ff}` in the MLP, plus the output head's :math:`V d`; the embedding is a lookup, biases,
    norms and SSMax's scalars are left out), :math:`T` the training length and :math:`B` the batch:

    .. math::

        \text{FLOPs} = B\,T\,(6N + 12\,n_{\text{layers}}\,d\,T),

    6N per token for the matrix products (2 forward, 4 backward, Kaplan et al. 2020), and
    :math:`12\,n_{\text{layers}} d T` for the attention scores and their weighted sum over all
    :math:`T` keys (PaLM, Chowdhery et al. 2022, appendix B; causal masking's halving is not taken off).
    A way to scale a measured step time to another GPU, not a measurement.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    m = config.model
    d, d_ff = m.d_model, m.d_ff or 4 * m.d_model
    n_matmul = m.n_layers * (4 * d * d + 2 * d * d_ff) + m.vocab_size * d
    tokens = config.batch_size * config.train_len
    return tokens * (6 * n_matmul + 12 * m.n_layers * d * config.train_len)


# ---------------------------------------------------------------------------------- training


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def answer_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the answer positions (targets other than ``IGNORE``)."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``lr`` down to ``0.1·lr``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


PRECISIONS = ("bf16", "fp16", "fp32")
"""The three precisions :func:`precision_for` may choose (autocast dtype of the forward pass; the weights,
the optimiser state and the loss stay in fp32)."""

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def precision_for(device) -> str:
    """The precision training and evaluation use on ``device`` (``"cpu"``, ``"cuda"`` or a ``torch.device``).

    * CPU: ``"fp32"`` (no autocast: deterministic, and the book's stored outputs were made so);
    * CUDA with native bf16 units (compute capability ≥ 8: A100, L4, H100, …): ``"bf16"``;
    * any other CUDA GPU (e.g. Colab's free T4): ``"fp16"``, trained with a gradient scaler
      (:func:`make_grad_scaler`), since fp16's narrow range underflows small gradients.

    bf16 that the GPU only *emulates* counts as unsupported
    (``torch.cuda.is_bf16_supported(including_emulation=False)``): it runs, but slower than fp16.
    """
    kind = _device_type(device)
    if kind != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def _device_type(device) -> str:
    """``"cpu"``, ``"cuda"`` or ``"meta"`` for a device name or ``torch.device``; a ValueError for anything else.
    (``meta``, tensors without values that the tests use to check where tensors are built, counts as a CPU.)"""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        kind = None
    if kind not in ("cpu", "cuda", "meta"):
        raise ValueError(f"device must be 'cpu' or 'cuda' (or a torch.device of either), got {device!r}")
    return kind


def _check_precision(precision) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def autocast_for(device, precision: str):
    """The context to run a forward pass in: ``torch.autocast`` to bf16 or fp16, or no autocast for fp32."""
    _check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(_device_type(device), dtype=_AUTOCAST_DTYPES[precision])


def make_grad_scaler(device, precision: str) -> torch.amp.GradScaler | None:
    """A :class:`torch.amp.GradScaler` for fp16 training, ``None`` for bf16 and fp32 (which need none)."""
    _check_precision(precision)
    return torch.amp.GradScaler(_device_type(device)) if precision == "fp16" else None


def train_step(model: TinyTransformer, optimizer: torch.optim.Optimizer, batch, grad_clip: float,
               device: str, *, precision: str | None = None,
               scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One optimiser step on the answer loss; returns the loss (a detached float32 scalar).

    Forward under :func:`autocast_for` (``precision`` defaults to :func:`precision_for` of ``device``),
    backward, clip the gradient norm to ``grad_clip``, step. With fp16 the loss is multiplied by
    ``scaler``'s scale before the backward pass, the gradients are unscaled before they are clipped
    (so the clip sees their true norm), and ``scaler.step`` skips the step when a gradient overflowed,
    then ``scaler.update`` adapts the scale. fp16 needs ``scaler`` (from :func:`make_grad_scaler`,
    kept across steps); bf16 and fp32 take none.
    """
    precision = precision_for(device) if precision is None else precision
    _check_precision(precision)
    if (precision == "fp16") != (scaler is not None):
        raise ValueError(f"scaler must be a torch.amp.GradScaler for precision 'fp16' and None for "
                         f"'bf16' and 'fp32', got scaler={scaler!r} with precision {precision!r}")
    with autocast_for(device, precision):
        logits = model(batch.tokens)
    loss = answer_loss(logits, batch.targets)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    return loss.detach().float()


class LossLog:
    """The loss of every step, kept on the device and copied to the host once every ``every`` steps.

    ``loss.item()`` at every step would make the CPU wait for the GPU to finish the step before it
    may queue the next one; here the CPU waits once per ``every`` steps. :attr:`values` (a float32
    numpy array of length ``steps``) is complete after :meth:`flush`.
    """

    def __init__(self, steps: int, every: int = LOG_EVERY):
        self.values = np.empty(steps, dtype=np.float32)
        self.every = every
        self._pending: list[torch.Tensor] = []
        self._filled = 0

    def append(self, loss: torch.Tensor) -> None:
        self._pending.append(loss)
        if len(self._pending) >= self.every:
            self.flush()

    def flush(self) -> np.ndarray:
        """Copy the pending losses to the host (one transfer); returns :attr:`values`."""
        if self._pending:
            host = torch.stack(self._pending).float().cpu().numpy()
            self.values[self._filled:self._filled + len(host)] = host
            self._filled += len(host)
            self._pending.clear()
        return self.values


def make_optimizer(model: TinyTransformer, config: TrainConfig, device: str) -> torch.optim.AdamW:
    """AdamW with betas (0.9, 0.95); weight decay on matrices (rank >= 2) only, as in the paper."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]  # norms, biases, s, c
    groups = [{"params": matrices, "weight_decay": config.weight_decay},
              {"params": others, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), fused=(device == "cuda"))


def train(config: TrainConfig, *, device: str | None = None, progress: bool = True,
          cache_dir: str | Path | None = None, desc: str | None = None,
          compile: bool | str = False) -> TrainResult:
    """Train a fresh model for ``config`` (or load it from ``cache_dir``) and return a :class:`TrainResult`.

    Args:
        config: the run.
        device: ``"cpu"`` or ``"cuda"``; default :func:`default_device`.
        progress: show a ``tqdm.auto`` progress bar.
        cache_dir: a folder for trained weights (see :func:`default_cache_dir`), or ``None`` for no cache.
        desc: the progress bar's label, default ``"<attention>/<pe> seed <seed>"``.
        compile: ``False`` (default), ``True`` to run the model's forward and backward through
            ``torch.compile`` (backend inductor), or the name of another ``torch.compile`` backend
            (e.g. ``"aot_eager"``). Compiled kernels round differently in the last bits, so a
            compiled run has its own cache key.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    device = default_device() if device is None else device
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no GPU")
    backends = torch.compiler.list_backends(exclude_tags=())
    if not (isinstance(compile, bool) or compile in backends):
        raise ValueError(f"compile must be True, False or a torch.compile backend {tuple(backends)}, "
                         f"got {compile!r}")

    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{cache_key(config, device, compile=compile)}.pt"
        if cache_file.exists():
            return _load(cache_file, config, device)

    torch.manual_seed(config.seed)
    model = TinyTransformer(config.model).to(device)
    label = desc or f"{config.model.attention}/{config.model.pe} seed {config.seed}"
    result = fit(model, config, device=device, progress=progress, desc=label, compile=compile)
    if cache_file is not None:
        _save(cache_file, result)
    return result


def fit(model: torch.nn.Module, config: TrainConfig, *, device: str = "cpu", progress: bool = True,
        desc: str = "train", compile: bool | str = False) -> TrainResult:
    """Train ``model`` (already on ``device``) for ``config.steps`` steps of ``config``'s task; the loop of :func:`train`.

    ``model`` maps tokens ``(B, T)`` to logits ``(B, T, V)``: a :class:`~ssmax_lite.lab.model.TinyTransformer`,
    or another model wrapped so (chapter 6 wraps a Hugging Face model). Batches come from
    ``numpy.random.default_rng(config.seed)``. ``compile`` as in :func:`train` (checked there). Returns a
    :class:`TrainResult` with ``model`` in eval mode.
    """
    rng = np.random.default_rng(config.seed)
    optimizer = make_optimizer(model, config, device)
    precision = precision_for(device)
    scaler = make_grad_scaler(device, precision)
    step_model = model if compile is False else \
        torch.compile(model, **({} if compile is True else {"backend": compile}))  # shares model's parameters
    log = LossLog(config.steps)

    from tqdm.auto import trange

    model.train()
    start = time.perf_counter()
    for step in trange(config.steps, desc=desc, disable=not progress, leave=True):
        batch = config.task.sample(config.batch_size, config.train_len, rng).to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        log.append(train_step(step_model, optimizer, batch, config.grad_clip, device,
                              precision=precision, scaler=scaler))
    losses = log.flush()
    wall_time = time.perf_counter() - start
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError(f"training diverged (non-finite loss) for {desc}; lower lr={config.lr}")
    model.eval()
    return TrainResult(model, losses, wall_time, config, device)


# ---------------------------------------------------------------------------------- cache

def default_cache_dir() -> Path:
    """Where trained models are cached: ``$SSMAX_LITE_CACHE`` if set, else
    ``<repository>/_build/train_cache`` in a checkout of the book (git-ignored), else
    ``~/.cache/ssmax_lite/train_cache`` (e.g. when installed with pip in Colab)."""
    if os.environ.get("SSMAX_LITE_CACHE"):
        return Path(os.environ["SSMAX_LITE_CACHE"])
    root = Path(__file__).resolve().parents[2]
    if (root / "_toc.yml").exists() and (root / "ssmax_lite").is_dir():
        return root / "_build" / "train_cache"
    return Path.home() / ".cache" / "ssmax_lite" / "train_cache"


def cache_key(config: TrainConfig, device: str, *, compile: bool | str = False) -> str:
    """SHA-256 (first 16 hex digits) of the config, the device (on the CPU torch's thread count and
    vector code path, on a GPU its :func:`precision_for`), torch's version, ``compile`` and the code of
    the modules that define the model, the task and this loop (:func:`code_modules`), read by
    :func:`code_fingerprint`: a docstring or comment edit keeps the key, a change to the code changes it."""
    digest = hashlib.sha256()
    digest.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    # CPU kernels split their sums by thread, and order them by the vector instructions they use
    # (AVX-512, AVX2, or none with ATEN_CPU_CAPABILITY=default): both change the last bits of a run
    # on a GPU, bf16 and fp16 train different models
    if device == "cpu":
        path = f" threads {torch.get_num_threads()} {torch.backends.cpu.get_cpu_capability()}"
    else:
        path = f" {precision_for(device)}"
    compiled = f" compiled {compile}" if compile is not False else ""
    digest.update(f"{device} torch {torch.__version__}{path}{compiled}".encode())
    digest.update(_code_digest().encode())
    return digest.hexdigest()[:16]


def code_fingerprint(source: str) -> str:
    """SHA-256 of what ``source`` (Python code) computes: its parse tree without docstrings, comments,
    blank lines or line numbers (``ast.dump``), so that editing prose never changes it."""
    tree = _StripDocstrings().visit(ast.parse(source))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


class _StripDocstrings(ast.NodeTransformer):
    """Drops every statement that is a bare string: docstrings of modules, classes, functions and constants."""

    def visit_Expr(self, node):
        is_text = isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        return None if is_text else node


def code_modules(start: str = __name__) -> tuple[str, ...]:
    """``start`` and every ``ssmax_lite`` module it imports, directly or through another, found by
    reading their ``import`` statements (also those inside functions): the code a trained model depends on."""
    package = start.split(".")[0]
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(inspect.getsource(importlib.import_module(name)))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):  # from X import a: X, and X.a if a is a module
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), name.rpartition(".")[0])
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            todo.extend(t for t in targets if t.split(".")[0] == package and _is_module(t))
    return tuple(sorted(seen))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module, not a module
        return False


@functools.cache
def _code_digest() -> str:
    return "".join(f"{name} {code_fingerprint(inspect.getsource(importlib.import_module(name)))}\n"
                   for name in code_modules())


def _save(path: Path, result: TrainResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": result.model.state_dict(), "losses": torch.from_numpy(result.losses),
                "wall_time": float(result.wall_time)}, tmp)  # tensors and numbers only: loadable with weights_only
    tmp.replace(path)  # atomic: a reader never sees half a file


def _load(path: Path, config: TrainConfig, device: str) -> TrainResult:
    saved = torch.load(path, map_location=device, weights_only=True)  # runs no pickled code
    model = TinyTransformer(config.model).to(device)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return TrainResult(model, saved["losses"].numpy().astype(np.float32), float(saved["wall_time"]),
                       config, device, from_cache=True)
