"""ssmax_lite: Scalable-Softmax (SSMax, Nakanishi 2025, arXiv 2501.19399) in a few readable modules.

``ssmax(z) = softmax((s·log n)·z)``: the softmax of n logits, sharpened by log n so that
attention does not fade as the context grows.

Modules, one idea each. What a reader drops into their own model:

* :mod:`ssmax_lite.functional`  — ``softmax`` and ``ssmax`` on numpy arrays and torch tensors
* :mod:`ssmax_lite.attention`   — ``scaled_dot_product_attention`` with SSMax, through torch's fused kernel
* :mod:`ssmax_lite.rope`        — rotary position embedding with a changeable θ
* :mod:`ssmax_lite.scalings`    — the registry of length scalings: SSMax and its peers (log n, Qwen, Llama 4, YaRN, …)
* :mod:`ssmax_lite.layers`      — ``CausalSelfAttention``, the drop-in module, for any method of the registry
* :mod:`ssmax_lite.hf`          — SSMax in Hugging Face ``transformers`` models (needs the extra ``hf``)

The book's experiment kit, imported on demand:

* :mod:`ssmax_lite.model`       — ``TinyTransformer`` and its ``ModelConfig`` (NoPE or RoPE)
* :mod:`ssmax_lite.tasks`       — synthetic needle/lookup tasks generated on the fly, and next-byte text
* :mod:`ssmax_lite.corpus`      — chapter 3d's text (CPython's standard library, shipped and checksummed)
* :mod:`ssmax_lite.train`       — the training loop and its ``quick`` / ``full`` presets
* :mod:`ssmax_lite.evaluate`    — accuracy against length, attention on the needle, learned s
* :mod:`ssmax_lite.experiments` — chapter 3's experiments, also a command line (``python -m ssmax_lite.experiments``)
* :mod:`ssmax_lite.convert`     — switching a trained model to SSMax (the paper's configurations e and f)
* :mod:`ssmax_lite.compare`     — one method's accuracy over seeds, as a table and a plot (chapters 4–5)
* :mod:`ssmax_lite.fading`      — closed forms behind chapters 1–2 (top weight, bound, entropy)
* :mod:`ssmax_lite.fits`        — chapter 3c: fitting log n and power curves to a learned multiplier
* :mod:`ssmax_lite.hf_task`     — chapter 6: the lookup task with a Hugging Face model

Plotting and widget helpers live in :mod:`ssmax_lite.plotting` (needs matplotlib and
ipywidgets) and :mod:`ssmax_lite.diagram` (the model diagram); they are not imported here:
``import ssmax_lite`` needs only numpy and torch.
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
