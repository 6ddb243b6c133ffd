r"""One registry of length scalings: how much each method multiplies the attention logits by.

Every method in this family replaces the attention logits :math:`q_i k_j^\top/\sqrt{E}` of
query :math:`i` by :math:`m_i \cdot q_i k_j^\top/\sqrt{E}`, with one multiplier :math:`m_i`
per query (and, for the learned ones, per head). Because :math:`m_i` does not depend on
the key :math:`j`, it can be folded into the query, :math:`q_i \leftarrow m_i q_i`, and the
ordinary fused attention kernel does the rest: that is how
:class:`ssmax_lite.lab.layers.CausalSelfAttention` runs every method below.

:math:`n` is the number of keys the query attends to. In causal self-attention without
a cache, :math:`n = \text{position} + 1` (0-based position), so a method written in terms of
the position is written here in terms of :math:`n` (``pos = n - 1``; Qwen's 1-based
position ``i`` is ``n``).

=======================  ===================================================================  =========  ===========
name                     multiplier :math:`m(n)`                                              learned    applied
=======================  ===================================================================  =========  ===========
``softmax``              :math:`1`                                                            —          —
``ssmax``                :math:`s_h \ln n`                                                    s          always
``ssmax-fixed``          :math:`s \ln n`, :math:`s` fixed                                     —          always
``ssmax-bias``           :math:`s_h \ln n + b_h`                                              s, b       always
``constant``             :math:`c_h` (no growth with n; a control)                            c          always
``chiang-log-n``         :math:`\ln n`                                                        —          always
``su-log-base``          :math:`\log_{L_0} n = \ln n / \ln L_0`                               —          always
``qwen-logn``            :math:`\log_{L} n` if :math:`n > L` else 1                           —          inference
``llama4-temperature``   :math:`1 + \beta \ln(\lfloor n / F \rfloor + 1)`                     —          inference
``yarn``                 :math:`(0.1 \ln f + 1)^2` (constant in n), :math:`f` = extension    —          inference
``learned-pn``           :math:`s_h p_n + b_h`, a free :math:`p_n` for every :math:`n \le L`  s, b, p    always
``constant-matched``     :math:`c'_h \ln L` (no growth with n; the control matched to SSMax)  c          always
=======================  ===================================================================  =========  ===========

"always" means the multiplier is used while training and at evaluation; "inference" means
it is the identity while the module is in training mode (``module.training``) and is applied
only in evaluation mode, as in Qwen's code (``not self.training``).

**Length constants, rescaled to the model's training length.** The sources fix their length
constants for models trained on thousands of tokens: Su's base :math:`L_0 = 512`, Qwen's
``seq_length`` (the training length), Llama 4's ``floor_scale`` :math:`F = 8192`. A tiny model
trained on 64 tokens would never reach 512 or 8192, so every such constant is an explicit
parameter whose default is the model's training length ``train_len``
(see :attr:`LengthScaling.source_constants` for the source's values and :func:`fixed_params`
for the rule). With these defaults Su's scaling equals 1 at the training length (as
:math:`\log_{512} n` does at 512), Qwen's and Llama 4's are exactly 1 up to the training
length and grow only beyond it (Llama 4's first step, to :math:`1 + 0.1 \ln 2`, is at
``n = F``, i.e. at the last training position when ``F = train_len``), and YaRN's factor is the
context extension :math:`f = L_{\text{context}} / L_{\text{train}}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch

from ..core._checks import check_count

__all__ = [
    "LengthScaling",
    "SCALINGS",
    "get_scaling",
    "fixed_params",
    "length_multiplier",
]


@dataclass(frozen=True)
class LengthScaling:
    """One method: its multiplier as a function of ``n`` and where it comes from.

    Attributes:
        name: the registry key, also the ``attention`` kind of ``CausalSelfAttention``.
        formula: the multiplier in LaTeX.
        learned: names of the per-head parameters learned by gradient descent
            (``"s"``, ``"bias"``, ``"c"``); empty for fixed methods.
        applied: ``"always"`` (used in training and at evaluation), ``"inference"``
            (identity in training mode, applied only in evaluation mode) or ``"never"``
            (softmax: the multiplier is always 1).
        depends_on: ``"n"`` (keys attended to), ``"position"`` (absolute position,
            = n - 1 here) or ``"context"`` (the whole context's length, not the query's).
        citation: a key of ``book/references.bib``, or ``None``.
        source_constants: the source's value of each length constant that
            :func:`fixed_params` rescales to the training length.
        note: one sentence on the source and on how it is mapped to the tiny model.
    """

    name: str
    formula: str
    learned: tuple[str, ...]
    applied: str
    depends_on: str
    citation: str | None
    source_constants: Mapping[str, float] = field(default_factory=dict)
    note: str = ""
    _multiplier: Callable = field(default=None, repr=False, compare=False)
    _defaults: Callable = field(default=None, repr=False, compare=False)

    def multiplier(self, n, context_len=None, **params):
        """``m(n)`` for counts ``n`` (numpy array or torch tensor, every entry >= 1), checked.

        ``params`` are the method's parameters (see :func:`fixed_params`; learned ones as
        floats or tensors broadcastable against ``n``). ``context_len`` is the number of
        keys in the whole context (default ``max(n)``); only ``"yarn"`` uses it.
        """
        check_count(n, "n")
        if context_len is None:
            context_len = float(n.max()) if isinstance(n, torch.Tensor) else float(np.max(n))
        return self.multiplier_of_counts(n, _xp(n).log(n), context_len, params)

    def multiplier_of_counts(self, n, log_n, context_len: float, params: dict):
        """``m(n)`` given ``n`` and ``log n`` (e.g. cached), unchecked: for the attention's hot path,
        whose counts are built by the library and whose parameters were checked when it was built."""
        return self._multiplier(n, log_n, context_len, params)


# --------------------------------------------------------------------------- the formulas


def _xp(n):
    """The array namespace of ``n``: torch for tensors, numpy otherwise (same function names)."""
    return torch if isinstance(n, torch.Tensor) else np


def _ones(n):
    return torch.ones_like(n) if isinstance(n, torch.Tensor) else np.ones_like(n, dtype=np.float64)


def _softmax(n, log_n, context_len, p):
    return _ones(n)


def _s_log_n(n, log_n, context_len, p):
    """SSMax: s · ln n (+ b)."""
    multiplier = p["s"] * log_n
    return multiplier if p.get("bias") is None else multiplier + p["bias"]


def _constant(n, log_n, context_len, p):
    return p["c"] * _ones(n)


def _log_n(n, log_n, context_len, p):
    """Chiang & Cholak: ln n."""
    return log_n


def _log_base(n, log_n, context_len, p):
    """Su: log_{L0} n = ln n / ln L0."""
    return log_n / math.log(p["base_len"])


def _qwen_logn(n, log_n, context_len, p):
    """Qwen-1: log_L(i) if i > L else 1, with i = n the 1-based position."""
    return _xp(n).where(n > p["train_len"], log_n / math.log(p["train_len"]), _ones(n))


def _llama4_temperature(n, log_n, context_len, p):
    """Llama 4: 1 + β ln(floor((pos + 1) / F) + 1), pos + 1 = n."""
    xp = _xp(n)
    return 1.0 + p["beta"] * xp.log(xp.floor(n / p["floor_scale"]) + 1.0)


def _yarn(n, log_n, context_len, p):
    """YaRN: (0.1 ln f + 1)² for an extension factor f > 1, else 1; the same for every n."""
    factor = p.get("factor")
    if factor is None:
        factor = context_len / p["train_len"]
    value = (0.1 * math.log(factor) + 1.0) ** 2 if factor > 1 else 1.0
    return value * _ones(n)


# ----------------------------------------------------------------- defaults and length constants


def _no_params(train_len, s_init=None, bias_init=0.0):
    return {}


def _ssmax_defaults(train_len, s_init=None, bias_init=0.0):
    return {"s": 1.0 / math.log(train_len) if s_init is None else float(s_init)}


def _ssmax_bias_defaults(train_len, s_init=None, bias_init=0.0):
    return {**_ssmax_defaults(train_len, s_init), "bias": float(bias_init)}


def _constant_defaults(train_len, s_init=None, bias_init=0.0):
    return {"c": 1.0}


def _su_defaults(train_len, s_init=None, bias_init=0.0):
    return {"base_len": float(train_len)}


def _qwen_defaults(train_len, s_init=None, bias_init=0.0):
    return {"train_len": float(train_len)}


def _llama4_defaults(train_len, s_init=None, bias_init=0.0):
    return {"floor_scale": float(train_len), "beta": 0.1}


def _yarn_defaults(train_len, s_init=None, bias_init=0.0):
    return {"train_len": float(train_len), "factor": None}


def _constant_matched(n, log_n, context_len, p):
    """The matched control: c'_h · ln L, one learned number per head times the log of the training length."""
    return p["c"] * math.log(p["train_len"]) * _ones(n)


def _constant_matched_defaults(train_len, s_init=None, bias_init=0.0):
    return {"c": 1.0 / math.log(train_len), "train_len": float(train_len)}


def _learned_pn(n, log_n, context_len, p):
    # one learned value per count n = 1 … L (p["pn"][n - 1]); counts beyond L use p_L
    pn = p["pn"]
    if isinstance(n, torch.Tensor):
        pn = torch.as_tensor(pn, dtype=n.dtype, device=n.device)
        index = (n.clamp(max=pn.shape[-1]) - 1).long()
    else:
        pn = np.asarray(pn, dtype=np.float64)
        index = (np.minimum(n, pn.shape[-1]) - 1).astype(np.int64)
    return p["s"] * pn[index] + p["bias"]


def _learned_pn_defaults(train_len, s_init=None, bias_init=0.0):
    return {"s": 1.0, "bias": 0.0, "pn": np.ones(train_len)}  # starts as softmax, whatever s_init says


def _scaling(name, formula, learned, applied, depends_on, citation, multiplier, defaults,
             source_constants=None, note=""):
    return LengthScaling(name=name, formula=formula, learned=tuple(learned), applied=applied,
                         depends_on=depends_on, citation=citation,
                         source_constants=dict(source_constants or {}), note=note,
                         _multiplier=multiplier, _defaults=defaults)


SCALINGS: dict[str, LengthScaling] = {s.name: s for s in (
    _scaling("softmax", r"1", (), "never", "n", None, _softmax, _no_params,
             note="Standard attention, the paper's configuration (a)."),
    _scaling("ssmax", r"s_h \ln n", ("s",), "always", "n", "nakanishi2025ssmax",
             _s_log_n, _ssmax_defaults,
             note="SSMax with one learned s per layer and head, configuration (b); "
                  "s starts at 1/ln(train_len)."),
    _scaling("ssmax-fixed", r"s \ln n", (), "always", "n", "nakanishi2025ssmax",
             _s_log_n, _ssmax_defaults,
             note="SSMax with s not learned, configuration (c); s = 1/ln(train_len) unless s_init is given."),
    _scaling("ssmax-bias", r"s_h \ln n + b_h", ("s", "bias"), "always", "n", "nakanishi2025ssmax",
             _s_log_n, _ssmax_bias_defaults,
             note="SSMax with a learned bias, configuration (d)."),
    _scaling("constant", r"c_h", ("c",), "always", "n", None, _constant, _constant_defaults,
             note="A learned temperature per head that does not grow with n: a control."),
    _scaling("chiang-log-n", r"\ln n", (), "always", "n", "chiang2022overcoming",
             _log_n, _no_params,
             note="Chiang & Cholak scale the query input by ln(string length) while training; "
                  "here n is the per-query count, as in SSMax."),
    _scaling("su-log-base", r"\log_{L_0} n = \ln n / \ln L_0", (), "always", "n", "su2021entropy",
             _log_base, _su_defaults, source_constants={"base_len": 512},
             note="Su's entropy-invariant scale log_512 n; the base L0 = 512 becomes the training length, "
                  "so the multiplier is 1 at the training length."),
    _scaling("qwen-logn", r"\log_{L} n \text{ if } n > L \text{ else } 1", (), "inference", "position",
             "bai2023qwen", _qwen_logn, _qwen_defaults,
             note="Qwen-1's LogN attention (use_logn_attn), only in evaluation mode; L is the training "
                  "length (Qwen's seq_length)."),
    _scaling("llama4-temperature", r"1 + \beta \ln(\lfloor n / F \rfloor + 1)", (), "inference",
             "position", "meta2025llama4", _llama4_temperature, _llama4_defaults,
             source_constants={"floor_scale": 8192},
             note="Llama 4's attention temperature tuning (NoPE layers, inference); floor_scale F = 8192 "
                  "becomes the training length, beta = 0.1 as in the source."),
    _scaling("yarn", r"(0.1 \ln f + 1)^2", (), "inference", "context", "peng2024yarn",
             _yarn, _yarn_defaults,
             note="YaRN's attention factor squared (it multiplies both q and k), set once per extension; "
                  "f = context length / training length unless factor is given."),
    _scaling("learned-pn", r"s_h\,p_n + b_h", ("s", "bias", "pn"), "always", "n", "nakanishi2025ssmax",
             _learned_pn, _learned_pn_defaults,
             note="The paper's Fig. 2 experiment: a free learned p_n for every n = 1 … L, shared by all layers "
                  "and heads (counts beyond L use p_L); starts as softmax (s = 1, b = 0, p_n = 1)."),
    _scaling("constant-matched", r"c'_h \ln L", ("c",), "always", "n", None, _constant_matched,
             _constant_matched_defaults,
             note="A control matched to SSMax: a learned constant parametrised as SSMax's s is (c' ln L, "
                  "c' starting at 1/ln L), so that an optimiser step moves it as far as s·ln L at n = L; "
                  "only the growth with n differs."),
)}


def get_scaling(name: str) -> LengthScaling:
    """The registry entry called ``name``; ``ValueError`` listing the names otherwise."""
    if not isinstance(name, str) or name not in SCALINGS:
        raise ValueError(f"scaling must be one of {tuple(SCALINGS)}, got {name!r}")
    return SCALINGS[name]


def fixed_params(name: str, train_len: int, *, s_init: float | None = None, bias_init: float = 0.0,
                 **overrides) -> dict:
    """The parameters of ``name`` for a model trained on ``train_len`` tokens.

    Length constants default to ``train_len`` (the sources' 512 or 8192 rescaled, see the
    module docstring); ``overrides`` set them explicitly, e.g. ``base_len=512`` for Su's
    original base, ``floor_scale=8192`` for Llama 4's, ``factor=4.0`` for a fixed YaRN
    extension. Learned parameters get their initial values (``s_init``, ``bias_init``).
    """
    scaling = get_scaling(name)
    if isinstance(train_len, bool) or not isinstance(train_len, (int, np.integer)) or train_len < 2:
        raise ValueError(f"train_len must be an int >= 2 (log 1 = 0), got {train_len!r}")
    params = scaling._defaults(int(train_len), s_init=s_init, bias_init=bias_init)
    unknown = set(overrides) - set(params)
    if unknown:
        raise ValueError(f"{name!r} has parameters {tuple(params) or '()'}; "
                         f"got unknown {tuple(sorted(unknown))}")
    params.update(overrides)
    _check_params(name, params)
    return params


def _check_params(name: str, params: dict) -> None:
    for key, value in params.items():
        if key == "factor" and value is None:
            continue
        if key == "pn":  # one value per count n = 1 … L
            values = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
            if values.ndim != 1 or values.size < 1 or not np.isfinite(values).all():
                raise ValueError(f"{name!r}: pn must be a 1-D array of finite numbers (p_1 … p_L), got {value!r}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                or not math.isfinite(value):
            raise ValueError(f"{name!r}: {key} must be a finite number, got {value!r}")
    for key in ("base_len", "train_len"):
        if key in params and params[key] <= 1:
            raise ValueError(f"{name!r}: {key} must be > 1 (it is the base of a logarithm), got {params[key]}")
    if "floor_scale" in params and params["floor_scale"] <= 0:
        raise ValueError(f"{name!r}: floor_scale must be > 0, got {params['floor_scale']}")
    if params.get("factor") is not None and params["factor"] <= 0:
        raise ValueError(f"{name!r}: factor must be > 0 (or None for context/train length), "
                         f"got {params['factor']}")


def length_multiplier(name: str, n, *, train_len: int, context_len=None, **params):
    """``m(n)`` of method ``name`` for a model trained on ``train_len`` tokens (for plots and tests).

    ``n`` is a number, numpy array or tensor of key counts (>= 1); ``params`` override the
    defaults of :func:`fixed_params` (learned ones: ``s``, ``bias``, ``c``, ``pn``).
    Returns the same kind of array as ``n`` (a numpy array for a number).

    >>> float(length_multiplier("qwen-logn", 128, train_len=64))  # log_64 128 = 7/6
    1.1666666666666667
    """
    learned = {k: params.pop(k) for k in ("s", "bias", "c", "pn") if k in params}
    resolved = fixed_params(name, train_len, **params)
    unknown = set(learned) - set(resolved)
    if unknown:
        raise ValueError(f"{name!r} has parameters {tuple(resolved) or '()'}; "
                         f"got unknown {tuple(sorted(unknown))}")
    resolved.update(learned)
    if not isinstance(n, torch.Tensor):
        n = np.asarray(n, dtype=np.float64)
    return get_scaling(name).multiplier(n, context_len=context_len, **resolved)
