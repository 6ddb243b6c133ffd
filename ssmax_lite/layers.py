r"""Multi-head causal self-attention with softmax, SSMax or one of the paper's SSMax variants.

``attention`` chooses how the logits of query :math:`i` (which sees :math:`n_i = i + 1`
keys) are scaled before the softmax:

==================  ===========================================  ======================
``attention``       logit multiplier                              paper configuration
==================  ===========================================  ======================
``"softmax"``       1                                             (a) standard softmax
``"ssmax"``         :math:`s_h \log n_i`, :math:`s_h` learned     (b) SSMax
``"ssmax-fixed"``   :math:`s_h \log n_i`, :math:`s_h` fixed        (c) no learned scale
``"ssmax-bias"``    :math:`s_h \log n_i + b_h`, both learned       (d) SSMax with bias
``"constant"``      :math:`c_h`, learned (no growth with n)       a control, not in the paper
==================  ===========================================  ======================

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
temperature" from "a temperature that grows with log n".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .attention import scaled_dot_product_attention
from .functional import ssmax as ssmax_fn
from .rope import RotaryEmbedding

__all__ = ["ATTENTION_KINDS", "CausalSelfAttention"]

ATTENTION_KINDS = ("softmax", "ssmax", "ssmax-fixed", "ssmax-bias", "constant")


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention, ``(B, L, d_model) -> (B, L, d_model)``.

    Args:
        d_model: width of the residual stream; must be divisible by ``n_heads``.
        n_heads: number of heads ``H``.
        attention: one of :data:`ATTENTION_KINDS` (see the module docstring).
        train_len: the training sequence length, used only for the default ``s_init``.
        s_init: initial ``s`` for the SSMax kinds; default ``1 / log(train_len)``.
        bias_init: initial ``b`` for ``"ssmax-bias"``.
        dropout: dropout on the output projection.
    """

    def __init__(self, d_model: int, n_heads: int, attention: str = "softmax", *,
                 train_len: int = 1024, s_init: float | None = None, bias_init: float = 0.0,
                 dropout: float = 0.0):
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        if n_heads < 1 or d_model < 1 or d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a positive multiple of n_heads ({n_heads})")
        if not isinstance(train_len, int) or train_len < 2:
            raise ValueError(f"train_len must be an int >= 2 (log 1 = 0), got {train_len!r}")
        if s_init is None:
            s_init = 1.0 / math.log(train_len)
        if not math.isfinite(s_init) or not math.isfinite(bias_init):
            raise ValueError(f"s_init and bias_init must be finite, got {s_init}, {bias_init}")
        self.attention = attention
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

        s0 = torch.full((n_heads,), float(s_init))
        if attention in ("ssmax", "ssmax-bias"):
            self.s = nn.Parameter(s0)
        elif attention == "ssmax-fixed":
            self.register_buffer("s", s0)
        else:
            self.s = None
        self.bias = nn.Parameter(torch.full((n_heads,), float(bias_init))) \
            if attention == "ssmax-bias" else None
        self.scale = nn.Parameter(torch.ones(n_heads)) if attention == "constant" else None

    def _split_heads(self, x: torch.Tensor, rope: RotaryEmbedding | None):
        b, length, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (t.view(b, length, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if rope is not None:
            q, k = rope(q), rope(k)
        return q, k, v

    def _s_and_bias(self):
        """The (s, bias) pair that :func:`scaled_dot_product_attention` takes for this kind."""
        if self.attention == "constant":
            return None, self.scale
        return self.s, self.bias

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None = None) -> torch.Tensor:
        q, k, v = self._split_heads(x, rope)
        s, bias = self._s_and_bias()
        y = scaled_dot_product_attention(q, k, v, is_causal=True, s=s, bias=bias)
        y = y.transpose(1, 2).reshape(x.shape)
        return self.dropout(self.out(y))

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor, rope: RotaryEmbedding | None = None) -> torch.Tensor:
        """The explicit attention matrix ``(B, H, L, L)``, for inspection (builds L×L)."""
        q, k, _ = self._split_heads(x, rope)
        length = q.shape[-2]
        logits = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        logits = logits.float().masked_fill(~causal, float("-inf"))
        if self.attention == "softmax":
            return torch.softmax(logits, dim=-1)
        n = torch.arange(1, length + 1, device=x.device).float()  # keys seen by each query
        per_head = (-1, 1)  # (H,) -> (H, 1) to meet the reduced shape (B, H, L)
        if self.attention == "constant":
            return ssmax_fn(logits, s=0.0, n=n, bias=self.scale.float().view(per_head))
        bias = 0.0 if self.bias is None else self.bias.float().view(per_head)
        return ssmax_fn(logits, s=self.s.float().view(per_head), n=n, bias=bias)

    def extra_repr(self) -> str:
        return f"attention={self.attention!r}, n_heads={self.n_heads}, head_dim={self.head_dim}"
