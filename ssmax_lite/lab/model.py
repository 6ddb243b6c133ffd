r"""A tiny decoder-only transformer (nanoGPT's layout) whose attention is softmax, SSMax or a variant.

::

    tokens ─ embed ─┬─ Block ─ … ─ Block ─ LayerNorm ─ head → logits
                    │
    Block:  x = x + attn(LN(x))        attn = ssmax_lite.lab.layers.CausalSelfAttention
            x = x + mlp(LN(x))         mlp  = Linear(d, d_ff) → GELU → Linear(d_ff, d)

Pre-LayerNorm blocks, no learned position table: positions come either from nowhere but the causal
mask (``pe="nope"``) or from rotary embeddings (``pe="rope"``), whose base θ can be changed after
training with :meth:`TinyTransformer.set_rope_theta` (the SSMax paper evaluates long contexts with θ
raised 50×). Every block's attention module is ``model.blocks[i].attn``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ATTENTION_KINDS, CausalSelfAttention
from .rope import RotaryEmbedding

__all__ = ["ModelConfig", "TinyTransformer", "POSITION_ENCODINGS"]

POSITION_ENCODINGS = ("nope", "rope")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and choices of a :class:`TinyTransformer`; checked on construction.

    Args:
        vocab_size: number of token ids.
        d_model: residual width; ``d_model / n_heads`` is the head size (even, for RoPE).
        n_layers, n_heads: depth and heads per layer.
        d_ff: MLP hidden width, default ``4 · d_model``.
        attention: a kind from :data:`ssmax_lite.lab.layers.ATTENTION_KINDS` (``"softmax"``, ``"ssmax"``, …).
        pe: ``"nope"`` (no positional encoding) or ``"rope"``.
        rope_theta: RoPE's base θ during training.
        train_len: training sequence length; the SSMax kinds start from ``s = 1/log(train_len)``.
        s_init: another initial ``s``, if wanted.
        tie_embeddings: share the token embedding with the output head.
    """

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int | None = None
    attention: str = "softmax"
    pe: str = "nope"
    rope_theta: float = 10_000.0
    train_len: int = 64
    s_init: float | None = None
    tie_embeddings: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layers", "n_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.d_ff is not None and (not isinstance(self.d_ff, int) or self.d_ff < 1):
            raise ValueError(f"d_ff must be None (4·d_model) or an int >= 1, got {self.d_ff!r}")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        if self.pe not in POSITION_ENCODINGS:
            raise ValueError(f"pe must be one of {POSITION_ENCODINGS}, got {self.pe!r}")
        if self.pe == "rope" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"pe='rope' needs an even head size, got d_model/n_heads = "
                             f"{self.d_model}/{self.n_heads}")
        if not (isinstance(self.rope_theta, (int, float)) and math.isfinite(self.rope_theta)
                and self.rope_theta > 1):
            raise ValueError(f"rope_theta must be a finite number > 1, got {self.rope_theta!r}")
        if isinstance(self.train_len, bool) or not isinstance(self.train_len, int) or self.train_len < 2:
            raise ValueError(f"train_len must be an int >= 2, got {self.train_len!r}")
        if self.s_init is not None and not math.isfinite(self.s_init):
            raise ValueError(f"s_init must be None or a finite number, got {self.s_init!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class MLP(nn.Module):
    """``Linear(d, d_ff) → GELU → Linear(d_ff, d)``."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(LN(x))``, then ``x + mlp(LN(x))``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config.d_model, config.n_heads, attention=config.attention,
                                        train_len=config.train_len, s_init=config.s_init)
        self.ln_mlp = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config.d_model, config.d_ff or 4 * config.d_model)

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x), rope=rope)
        return x + self.mlp(self.ln_mlp(x))


class TinyTransformer(nn.Module):
    """Decoder-only transformer: ``tokens (B, T) -> logits (B, T, vocab_size)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.rope = RotaryEmbedding(config.head_dim, config.rope_theta) if config.pe == "rope" else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.share_learned_pn()
        self.ln_final = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embed.weight
        self.apply(self._init_weights)
        for block in self.blocks:  # GPT-2: shrink the residual branches' last projections
            for proj in (block.attn.out, block.mlp.down):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be a (B, T) torch.long tensor, got "
                             f"{getattr(tokens, 'dtype', type(tokens).__name__)} "
                             f"{tuple(getattr(tokens, 'shape', ()))}")
        # the ids' range is read only where that is free: on a GPU (or inside torch.compile) the read
        # would make the CPU wait for the device at every forward; the embedding still fails there
        if tokens.device.type == "cpu" and not torch.compiler.is_compiling() and tokens.numel() \
                and (int(tokens.min()) < 0 or int(tokens.max()) >= self.config.vocab_size):
            raise ValueError(f"tokens must lie in [0, vocab_size={self.config.vocab_size})")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self._check_tokens(tokens)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, rope=self.rope)
        return self.head(self.ln_final(x))

    @torch.no_grad()
    def attention_weights(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's explicit attention matrix, a list of ``(B, H, T, T)`` tensors (builds T×T)."""
        self._check_tokens(tokens)
        x = self.embed(tokens)
        weights = []
        for block in self.blocks:
            weights.append(block.attn.attention_weights(block.ln_attn(x), rope=self.rope))
            x = block(x, rope=self.rope)
        return weights

    def set_rope_theta(self, theta: float) -> None:
        """Change RoPE's base θ (e.g. to 50× the training value before evaluating long contexts)."""
        if self.rope is None:
            raise ValueError("set_rope_theta needs a model built with pe='rope'; this one has pe='nope'")
        if not (isinstance(theta, (int, float)) and math.isfinite(theta) and theta > 1):
            raise ValueError(f"theta must be a finite number > 1, got {theta!r}")
        self.rope.theta = float(theta)

    def share_learned_pn(self) -> None:
        """With ``attention="learned-pn"``, make every layer use the first layer's :math:`p_n` (the paper's
        Fig. 2 shares one :math:`p_n` between all layers and heads); a no-op for every other kind."""
        if all(block.attn.attention == "learned-pn" for block in self.blocks):
            for block in self.blocks[1:]:
                block.attn.pn = self.blocks[0].attn.pn

    def length_scales(self) -> torch.Tensor:
        """The learned per-head logit scale of every layer, ``(n_layers, n_heads)``.

        ``s`` for the SSMax kinds, the constant ``c`` for ``"constant"`` (``c'`` for ``"constant-matched"``,
        whose multiplier is ``c' ln L``). Plain softmax has no such
        parameter, nor has ``"scale-invariant"`` (it learns nothing), so both raise ``ValueError``.
        """
        kind = self.config.attention
        if kind in ("softmax", "scale-invariant"):
            raise ValueError(f"attention={kind!r} has no learned scale; length_scales needs one of "
                             f"{tuple(k for k in ATTENTION_KINDS if k not in ('softmax', 'scale-invariant'))}")
        name = "c" if kind in ("constant", "constant-matched") else "s"
        return torch.stack([getattr(block.attn, name).detach().float() for block in self.blocks])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
