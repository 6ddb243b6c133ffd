r"""SSMax attention: torch's ``scaled_dot_product_attention`` with the query scaled by :math:`s \log n_i + b`.

For query :math:`q_i`, which may attend to :math:`n_i` keys,

.. math::

    o_i = \operatorname{softmax}\big((s_h \log n_i + b_h)\; q_i K^\top \cdot \text{scale} + \text{mask}_i\big)\, V .

:math:`s_h \log n_i + b_h` is one number per query and head, so it can be folded into the query,
:math:`q_i \leftarrow (s_h \log n_i + b_h)\, q_i`, and torch's fused kernel (FlashAttention, memory-efficient
or the C++ kernel) does the rest: SSMax costs two small multiplications and nothing of size
:math:`L_q \times L_k`.

:math:`n_i` is read from the mask the call is given, as torch would apply it:

* no mask: every query sees all :math:`L_k` keys;
* ``is_causal=True`` (needs :math:`L_q = L_k`): :math:`n_i = i + 1`;
* ``causal_lower_right(L_q, L_k)`` from ``torch.nn.attention.bias`` (decoding with a KV cache: the new
  queries see the whole cache): :math:`n_i = i + 1 + L_k - L_q`; ``causal_upper_left``: :math:`\min(i + 1, L_k)`;
* a boolean mask: the ``True`` entries of row :math:`i`; a float mask: its entries that are not ``-inf``.

Nothing on this path reads a tensor's value (no host sync on a GPU), and it compiles into one graph
with ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import CausalBias, CausalVariant

__all__ = ["attended_key_counts", "scaled_dot_product_attention"]


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False, *, s=None, bias=None):
    r"""``torch.nn.functional.scaled_dot_product_attention`` (same arguments, same order), plus SSMax.

    Args:
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa: as in torch. A mask may also
            be torch's ``causal_lower_right(L_q, L_k)`` or ``causal_upper_left(L_q, L_k)``.
        s: ``None`` for torch's softmax attention, else SSMax's :math:`s`: a number, or a tensor of
            shape ``()`` or ``(H,)`` (one per query head). Gradients flow to it.
        bias: optional offset :math:`b` of the multiplier :math:`s \log n_i + b` (a number or a tensor
            like ``s``); it multiplies the logits, it is not added to them. With ``s=None`` it is a
            constant multiplier (a temperature).

    Returns:
        ``(..., H, L_q, E_v)``: torch's result for the query multiplied by :math:`s \log n_i + b`
        (computed in float32, or float64 for float64 inputs, then cast to the query's dtype).
        With ``s=None`` and ``bias=None`` exactly torch's result.

    Raises:
        ValueError: when ``s`` or ``bias`` is given, for arguments of the wrong type, shape or dtype,
        and for ``is_causal=True`` with :math:`L_q \ne L_k` (torch aligns that mask to the top left,
        which is never what decoding with a cache needs: pass ``attn_mask=causal_lower_right(L_q, L_k)``,
        or no mask for a single new query). Only shapes, dtypes and Python numbers are checked: the values
        of a tensor ``s`` are not read, as that would stall a GPU at every call. Without ``s`` and ``bias``
        the call is torch's, with torch's errors.
    """
    if s is not None or bias is not None:
        query = query * _query_multiplier(query, key, value, attn_mask, is_causal, scale, s, bias)
    return F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal,
                                          scale=scale, enable_gqa=enable_gqa)


def attended_key_counts(l_q: int, l_k: int, attn_mask=None, is_causal: bool = False,
                        device=None) -> torch.Tensor:
    r"""How many keys each query may attend to, as an integer tensor that broadcasts as ``(..., L_q, 1)``.

    No mask: :math:`L_k`. ``is_causal``: :math:`\min(i + 1, L_k)`, as torch aligns it. Torch's causal masks:
    :math:`i + 1 + L_k - L_q` (lower right) or :math:`\min(i + 1, L_k)` (upper left), never below 0. A
    boolean mask: its ``True`` entries per row; a float mask: its entries that are not ``-inf``.
    """
    if isinstance(attn_mask, CausalBias):
        l_q, l_k = attn_mask.seq_len_q, attn_mask.seq_len_kv
        shift = l_k - l_q if attn_mask.variant == CausalVariant.LOWER_RIGHT else 0
        return torch.arange(1 + shift, l_q + 1 + shift, device=device).clamp(0, l_k).unsqueeze(-1)
    if attn_mask is None:
        if is_causal:  # torch's is_causal: aligned to the top left
            return torch.arange(1, l_q + 1, device=device).clamp(max=l_k).unsqueeze(-1)
        return torch.full((1, 1), l_k, device=device)
    allowed = attn_mask if attn_mask.dtype == torch.bool else ~torch.isneginf(attn_mask)
    counts = allowed.sum(dim=-1, keepdim=True)
    return counts * l_k if attn_mask.shape[-1] == 1 else counts  # a mask broadcast along the keys


_LOG_N: dict = {}  # (L_q, L_k, causal, device, dtype) -> log n, for calls without a mask tensor
_LOG_N_ENTRIES = 128  # at most this many vectors of L_q numbers: a few MB at the longest contexts


def _log_key_counts(query, key, attn_mask, is_causal, dtype):
    """:math:`\\log n_i` in ``dtype`` (0 for a row with no key); built once per shape without a mask tensor."""
    l_q, l_k = query.shape[-2], key.shape[-2]
    causal_bias = isinstance(attn_mask, CausalBias)  # a torch.Tensor subclass without values
    if attn_mask is not None and not causal_bias:
        return attended_key_counts(l_q, l_k, attn_mask).clamp(min=1).to(dtype).log()
    variant = attn_mask.variant if causal_bias else None
    compiling = torch.compiler.is_compiling()  # then the arithmetic goes into the graph instead
    cache_key = (l_q, l_k, bool(is_causal), variant, query.device, dtype)
    log_n = None if compiling else _LOG_N.get(cache_key)
    if log_n is None:
        with torch.inference_mode(False):  # usable by a later backward pass, even if built in inference mode
            counts = attended_key_counts(l_q, l_k, attn_mask, is_causal, device=query.device)
            log_n = counts.clamp(min=1).to(dtype).log()
        if not compiling:
            if len(_LOG_N) >= _LOG_N_ENTRIES:
                _LOG_N.pop(next(iter(_LOG_N)))  # the oldest entry
            _LOG_N[cache_key] = log_n  # private: only ever multiplied into a new tensor
    return log_n


def _query_multiplier(query, key, value, attn_mask, is_causal, scale, s, bias):
    r""":math:`s_h \log n_i + b_h` shaped to multiply the query; the arguments are checked here, once."""
    _check_call(query, key, value, attn_mask, is_causal, scale)
    work = torch.float64 if query.dtype == torch.float64 else torch.float32
    log_n = _log_key_counts(query, key, attn_mask, is_causal, work)
    heads = query.shape[-3] if query.dim() >= 3 else None
    multiplier = 0.0 if s is None else _per_head(s, "s", heads) * log_n
    if bias is not None:
        multiplier = multiplier + _per_head(bias, "bias", heads)
    if isinstance(multiplier, torch.Tensor) and multiplier.dtype != query.dtype:
        multiplier = multiplier.to(query.dtype)
    return multiplier  # a number only for s=None with a number for bias


def _check_call(query, key, value, attn_mask, is_causal, scale) -> None:
    """Shapes, dtypes and Python numbers only (plain Python: microseconds, no tensor value is read)."""
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() < 2:
            raise ValueError(f"{name} must be a tensor of shape (..., L, E), got {_describe(tensor)}")
    dtype, q_shape, k_shape, v_shape = query.dtype, query.shape, key.shape, value.shape
    if not dtype == key.dtype == value.dtype or not dtype.is_floating_point:
        raise ValueError(f"query, key and value must share one floating-point dtype, got "
                         f"{dtype}, {key.dtype}, {value.dtype}")
    if q_shape[-1] != k_shape[-1] or k_shape[-2] != v_shape[-2]:
        raise ValueError(f"query and key must share E, key and value must share L_k: got query "
                         f"{tuple(q_shape)}, key {tuple(k_shape)}, value {tuple(v_shape)}")
    l_q, l_k = q_shape[-2], k_shape[-2]
    if is_causal and (attn_mask is not None or l_q != l_k):
        raise ValueError("pass attn_mask or is_causal=True, not both (as in torch)" if attn_mask is not None else
                         f"is_causal=True needs L_q == L_k with SSMax, got L_q={l_q}, L_k={l_k}: for queries that "
                         f"follow cached keys pass attn_mask=torch.nn.attention.bias.causal_lower_right(L_q, L_k)")
    if attn_mask is not None:
        _check_mask(attn_mask, dtype, l_q, l_k)
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale)):
        raise ValueError(f"scale must be None or a finite number, got {scale!r}")


def _check_mask(attn_mask, dtype, l_q: int, l_k: int) -> None:
    if isinstance(attn_mask, CausalBias):
        if (attn_mask.seq_len_q, attn_mask.seq_len_kv) != (l_q, l_k):
            raise ValueError(f"attn_mask is a causal mask for L_q={attn_mask.seq_len_q}, "
                             f"L_k={attn_mask.seq_len_kv}, but query and key have L_q={l_q}, L_k={l_k}")
        return
    if not isinstance(attn_mask, torch.Tensor) or attn_mask.dtype not in (torch.bool, dtype):
        raise ValueError(f"attn_mask must be a bool tensor, a tensor of the query's dtype {dtype}, or torch's "
                         f"causal_lower_right / causal_upper_left, got {_describe(attn_mask)}")
    shape = attn_mask.shape
    if shape[-1] not in (1, l_k) or (len(shape) >= 2 and shape[-2] not in (1, l_q)):
        raise ValueError(f"attn_mask has shape {tuple(shape)}; it must broadcast to (..., L_q={l_q}, L_k={l_k})")


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _per_head(value, name: str, heads: int | None):
    """A finite number as it is; a tensor of shape () as it is, of shape (H,) as (H, 1, 1) to meet the
    query's head axis (``heads`` is ``None`` for a query without one)."""
    if isinstance(value, torch.Tensor):
        shape = value.shape
        if len(shape) == 1 and heads is not None and shape[0] in (heads, 1):
            return value.view(-1, 1, 1)
        if len(shape) == 0:
            return value
        raise ValueError(f"{name} must be a number or a tensor of shape () or (H,) = ({heads},) for a query "
                         f"of shape (..., H, L, E), got shape {tuple(shape)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
        raise ValueError(f"{name} must be finite, got {value!r}")
    raise ValueError(f"{name} must be None, a number, or a tensor of shape () or (H,), got {_describe(value)}")
