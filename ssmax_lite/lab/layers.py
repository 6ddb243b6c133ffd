r"""Multi-head causal self-attention with softmax, SSMax, or any method of the length-scaling registry.

``attention`` chooses how the logits of query :math:`i` (which sees :math:`n_i = i + 1`
keys) are scaled before the softmax:

======================  =========================================  ==================================
``attention``           logit multiplier                           paper configuration
======================  =========================================  ==================================
``"softmax"``           1                                          (a) standard softmax
``"ssmax"``             :math:`s_h \log n_i`, :math:`s_h` learned  (b) SSMax
``"ssmax-fixed"``       :math:`s_h \log n_i`, :math:`s_h` fixed    (c) no learned scale
``"ssmax-bias"``        :math:`s_h \log n_i + b_h`, both learned   (d) SSMax with bias
``"constant"``          :math:`c_h`, learned (no growth with n)    a control, not in the paper
``"learned-pn"``        :math:`s_h p_{n_i} + b_h`, all learned     the paper's Fig. 2 (why log n)
``"constant-matched"``  :math:`c'_h \ln L`, :math:`c'_h` learned   a control that steps as SSMax does
``"scale-invariant"``   none: :math:`a_t S_t + m_t` by distance t  a peer (Anson et al. 2025)
======================  =========================================  ==================================

``"learned-pn"`` learns a free :math:`p_n` for every count :math:`n = 1 \dots L` (counts beyond
:math:`L` use :math:`p_L`); :class:`~ssmax_lite.lab.model.TinyTransformer` shares one :math:`p_n` vector
between all its layers, as in the paper. It starts as softmax: :math:`s = 1`, :math:`b = 0`, :math:`p_n = 1`.

and the peers of SSMax from :mod:`ssmax_lite.lab.scalings` (``"chiang-log-n"``,
``"su-log-base"``, ``"qwen-logn"``, ``"llama4-temperature"``, ``"yarn"``), whose fixed
parameters come from :func:`ssmax_lite.lab.scalings.fixed_params` (pass ``scaling_params`` to
override them). Every method works as the core's
:func:`ssmax_lite.core.attention.scaled_dot_product_attention` does: the per-query multiplier
:math:`m_i` (from the registry, on a cached :math:`\log n_i`) multiplies :math:`q_i`, and torch's fused
attention does the rest. The arguments are checked when the module is built or switched
(:meth:`CausalSelfAttention.set_attention`), so ``forward`` reads no tensor's values: no host
sync, no ``torch.compile`` graph break. Methods marked "inference" in the registry are the
identity while the module is in training mode.

One :math:`s_h` per head, so a model has ``n_layers × n_heads`` of them.

**Initial s.** The paper gives no initial value. We start from
:math:`s = 1/\log L_{\text{train}}`, so that :math:`s \log n = 1` at the training length:
at the last position of a training sequence SSMax attention starts out *identical*
to softmax attention, shorter prefixes start a little flatter, and longer contexts
(only seen at evaluation) sharpen by :math:`\log n / \log L_{\text{train}}`. The common
alternative ``s = 1`` makes attention :math:`\log L_{\text{train}}` times sharper than
softmax from the first step (about 6× at 512 keys), which the reference notes report
as an early entropy collapse. Pass ``s_init`` to choose another value.
The ``"constant"`` control starts at :math:`c = 1` (softmax) and learns a plain
temperature per head, so comparing it with ``"ssmax"`` separates "a learned
temperature" from "a temperature that grows with log n". Its parameter is the multiplier itself,
while SSMax's is :math:`s` in :math:`s \log n`: an AdamW step moves each parameter by about the
learning rate, so it moves SSMax's multiplier at :math:`n = L` about :math:`\log L` times as far.
``"constant-matched"`` is parametrised as SSMax is, :math:`c' \log L` with :math:`c'` starting at
:math:`1/\log L`, so that a step moves both multipliers equally at :math:`n = L` and only their
growth with :math:`n` differs.

:meth:`CausalSelfAttention.set_attention` switches a (trained) module to another method
in place, keeping its projection weights; :mod:`ssmax_lite.lab.convert` does it for a model.

``"scale-invariant"`` is the one kind that is not a per-query multiplier: it multiplies and shifts each
logit by the distance :math:`t` between query and key (:mod:`ssmax_lite.lab.scale_invariant`, with its
length scale :math:`\tau` in ``scaling_params``, default 10), which no query scaling can express, so it
runs on an explicit-logit path instead of the fused kernel. It learns nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from torch.nn import functional as F

from ._constants import cached_constant
from .rope import RotaryEmbedding
from .scale_invariant import DEFAULT_TAU, scale_invariant_attention, scale_invariant_coefficients, \
    scale_invariant_logits
from .scalings import SCALINGS, fixed_params, get_scaling

__all__ = ["ATTENTION_KINDS", "CausalSelfAttention"]

SCALE_INVARIANT = "scale-invariant"  # the kind whose logits change per key, not per query

# The paper's four kinds and the constant control first, then SSMax's peers.
ATTENTION_KINDS = tuple(SCALINGS) + (SCALE_INVARIANT,)

_LEARNABLE = ("s", "bias", "c", "pn")  # the learned tensors a kind may own (state-dict names)


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention, ``(B, L, d_model) -> (B, L, d_model)``.

    Args:
        d_model: width of the residual stream; must be divisible by ``n_heads``.
        n_heads: number of heads ``H``.
        attention: one of :data:`ATTENTION_KINDS` (see the module docstring).
        train_len: the training sequence length, used for the default ``s_init`` and for
            the length constants of the registry's methods.
        s_init: initial ``s`` for the SSMax kinds; default ``1 / log(train_len)``.
        bias_init: initial ``b`` for ``"ssmax-bias"``.
        dropout: dropout on the output projection.
        scaling_params: overrides of the method's fixed parameters, e.g.
            ``{"floor_scale": 8192}`` for ``"llama4-temperature"`` (see
            :func:`ssmax_lite.lab.scalings.fixed_params`).
    """

    def __init__(self, d_model: int, n_heads: int, attention: str = "softmax", *,
                 train_len: int = 1024, s_init: float | None = None, bias_init: float = 0.0,
                 dropout: float = 0.0, scaling_params: dict | None = None):
        super().__init__()  # set_attention, at the end, checks the kind
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (d_model, n_heads)) \
                or n_heads < 1 or d_model < 1 or d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a positive multiple of n_heads ({n_heads})")
        if not isinstance(train_len, int) or train_len < 2:
            raise ValueError(f"train_len must be an int >= 2 (log 1 = 0), got {train_len!r}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.train_len = train_len
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.set_attention(attention, s_init=s_init, bias_init=bias_init, scaling_params=scaling_params)

    def set_attention(self, attention: str, *, s_init: float | None = None, bias_init: float = 0.0,
                      scaling_params: dict | None = None) -> "CausalSelfAttention":
        """Switch to another method in place; the projections ``qkv`` and ``out`` are kept.

        The kind's per-head tensors are created afresh (``s``: a parameter for ``"ssmax"``
        and ``"ssmax-bias"``, a buffer for ``"ssmax-fixed"``; ``bias``; ``c``), on the
        module's device, from ``s_init`` (default ``1/log(train_len)``) and ``bias_init``.
        An optimizer built before the switch does not see new parameters: build it after.
        """
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        if s_init is None:
            s_init = 1.0 / math.log(self.train_len)
        if not math.isfinite(s_init) or not math.isfinite(bias_init):
            raise ValueError(f"s_init and bias_init must be finite, got {s_init}, {bias_init}")
        if attention == SCALE_INVARIANT:
            params = {"tau": DEFAULT_TAU} | dict(scaling_params or {})
            if set(params) != {"tau"}:
                raise ValueError(f"scaling_params of 'scale-invariant' may only hold 'tau', got {scaling_params!r}")
            scale_invariant_coefficients(torch.zeros(1), params["tau"])  # checks tau
        else:
            params = fixed_params(attention, self.train_len, s_init=s_init, bias_init=bias_init,
                                  **(scaling_params or {}))
        for name in _LEARNABLE:  # forget the previous kind's tensors
            self._parameters.pop(name, None)
            self._buffers.pop(name, None)
            self.__dict__.pop(name, None)

        self.attention = attention
        self.scaling = None if attention == SCALE_INVARIANT else get_scaling(attention)
        learned = self.scaling.learned if self.scaling is not None else ()
        device = self.qkv.weight.device

        def per_head(value):
            return torch.full((self.n_heads,), float(value), device=device)

        if attention in ("ssmax", "ssmax-bias", "learned-pn"):
            self.s = nn.Parameter(per_head(params["s"]))
        elif attention == "ssmax-fixed":
            self.register_buffer("s", per_head(params["s"]))
        else:
            self.s = None
        self.bias = nn.Parameter(per_head(params["bias"])) if "bias" in learned else None
        self.c = nn.Parameter(per_head(params["c"])) if "c" in learned else None
        self.pn = (nn.Parameter(torch.as_tensor(params["pn"], dtype=torch.float32, device=device).clone())
                   if "pn" in learned else None)  # p_1 … p_L, one per count (not per head)
        self.scaling_params = {k: v for k, v in params.items() if k not in _LEARNABLE}
        return self

    def _split_heads(self, x: torch.Tensor, rope: RotaryEmbedding | None):
        if x.dim() != 3 or x.shape[-1] != self.n_heads * self.head_dim:
            raise ValueError(f"x must have shape (B, L, d_model={self.n_heads * self.head_dim}), "
                             f"got {tuple(x.shape)}")
        b, length, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (t.view(b, length, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if rope is not None:
            q, k = rope(q), rope(k)
        return q, k, v

    def query_multiplier(self, n_queries: int, n_keys: int, dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
        r"""The per-query multiplier :math:`m_i`, shape ``(H, L_q, 1)`` or ``(L_q, 1)``; ``None`` for 1.

        :math:`n_i = i + 1 + (L_k - L_q)`: the last ``n_queries`` of ``n_keys`` causal positions, so
        ``query_multiplier(1, n)`` is the multiplier of a query that sees ``n`` keys. Computed in float32
        (float64 for float64 ``dtype``) on the module's device, then cast to ``dtype``. ``None`` for
        softmax, for the registry's inference-only methods while the module is in training mode, and for
        ``"scale-invariant"``, whose scaling depends on the key and is applied in :meth:`forward`.
        """
        if self.attention in ("softmax", SCALE_INVARIANT) or (self.scaling.applied == "inference" and self.training):
            return None
        work = torch.float64 if dtype == torch.float64 else torch.float32
        n, log_n = _key_counts(n_queries, n_keys, self.qkv.weight.device, work)  # built once per shape
        params = dict(self.scaling_params)
        for name in _LEARNABLE:
            value = getattr(self, name)
            if value is not None:
                # per-head (H,) -> (H, 1, 1) to meet (L_q, 1); p_n stays one value per count
                params[name] = value.to(work) if name == "pn" else value.to(work).view(-1, 1, 1)
        return self.scaling.multiplier_of_counts(n, log_n, float(n_keys), params).to(dtype)

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None = None) -> torch.Tensor:
        q, k, v = self._split_heads(x, rope)
        if self.attention == SCALE_INVARIANT:
            y = scale_invariant_attention(q, k, v, self.scaling_params["tau"])
        else:
            multiplier = self.query_multiplier(q.shape[-2], k.shape[-2], dtype=q.dtype)
            if multiplier is not None:
                q = q * multiplier  # m_i folded into the query: the fused kernel does the rest
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(x.shape)
        return self.dropout(self.out(y))

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor, rope: RotaryEmbedding | None = None) -> torch.Tensor:
        """The explicit attention matrix ``(B, H, L, L)``, for inspection (builds L×L)."""
        q, k, _ = self._split_heads(x, rope)
        if self.attention == SCALE_INVARIANT:
            return torch.softmax(scale_invariant_logits(q, k, self.scaling_params["tau"]), dim=-1)
        length = q.shape[-2]
        work = torch.float64 if q.dtype == torch.float64 else torch.float32  # half -> float32
        logits = ((q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)).to(work)
        multiplier = self.query_multiplier(length, length, dtype=logits.dtype)
        if multiplier is not None:
            logits = logits * multiplier  # before masking: log 1 = 0 times -inf would be NaN
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        return torch.softmax(logits.masked_fill(~causal, float("-inf")), dim=-1)

    def extra_repr(self) -> str:
        return f"attention={self.attention!r}, n_heads={self.n_heads}, head_dim={self.head_dim}"


@cached_constant()
def _key_counts(n_queries: int, n_keys: int, device: torch.device, dtype: torch.dtype):
    """``(n, log n)`` of the last ``n_queries`` of ``n_keys`` causal positions, ``(L_q, 1)`` each (cached)."""
    n = torch.arange(n_keys - n_queries + 1, n_keys + 1, device=device, dtype=dtype).unsqueeze(-1)
    return n, torch.log(n)
