"""ssmax_lite: Scalable-Softmax (SSMax, Nakanishi 2025, arXiv 2501.19399) in a few readable modules.

``ssmax(z) = softmax((s·log n)·z)``: the softmax of n logits, sharpened by log n so that
attention does not fade as the context grows.

Modules, one idea each:

* :mod:`ssmax_lite.functional`  — ``softmax`` and ``ssmax`` on numpy arrays and torch tensors
* :mod:`ssmax_lite.attention`   — ``scaled_dot_product_attention`` with SSMax, through torch's fused kernel
* :mod:`ssmax_lite.rope`        — rotary position embedding with a changeable θ
* :mod:`ssmax_lite.layers`      — ``CausalSelfAttention``, the drop-in module

Plotting and widget helpers live in :mod:`ssmax_lite.plotting` (needs matplotlib and
ipywidgets) and are not imported here: ``import ssmax_lite`` needs only numpy and torch.
"""

from .attention import attended_key_counts, scaled_dot_product_attention
from .functional import softmax, ssmax, ssmax_multiplier
from .layers import ATTENTION_KINDS, CausalSelfAttention
from .rope import RotaryEmbedding

__version__ = "0.1.0"

__all__ = [
    "ATTENTION_KINDS",
    "CausalSelfAttention",
    "RotaryEmbedding",
    "attended_key_counts",
    "scaled_dot_product_attention",
    "softmax",
    "ssmax",
    "ssmax_multiplier",
]
