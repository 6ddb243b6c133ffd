"""The core: SSMax itself, the attention call, and SSMax in Hugging Face models.

Lift these files into your own project: they need only torch and numpy (and ``transformers`` for
:mod:`ssmax_lite.core.hf`), and nothing from :mod:`ssmax_lite.lab`.

* :mod:`ssmax_lite.core.functional` — ``softmax``, ``ssmax`` and ``ssmax_multiplier`` on numpy arrays and
  torch tensors;
* :mod:`ssmax_lite.core.attention` — ``scaled_dot_product_attention``: torch's call, same arguments, with
  ``s`` (and ``bias``) for SSMax;
* :mod:`ssmax_lite.core.hf` — ``enable_ssmax(model, ...)`` for a ``transformers`` model.
"""

from .attention import attended_key_counts, scaled_dot_product_attention
from .functional import softmax, ssmax, ssmax_multiplier

__all__ = ["attended_key_counts", "scaled_dot_product_attention", "softmax", "ssmax", "ssmax_multiplier"]
