r"""SSMax attention through torch's fused ``scaled_dot_product_attention``.

SSMax attention for query :math:`q_i` over the :math:`n_i` keys it may attend to is

.. math::

    a_i = \operatorname{softmax}\big((s \log n_i + b)\; q_i K^\top \cdot \text{scale}\big),
    \qquad o_i = a_i V .

Because :math:`(s \log n_i + b)` is one number per query (and head), it can be
folded into the query: :math:`q_i \leftarrow (s \log n_i + b)\, q_i`. The scaled
query then goes through the ordinary fused kernel (FlashAttention, memory-efficient
or the C++ math kernel), so SSMax costs one multiply of ``q`` and nothing of size
:math:`L_q \times L_k` is built beyond what torch itself builds.

:math:`n_i` is the number of keys query ``i`` may attend to:

* no mask: :math:`n_i = L_k`;
* ``is_causal``: :math:`n_i = i + 1 + (L_k - L_q)`, the causal mask aligned to the
  bottom right, so that decoding with a KV cache (:math:`L_q < L_k`) is right;
* boolean ``attn_mask``: the number of ``True`` entries in row ``i``;
  float ``attn_mask``: the number of entries that are not ``-inf``.

Two functions share the work:

* :func:`scaled_dot_product_attention`, the public one, checks its arguments (shapes, dtypes,
  Python numbers), builds the multiplier :math:`s \log n_i + b` and calls
* :func:`scaled_query_attention`, the one fused path: ``q`` times a given per-query
  multiplier, then torch's kernel with the cheapest correct causal mask. The model's
  :class:`~ssmax_lite.layers.CausalSelfAttention` calls it too, with the multiplier of its
  method (checked when the module is built), so the model runs the path tested here.

Neither reads the values of a tensor in the hot path (``bool()``, ``.item()``), so neither
makes the CPU wait for a GPU or breaks a ``torch.compile`` graph. :math:`\log n_i` and the
decoding mask depend only on the lengths: they are built once per (lengths, device, dtype).
"""

from __future__ import annotations

from numbers import Real

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

from ._checks import check_finite, check_finite_where_free
from ._constants import cached_constant
from .functional import ssmax_multiplier_of_log_n

__all__ = ["scaled_dot_product_attention", "scaled_query_attention", "attended_key_counts", "key_counts",
           "log_key_counts"]


def scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False, scale=None, *,
                                 s=None, bias=None):
    r"""``torch.nn.functional.scaled_dot_product_attention`` with optional SSMax.

    Args:
        q, k, v: tensors of shape ``(..., H, L_q, E)``, ``(..., H, L_k, E)``, ``(..., H, L_k, E_v)``.
        attn_mask: as in torch: boolean (``True`` = may attend) or additive float mask,
            broadcastable to ``(..., H, L_q, L_k)``.
        is_causal: causal masking. With ``L_q == L_k`` this is torch's mask. With
            ``L_q < L_k`` (decoding with a KV cache) the mask is aligned to the bottom
            right — query ``i`` sees keys ``0 … i + L_k - L_q`` — unlike torch's
            ``is_causal``, which aligns it to the top left (torch offers
            ``torch.nn.attention.bias.causal_lower_right`` for the same reason).
        scale: the logit scale, default :math:`1/\sqrt{E}` as in torch.
        s: ``None`` for plain softmax attention, else the SSMax parameter: a float,
            or a tensor of shape ``()`` or ``(H,)`` (one per head). Gradients flow to it.
        bias: optional additive term ``b`` (float, or tensor of shape ``()`` or ``(H,)``).
            With ``s=None`` it is a constant logit multiplier (a learned temperature).

    Returns:
        ``(..., H, L_q, E_v)``. With ``s=None`` and ``bias=None`` this is torch's result.
        The query is multiplied by ``s·log n_i + b`` before the fused call.

    Checks: shapes, dtypes and Python numbers always; the values of a tensor ``s`` or
    ``bias`` only where reading them is free (a CPU tensor outside ``torch.compile``), since
    on a GPU that read would make the CPU wait for the device at every call.
    """
    _check_qkv(q, k, v)
    if is_causal and attn_mask is not None:
        raise ValueError("pass either attn_mask or is_causal=True, not both (as in torch)")
    l_q, l_k = q.shape[-2], k.shape[-2]
    _check_mask(attn_mask, q, k)
    if scale is not None:
        check_finite(scale, "scale")
    if is_causal and l_q > l_k:
        raise ValueError(f"is_causal needs L_q <= L_k (got L_q={l_q}, L_k={l_k}): with the mask "
                         f"aligned to the bottom right the first {l_q - l_k} queries would see no key")
    multiplier = None
    if s is not None or bias is not None:
        n_heads = q.shape[-3] if q.dim() >= 3 else 1
        s = _check_per_head(s, "s", n_heads, q)
        bias = _check_per_head(bias, "bias", n_heads, q)
        work = torch.float64 if q.dtype == torch.float64 else torch.float32
        log_n = log_key_counts(l_q, l_k, attn_mask=attn_mask, is_causal=is_causal, device=q.device, dtype=work)
        # s log n_i + b in log_n's dtype (float32, or float64), s and b laid along the head axis, then cast
        multiplier = ssmax_multiplier_of_log_n(log_n, 0.0 if s is None else _per_head(s, work),
                                               None if bias is None else _per_head(bias, work)).to(q.dtype)
    return scaled_query_attention(q, k, v, multiplier, attn_mask=attn_mask, is_causal=is_causal, scale=scale)


def scaled_query_attention(q, k, v, multiplier=None, *, attn_mask=None, is_causal=False, scale=None):
    r"""Attention of the scaled query :math:`m_i q_i` through torch's fused kernel; no checks.

    :math:`o_i = \operatorname{softmax}\big(m_i\, q_i K^\top \cdot \text{scale} + \text{mask}_i\big) V`,
    with ``multiplier`` :math:`m` broadcastable to ``q``'s shape except its last axis
    (``(..., H, L_q, 1)``), or ``None`` for :math:`m = 1`. ``is_causal`` aligns the mask to
    the bottom right, and picks the cheapest kernel call for it:

    * ``L_q == L_k``: torch's own causal mask (``is_causal=True``);
    * ``L_q == 1``: no mask at all, since the one query is the last and sees every key;
    * ``1 < L_q < L_k``: on the CPU a boolean mask (cached per lengths and device), which is
      what torch's ``causal_lower_right`` builds there; on a GPU ``causal_lower_right``
      itself, which runs flash or memory-efficient attention without any mask tensor.

    The caller checks the arguments: :func:`scaled_dot_product_attention` for its user,
    :class:`~ssmax_lite.layers.CausalSelfAttention` when it is built.
    """
    if multiplier is not None:
        q = q * multiplier  # m_i folded into the query: the fused kernel does the rest
    l_q, l_k = q.shape[-2], k.shape[-2]
    if is_causal and l_q != l_k:
        is_causal = False
        if l_q > 1:
            attn_mask = (_lower_right_mask(l_q, l_k, q.device) if q.device.type == "cpu"
                         else causal_lower_right(l_q, l_k))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)


def attended_key_counts(l_q: int, l_k: int, attn_mask=None, is_causal: bool = False,
                        device=None) -> torch.Tensor:
    r"""How many keys each query may attend to, shaped to broadcast as ``(..., H, L_q, 1)``.

    ``is_causal``: :math:`n_i = i + 1 + (L_k - L_q)`. Boolean mask: ``mask.sum(-1)``.
    Float mask: the number of entries that are not ``-inf``. Otherwise :math:`L_k`.
    Rows with no key get ``n = 0``.
    """
    if is_causal:
        return torch.arange(l_k - l_q + 1, l_k + 1, device=device).unsqueeze(-1)
    if attn_mask is None:
        return torch.full((1, 1), l_k, device=device)
    if not isinstance(attn_mask, torch.Tensor):
        raise ValueError(f"attn_mask must be a torch.Tensor (bool or float) or None, "
                         f"got {type(attn_mask).__name__}")
    if attn_mask.shape[-1] not in (1, l_k) or (attn_mask.dim() >= 2 and attn_mask.shape[-2] not in (1, l_q)):
        raise ValueError(f"attn_mask has shape {tuple(attn_mask.shape)}; it must broadcast to "
                         f"(..., H, L_q={l_q}, L_k={l_k})")
    allowed = attn_mask if attn_mask.dtype == torch.bool else ~torch.isneginf(attn_mask)
    counts = allowed.sum(dim=-1, keepdim=True)
    if attn_mask.shape[-1] == 1:  # a mask broadcast along the keys
        counts = counts * l_k
    return counts


def log_key_counts(l_q: int, l_k: int, attn_mask=None, is_causal: bool = False, device=None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r""":math:`\log n_i` in ``dtype``, shaped like :func:`attended_key_counts`; a row with no key gets 0.

    Without a mask (causal or not) it depends only on the lengths and is built once per
    (lengths, device, dtype); with a mask it is counted from the mask at every call.
    """
    if attn_mask is None:
        return key_counts(l_q, l_k, bool(is_causal), _as_device(device), dtype)[1]
    counts = attended_key_counts(l_q, l_k, attn_mask=attn_mask, device=device)
    return torch.log(counts.clamp(min=1).to(dtype))


@cached_constant()
def key_counts(l_q: int, l_k: int, is_causal: bool, device: torch.device, dtype: torch.dtype):
    """``(n, log n)`` of every query, ``(L_q, 1)`` each, in ``dtype``, for no mask or a causal one (cached)."""
    n = attended_key_counts(l_q, l_k, is_causal=is_causal, device=device).to(dtype)
    return n, torch.log(n)


# --------------------------------------------------------------------------- helpers


@cached_constant()
def _lower_right_mask(l_q: int, l_k: int, device: torch.device) -> torch.Tensor:
    """``(L_q, L_k)`` booleans: query ``i`` sees keys ``0 … i + L_k - L_q`` (cached)."""
    return torch.ones(l_q, l_k, dtype=torch.bool, device=device).tril(diagonal=l_k - l_q)


def _as_device(device) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


def _per_head(value, dtype):
    """A float stays a float; a tensor of shape (H,) becomes (H, 1, 1) to meet (H, L_q, 1)."""
    if isinstance(value, torch.Tensor):
        value = value.to(dtype)
        return value.reshape(-1, 1, 1) if value.dim() == 1 else value
    return float(value)


def _check_per_head(value, name: str, n_heads: int, q: torch.Tensor):
    if value is None:
        return None
    if isinstance(value, Real) and not isinstance(value, bool):
        check_finite(value, name)
        return float(value)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be None, a float, or a tensor of shape () or ({n_heads},), "
                         f"got {type(value).__name__}")
    if value.dim() > 1 or (value.dim() == 1 and value.shape[0] not in (1, n_heads)):
        raise ValueError(f"{name} must have shape () or (H,) = ({n_heads},) to match q's head axis, "
                         f"got {tuple(value.shape)}")
    if value.dim() == 1 and q.dim() < 3:
        raise ValueError(f"a per-head {name} needs q of shape (..., H, L, E); q has shape {tuple(q.shape)}")
    check_finite_where_free(value, name)
    return value if value.device == q.device else value.to(device=q.device)


def _broadcast_shape(*shapes) -> tuple | None:
    """The shape that ``shapes`` broadcast to, or ``None`` if they do not (plain Python: this runs
    at every call, where ``torch.broadcast_shapes`` costs tens of microseconds)."""
    if all(shape == shapes[0] for shape in shapes[1:]):
        return tuple(shapes[0])
    ndim = max(len(shape) for shape in shapes)
    padded = [(1,) * (ndim - len(shape)) + tuple(shape) for shape in shapes]
    result = []
    for sizes in zip(*padded):
        other = {size for size in sizes if size != 1}
        if len(other) > 1:
            return None
        result.append(other.pop() if other else 1)
    return tuple(result)


def _check_mask(attn_mask, q: torch.Tensor, k: torch.Tensor) -> None:
    """A mask must be bool, or float of q's dtype, and broadcast to (..., H, L_q, L_k) unchanged."""
    if attn_mask is None:
        return
    if not isinstance(attn_mask, torch.Tensor):
        raise ValueError(f"attn_mask must be a torch.Tensor (bool or float) or None, "
                         f"got {type(attn_mask).__name__}")
    if attn_mask.dtype != torch.bool and attn_mask.dtype != q.dtype:
        raise ValueError(f"attn_mask must be bool or have q's dtype {q.dtype}, got {attn_mask.dtype}")
    target = _broadcast_shape(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])
    if _broadcast_shape(attn_mask.shape, target) != target:
        raise ValueError(f"attn_mask has shape {tuple(attn_mask.shape)}; it must broadcast to "
                         f"(..., H, L_q, L_k) = {target}")


def _check_qkv(q, k, v) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., L, E), got {tuple(t.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last (embedding) size, got q {tuple(q.shape)} "
                         f"and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys L_k, got k {tuple(k.shape)} "
                         f"and v {tuple(v.shape)}")
    if _broadcast_shape(q.shape[:-2], k.shape[:-2], v.shape[:-2]) is None:
        raise ValueError(f"q, k and v must have broadcastable batch and head sizes (..., H), got "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if not q.dtype == k.dtype == v.dtype or not torch.is_floating_point(q):
        raise ValueError(f"q, k and v must share one floating-point dtype, got "
                         f"{q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] == 0 or k.shape[-2] == 0:
        raise ValueError(f"q needs E >= 1 and k needs L_k >= 1, got q {tuple(q.shape)}, k {tuple(k.shape)}")
