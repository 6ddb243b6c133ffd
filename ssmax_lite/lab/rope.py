r"""Rotary position embedding (RoPE, Su et al. 2021) with a base θ that can change at evaluation.

Channel pairs :math:`(x_{2j}, x_{2j+1})` of a query or key at position :math:`p` are
rotated by the angle :math:`p\,\theta^{-2j/E}`. The SSMax paper evaluates long
contexts with θ raised 50× at test time; :attr:`RotaryEmbedding.theta` is a plain
attribute so that a trained model can be evaluated with another θ.

The cos/sin tables depend only on (θ, positions, device, dtype): they are built once
and reused by every layer and every call (:func:`rotation_tables`), not per call.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import nn

from ._constants import cached_constant

__all__ = ["RotaryEmbedding", "rotation_tables"]


class RotaryEmbedding(nn.Module):
    """Rotates ``(..., L, E)`` queries and keys by their positions; no learned parameters."""

    def __init__(self, head_dim: int, theta: float = 10_000.0):
        super().__init__()
        if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
            raise ValueError(f"head_dim must be an even int >= 2 for RoPE, got {head_dim!r}")
        if not (isinstance(theta, Real) and math.isfinite(theta) and theta > 1):
            raise ValueError(f"theta must be a finite number > 1, got {theta}")
        self.head_dim = head_dim
        self.theta = float(theta)

    def angles(self, positions: torch.Tensor) -> torch.Tensor:
        """``positions (L,)`` -> rotation angles ``(L, E/2)``, computed in float32 (float64 if asked)."""
        return _angles(self.head_dim, self.theta, positions)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Rotate ``x`` of shape ``(..., L, E)`` whose first row sits at position ``offset``."""
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"x's last size must be head_dim={self.head_dim}, got {tuple(x.shape)}")
        cos, sin = rotation_tables(self.head_dim, self.theta, offset, x.shape[-2], x.device, x.dtype)
        x_even, x_odd = x[..., 0::2], x[..., 1::2]
        rotated = torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)
        return rotated.flatten(-2)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, theta={self.theta:g}"


@cached_constant()
def rotation_tables(head_dim: int, theta: float, offset: int, length: int, device: torch.device,
                    dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` of the angles of positions ``offset … offset + length - 1``, ``(L, E/2)`` each.

    Computed in float32 (float64 for float64 ``dtype``), then cast to ``dtype``; cached per arguments.
    """
    work = torch.float64 if dtype == torch.float64 else torch.float32
    angles = _angles(head_dim, theta, torch.arange(offset, offset + length, device=device, dtype=work))
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _angles(head_dim: int, theta: float, positions: torch.Tensor) -> torch.Tensor:
    r"""Angles :math:`p\,\theta^{-2j/E}` of ``positions (L,)``, ``(L, E/2)``, in float32 (float64 if given)."""
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    j = torch.arange(0, head_dim, 2, device=positions.device, dtype=dtype)
    inv_freq = theta ** (-j / head_dim)
    return positions.to(dtype)[:, None] * inv_freq[None, :]
