r"""SSMax in Hugging Face ``transformers`` models (Llama, Qwen2/3, GPT-NeoX, …), one call away.

Needs the optional extra ``pip install "ssmax_lite[hf]"``; ``import ssmax_lite`` alone never imports
``transformers``. Importing this module registers an attention implementation named ``"ssmax"``:

.. math::

    o_i = \operatorname{softmax}\big((s_h \log n_i + b_h)\; q_i K^\top \cdot \text{scale} + \text{mask}_i\big)\, V,

with :math:`s_h` (and the optional :math:`b_h`) learned per layer and head, and :math:`n_i` the number
of keys query :math:`i` may attend to. The work is done by
:func:`ssmax_lite.attention.scaled_dot_product_attention`, which folds :math:`s_h \log n_i + b_h` into
the query and calls torch's fused SDPA. :math:`n_i` comes from the mask that ``transformers`` builds,
so it is right in every situation a model meets:

* causal training: :math:`n_i = i + 1`;
* padded batches (left or right): padding keys are masked, so they never count;
* ``generate()`` with a KV cache: the new token sees the cache plus itself, :math:`n = \text{cached} + 1`;
* chunked prefill: a chunk's query :math:`i` sees the cached keys and the chunk's first :math:`i + 1`;
* packed sequences, marked by ``position_ids`` that restart at 0 or by a 4-D document mask:
  :math:`n` restarts at each document and no query sees another document. (With ``position_ids``
  alone, ``transformers`` builds the document mask only when no cache is passed; this module
  builds it itself when a forward pass without past keys brings no mask, so packing also holds
  with ``use_cache=True``.)

Usage::

    import ssmax_lite.hf as ssmax_hf
    model = ssmax_hf.enable_ssmax(model, train_length=2048)   # a trained softmax model: s·log 2048 = 1
    model.save_pretrained("out")                              # s is in the state dict and config.ssmax
    model = ssmax_hf.from_pretrained(LlamaForCausalLM, "out") # back, with the same s
"""

from __future__ import annotations

import contextlib
import functools
import math
from numbers import Real

import torch
from torch import nn

try:
    from transformers import AttentionInterface, PreTrainedModel
    from transformers.integrations.sdpa_attention import repeat_kv
    from transformers.masking_utils import AttentionMaskInterface, find_packed_sequence_indices, sdpa_mask
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError('ssmax_lite.hf needs transformers: pip install "ssmax_lite[hf]"') from error

from .attention import attended_key_counts, scaled_dot_product_attention

__all__ = ["NAME", "SSMaxScales", "enable_ssmax", "from_pretrained", "learned_scales",
           "record_key_counts", "register", "ssmax_attention_forward"]

NAME = "ssmax"
"""The attention implementation's name: ``model.set_attn_implementation("ssmax")``."""

CONFIG_KEY = "ssmax"
"""``model.config.ssmax`` holds the settings (initial s, bias, learned) so that loading can rebuild s."""


class SSMaxScales(nn.Module):
    r"""The SSMax parameters of one attention layer: ``s`` of shape ``(H,)`` and optionally ``bias`` ``(H,)``.

    Attached to each attention module as ``module.ssmax``, so the state dict holds
    ``….self_attn.ssmax.s``. With ``learn=False`` they are parameters that need no gradient:
    still saved and loaded, never trained.
    """

    def __init__(self, n_heads: int, s: float, bias: float | None = None, learn: bool = True):
        super().__init__()
        self.s = nn.Parameter(torch.full((n_heads,), float(s)), requires_grad=learn)
        self.bias = None if bias is None else nn.Parameter(torch.full((n_heads,), float(bias)),
                                                           requires_grad=learn)
        self.recorded: list | None = None  # see record_key_counts

    def extra_repr(self) -> str:
        return f"heads={self.s.numel()}, bias={self.bias is not None}, learn={self.s.requires_grad}"


# ------------------------------------------------------------------------------ the attention function


def ssmax_attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: torch.Tensor | None, dropout: float = 0.0,
                            scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    r"""The ``"ssmax"`` attention: ``transformers``' SDPA attention with the query scaled by ``s·log n + b``.

    Same arguments and result as ``transformers``' ``sdpa_attention_forward``: ``query`` is
    ``(B, H, L_q, E)``, ``key``/``value`` ``(B, H_kv, L_k, E)``; returns ``((B, L_q, H, E), None)``.
    A layer without ``module.ssmax`` computes plain softmax attention (the same as ``"sdpa"``).
    """
    if dropout:
        raise ValueError(f"ssmax attention has no attention dropout; set config.attention_dropout = 0.0 "
                         f"(got dropout={dropout})")
    for name in ("softcap", "position_bias"):
        if kwargs.get(name) is not None:
            raise ValueError(f"ssmax attention does not support {name}; use it only with models that "
                             f"pass {name}=None")
    if query.shape[1] != key.shape[1]:  # grouped-query attention: each key head serves several query heads
        key, value = repeat_kv(key, query.shape[1] // key.shape[1]), repeat_kv(value, query.shape[1] // key.shape[1])
    l_q, l_k = query.shape[2], key.shape[2]
    causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    mask = _as_sdpa_mask(attention_mask, query.dtype)
    if mask is None and causal and l_q == l_k > 1:
        mask = _document_mask(kwargs.get("position_ids"), query.shape[0], l_q)
    use_is_causal = mask is None and causal and l_q > 1
    if use_is_causal and l_k > l_q:
        # transformers' convention (an empty static cache): the keys past L_q are unused slots
        key, value, l_k = key[:, :, :l_q], value[:, :, :l_q], l_q
    scales = getattr(module, "ssmax", None)
    s = bias = None
    if isinstance(scales, SSMaxScales):
        s, bias = scales.s, scales.bias
        if scales.recorded is not None:
            scales.recorded.append(attended_key_counts(l_q, l_k, attn_mask=mask, is_causal=use_is_causal,
                                                       device=query.device)[..., -1, 0].flatten().tolist())
    out = scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=use_is_causal,
                                       scale=scaling, s=s, bias=bias)
    return out.transpose(1, 2).contiguous(), None


def _as_sdpa_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean mask as it is; a float mask with ``-inf`` where ``transformers`` wrote its
    ``finfo(dtype).min`` (so that such keys are not counted in n)."""
    if mask is None or mask.dtype == torch.bool:
        return mask
    mask = mask.to(dtype)
    return mask.masked_fill(mask <= torch.finfo(dtype).min / 2, float("-inf"))


def _document_mask(position_ids: torch.Tensor | None, batch: int, length: int) -> torch.Tensor | None:
    """``(B, 1, L, L)`` causal mask within documents when ``position_ids`` restart (packing), else None."""
    if position_ids is None or position_ids.shape[-1] != length:
        return None
    documents = find_packed_sequence_indices(position_ids.expand(batch, -1))
    if documents is None:
        return None
    same = documents[:, :, None] == documents[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool, device=same.device).tril()
    return (same & causal).unsqueeze(1)


@functools.cache
def register() -> None:
    """Register ``"ssmax"`` with ``transformers``: the attention function and, under the same name,
    its mask builder (``sdpa_mask``; without it padding would not be masked). Done on import."""
    AttentionInterface.register(NAME, ssmax_attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)


register()


# ------------------------------------------------------------------------------ switching a model on


def enable_ssmax(model: PreTrainedModel, *, s: float | None = None, train_length: int | None = None,
                 bias: float | None = None, learn: bool = True) -> PreTrainedModel:
    r"""Turn SSMax on in every attention layer of ``model``, in place, and return ``model``.

    Args:
        model: a ``transformers`` model built from a config or trained with softmax.
        s: the initial :math:`s`, the same for every layer and head; or
        train_length: :math:`L_{\text{train}}`, to start where the paper's configuration (e) starts:
            :math:`s = (1 - b)/\log L_{\text{train}}`, so that :math:`s \log L_{\text{train}} + b = 1` and a
            trained softmax model computes exactly what it computed at the last training position.
            Give exactly one of ``s`` and ``train_length``.
        bias: ``None`` for SSMax as in the paper, or the initial :math:`b` of ``(s·log n + b)``.
        learn: whether ``s`` (and ``b``) are trained (``True``) or stay fixed.

    The settings go to ``model.config.ssmax`` and the parameters to each attention module's
    ``ssmax`` submodule, so ``save_pretrained`` stores them and :func:`from_pretrained` loads them.
    """
    if not isinstance(model, PreTrainedModel):
        raise ValueError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
    s_init = _initial_s(s, train_length, bias)
    if not isinstance(learn, bool):
        raise ValueError(f"learn must be True (s is trained) or False (s stays fixed), got {learn!r}")
    if getattr(model.config, "attention_dropout", 0.0):
        raise ValueError(f"ssmax attention has no attention dropout: config.attention_dropout must be 0.0, "
                         f"got {model.config.attention_dropout}")
    layers = _attention_modules(model)
    can_switch = getattr(type(model), "_can_set_attn_implementation", None)  # transformers' own check
    if can_switch is not None and not can_switch():
        raise ValueError(f"{type(model).__name__} does not dispatch attention through transformers' "
                         f"AttentionInterface, so SSMax cannot be switched on in it")
    settings = {"s": s_init, "bias": None if bias is None else float(bias), "learn": learn}
    _attach_scales(model, layers, settings)
    setattr(model.config, CONFIG_KEY, settings)
    model.set_attn_implementation(NAME)
    return model


def learned_scales(model: nn.Module) -> torch.Tensor:
    """The current ``s`` of every SSMax layer, shape ``(layers, heads)`` (a detached copy)."""
    scales = [m.s.detach().clone() for m in model.modules() if isinstance(m, SSMaxScales)]
    if not scales:
        raise ValueError("model has no SSMax layer; call enable_ssmax(model, ...) first")
    return torch.stack(scales)


@contextlib.contextmanager
def record_key_counts(model: nn.Module):
    """Context manager: record, for the first SSMax layer, the n of each forward call's last query
    (one list per call, one entry per sequence of the batch). Yields the list of calls."""
    first = next((m for m in model.modules() if isinstance(m, SSMaxScales)), None)
    if first is None:
        raise ValueError("model has no SSMax layer; call enable_ssmax(model, ...) first")
    first.recorded = []
    try:
        yield first.recorded
    finally:
        first.recorded = None


def from_pretrained(model_class: type, path, **kwargs) -> PreTrainedModel:
    """Load a model saved after :func:`enable_ssmax`, with its ``s``: ``from_pretrained(LlamaForCausalLM, path)``.

    ``model_class`` is a concrete class or an ``AutoModel…`` class; ``kwargs`` go to its
    ``from_pretrained``. The model is built by a subclass of the same name whose constructor adds
    the SSMax parameters that ``config.ssmax`` describes, so ``from_pretrained`` fills them from
    the checkpoint like every other weight. (The plain class would drop them and run softmax.)
    """
    from transformers import AutoConfig

    config = kwargs.pop("config", None) or AutoConfig.from_pretrained(path)
    settings = getattr(config, CONFIG_KEY, None)
    if not isinstance(settings, dict):
        raise ValueError(f"the config at {path!r} has no 'ssmax' settings; it was not saved after enable_ssmax")
    mapping = getattr(model_class, "_model_mapping", None)  # an AutoModel class: find the concrete one
    concrete = mapping[type(config)] if mapping is not None else model_class
    kwargs.setdefault("attn_implementation", NAME)
    return _with_scales(concrete).from_pretrained(path, config=config, **kwargs)


@functools.cache
def _with_scales(model_class: type) -> type:
    """A subclass of ``model_class``, of the same name and module, whose constructor attaches SSMax
    parameters. (Same module: transformers applies a class's checkpoint key renamings only to its
    own classes, e.g. GPT-NeoX's ``embed_out`` → ``lm_head``.)"""
    def __init__(self, config, *args, **kwargs):
        model_class.__init__(self, config, *args, **kwargs)
        _attach_scales(self, _attention_modules(self), getattr(config, CONFIG_KEY))

    return type(model_class.__name__, (model_class,), {"__init__": __init__, "__module__": model_class.__module__})


def _initial_s(s, train_length, bias) -> float:
    if (s is None) == (train_length is None):
        raise ValueError(f"give exactly one of s (the initial s, a number > 0) and train_length (an int >= 2, "
                         f"for s = (1 - bias)/log train_length); got s={s!r}, train_length={train_length!r}")
    if bias is not None and (isinstance(bias, bool) or not isinstance(bias, Real) or not math.isfinite(bias)):
        raise ValueError(f"bias must be None (no bias) or a finite number, got {bias!r}")
    if s is not None:
        if isinstance(s, bool) or not isinstance(s, Real) or not math.isfinite(s) or s <= 0:
            raise ValueError(f"s must be a finite number > 0, got {s!r}")
        return float(s)
    if isinstance(train_length, bool) or not isinstance(train_length, int) or train_length < 2:
        raise ValueError(f"train_length must be an int >= 2 (the training sequence length), got {train_length!r}")
    value = (1.0 - (bias or 0.0)) / math.log(train_length)
    if value <= 0:
        raise ValueError(f"bias must be < 1 with train_length, so that s = (1 - bias)/log L > 0; got bias={bias!r}")
    return value


def _attention_modules(model: nn.Module) -> list[nn.Module]:
    """The attention layers that call the AttentionInterface: modules named ``*Attention`` with a ``layer_idx``."""
    found = [m for m in model.modules() if type(m).__name__.endswith("Attention") and hasattr(m, "layer_idx")]
    if not found:
        raise ValueError(f"found no attention layer (a module named *Attention with a layer_idx) in "
                         f"{type(model).__name__}")
    return found


def _attach_scales(model: nn.Module, layers: list[nn.Module], settings: dict) -> None:
    n_heads = model.config.get_text_config().num_attention_heads
    device = next(model.parameters()).device
    for layer in layers:
        layer.ssmax = SSMaxScales(n_heads, settings["s"], settings.get("bias"),
                                  settings.get("learn", True)).to(device)
