r"""SSMax in Hugging Face ``transformers`` (>= 5.24) models: Llama, Qwen2/3, GPT-NeoX, GPT-2, …

``pip install "ssmax_lite[hf] @ git+https://github.com/ssmax-book/ssmax-hands-on@main"``. Importing this module
registers an attention named ``"ssmax"``:
:math:`o_i = \operatorname{softmax}\big((s_h \log n_i + b_h)\, \text{scale}\cdot q_i K^\top + \text{mask}_i\big) V`,
:math:`s_h` (and the optional :math:`b_h`) learned per layer and head. It multiplies the query by
:math:`s_h \log n_i + b_h` and calls ``transformers``' own ``sdpa_attention_forward``: autocast dtypes, dropout
(it commutes with a per-query factor), grouped-query attention, masks, the ``is_causal`` fast path and sliding
windows are those of ``"sdpa"``. :math:`n_i`, the keys query :math:`i` may see, comes with no host sync from
the mask ``"sdpa"`` gets: row :math:`i`'s allowed keys (at least 1); with no mask, :math:`i + 1` in a causal
layer with several queries, else :math:`L_k`. Packed rows (``position_ids`` restarting at 0) called with a
cache and no mask get their document mask from a hook of :func:`enable_ssmax` (``transformers`` builds it
only without a cache), at one host read per call, the cost of ``transformers``' own check. ``s`` has the
dtype of the model's parameters; ``config.json`` names the attention, so that a plain ``from_pretrained``
(which drops ``s``) fails instead of running softmax: load with :func:`from_pretrained`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import warnings
from numbers import Real

import torch
from torch import nn

INSTALL = 'pip install "ssmax_lite[hf] @ git+https://github.com/ssmax-book/ssmax-hands-on@main"'
try:
    import transformers
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(f"ssmax_lite.hf needs transformers >= 5.24: {INSTALL}") from error
if tuple(map(int, re.findall(r"\d+", transformers.__version__)[:2])) < (5, 24):
    raise ImportError(f"ssmax_lite.hf needs transformers >= 5.24, found {transformers.__version__}: {INSTALL}")
from transformers import AttentionInterface, AutoConfig, PreTrainedModel  # noqa: E402
from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: E402
from transformers.masking_utils import AttentionMaskInterface, find_packed_sequence_indices, sdpa_mask  # noqa: E402

__all__ = ["INSTALL", "NAME", "SSMaxScales", "enable_ssmax", "from_pretrained", "learned_scales",
           "record_key_counts", "register", "ssmax_attention_forward"]
NAME = CONFIG_KEY = "ssmax"  # the attention's name, and the key of the settings in model.config


class SSMaxScales(nn.Module):
    """``module.ssmax``: ``s`` and optionally ``bias``, one per head (``s_init``, ``bias_init`` at reset)."""

    def __init__(self, n_heads: int, s: float, bias: float | None = None, learn: bool = True, *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None):
        super().__init__()
        self.s_init, self.bias_init, self.recorded = float(s), bias, None  # recorded: see record_key_counts
        full = functools.partial(torch.full, (n_heads,), dtype=dtype, device=device)
        self.s = nn.Parameter(full(float(s)), requires_grad=learn)
        self.bias = None if bias is None else nn.Parameter(full(float(bias)), requires_grad=learn)

    @torch.no_grad()
    def reset_parameters(self, names=("s", "bias")) -> None:
        for name in (name for name in names if getattr(self, name) is not None):
            getattr(self, name).fill_(getattr(self, f"{name}_init"))

    def _apply(self, fn, recurse=True):
        """``to_empty`` from the meta device (which ``init_weights`` does not know for us) starts s at s_init."""
        from_meta = self.s.is_meta
        if not super()._apply(fn, recurse).s.is_meta and from_meta:  # apply first, always
            self.reset_parameters()
        return self

    def extra_repr(self) -> str:
        return f"heads={self.s.numel()}, bias={self.bias is not None}, learn={self.s.requires_grad}"


def ssmax_attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: torch.Tensor | None, dropout: float = 0.0,
                            scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    r"""The ``"ssmax"`` attention: ``sdpa_attention_forward`` (same arguments and result) with the query
    ``(B, H, L_q, E)`` multiplied by ``s·log n + b``. A layer without ``module.ssmax`` is ``"sdpa"``."""
    scales, settings = getattr(module, "ssmax", None), getattr(getattr(module, "config", None), CONFIG_KEY, None)
    if scales is None and isinstance(settings, dict):
        raise ValueError(f"{type(module).__name__} has no SSMax parameters but config.ssmax is set: it was loaded with "
                         f"the plain class, which drops s. Load it with "
                         f"{settings.get('load_with', 'ssmax_lite.hf.from_pretrained(ModelClass, path)')}")
    if scales is not None and kwargs.get("output_attentions"):
        raise ValueError("ssmax attention returns no attention weights: pass output_attentions=False")
    if scales is not None:
        n = _key_counts(module, query, key, attention_mask, is_causal)
        s, log_n = scales.s.view(-1, 1, 1), n.log()
        multiplier = s * log_n if scales.bias is None else torch.addcmul(scales.bias.view(-1, 1, 1), s, log_n)
        if scales.recorded is not None:
            scales.recorded.append(n.expand(query.shape[0], 1, -1, 1)[:, 0, -1, 0].long().tolist())
        query = query * multiplier.to(query.dtype)
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  is_causal=is_causal, **kwargs)


def _key_counts(module, query, key, mask, is_causal) -> torch.Tensor:
    """n_i (float32 or int32), broadcastable to ``(B, H, L_q, 1)``: the keys sdpa lets query i see."""
    l_q = query.shape[2]
    if mask is None:
        if l_q > 1 and (getattr(module, "is_causal", True) if is_causal is None else is_causal):
            # sdpa's is_causal; with an empty static cache sdpa cuts the slots past L_q
            return torch.arange(1, l_q + 1, dtype=torch.float32, device=query.device).view(l_q, 1)
        return torch.full((l_q, 1), key.shape[2], dtype=torch.float32, device=query.device)
    counts = getattr(mask, "ssmax_counts", None)  # set by _mask_with_counts
    return _allowed_keys(mask) if counts is None else counts


def _allowed_keys(mask: torch.Tensor) -> torch.Tensor:
    """Each row's allowed keys (True, or above finfo.min / 2), at least 1; summed in int32, 3x faster than float."""
    allowed = mask if mask.dtype == torch.bool else mask > torch.finfo(mask.dtype).min / 2
    return allowed.view(torch.uint8).sum(-1, keepdim=True, dtype=torch.int32).clamp_(min=1)


def _mask_with_counts(*args, **kwargs) -> torch.Tensor | None:
    """``sdpa_mask`` (the mask ``"sdpa"`` gets) carrying its row counts, ``ssmax_counts``: it is built once per
    forward call for all layers, so it is counted once, not once per layer (3 % of a CPU prefill at L = 2048)."""
    mask = sdpa_mask(*args, **kwargs)
    if mask is not None and not torch.compiler.is_compiling():
        mask.ssmax_counts = _allowed_keys(mask)
    return mask


def _document_mask_hook(model: nn.Module, args: tuple, kwargs: dict):
    """Forward pre-hook: a packed row called with a cache and no mask gets its causal document mask; a call
    asking for attention weights raises (GPT-2's layers do not pass ``output_attentions`` on, so it is caught here)."""
    if kwargs.get("output_attentions"):  # in the config, transformers itself refuses it for "ssmax"
        raise ValueError("ssmax attention returns no attention weights: pass output_attentions=False")
    position_ids = kwargs.get("position_ids")
    if position_ids is None or len(args) > 1 or kwargs.get("use_cache") is False or any(
            kwargs.get(name) is not None for name in ("attention_mask", "cache", "past_key_values")):
        return None
    if (documents := find_packed_sequence_indices(position_ids)) is None:  # the positions never restart
        return None
    text = model.config.get_text_config()
    if set(getattr(text, "layer_types", None) or ()) - {"full_attention"} or getattr(text, "sliding_window", None):
        raise ValueError("packed rows with a cache need sliding windows in their document mask: call the model "
                         "with use_cache=False, and transformers builds it")
    causal = torch.ones(documents.shape[-1], documents.shape[-1], dtype=torch.bool, device=documents.device).tril()
    return args, {**kwargs, "attention_mask": ((documents[:, :, None] == documents[:, None, :]) & causal)[:, None]}


@functools.cache
def register() -> None:
    """Register ``"ssmax"``: the attention, and ``sdpa_mask`` as its mask builder (else no padding mask)."""
    AttentionInterface.register(NAME, ssmax_attention_forward)
    AttentionMaskInterface.register(NAME, _mask_with_counts)


register()


def enable_ssmax(model: PreTrainedModel, *, s: float | None = None, train_length: int | None = None,
                 bias: float | None = None, learn: bool = True, reset: bool = False) -> PreTrainedModel:
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
        reset: SSMax parameters the model has are kept (a trained ``s`` survives a second call, which then only
            sets ``learn``) unless ``reset=True`` starts them again from ``s`` or ``train_length``.

    Raises ``ValueError`` for what ``"sdpa"`` cannot compute: Gemma 2's soft-capping, gpt-oss's sinks."""
    if not isinstance(model, PreTrainedModel):
        raise ValueError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
    if not isinstance(learn, bool) or not isinstance(reset, bool):
        raise ValueError(f"learn and reset must be True or False, got learn={learn!r}, reset={reset!r}")
    layers = _attention_modules(model)
    if not getattr(type(model), "_can_set_attn_implementation", lambda: True)():  # transformers' own check
        raise ValueError(f"{type(model).__name__} does not dispatch attention through transformers' "
                         f"AttentionInterface, so SSMax cannot be switched on in it")
    if any(getattr(layer, what, None) is not None for layer in layers for what in ("attn_logit_softcapping", "sinks")):
        raise ValueError(f"{type(model).__name__}'s attention uses logit soft-capping (attn_logit_softcapping) or "
                         f"attention sinks (sinks), which transformers' sdpa, and so ssmax attention, cannot compute")
    keep = not reset and all(isinstance(getattr(layer, "ssmax", None), SSMaxScales) for layer in layers)
    if keep and (s, train_length, bias) != (None, None, None):
        warnings.warn("enable_ssmax kept the SSMax parameters the model already has (and their trained values); "
                      "pass reset=True to start them again from s or train_length", stacklevel=2)
    s, bias = (layers[0].ssmax.s_init, layers[0].ssmax.bias_init) if keep else (_initial_s(s, train_length, bias), bias)
    settings = {"s": s, "bias": None if bias is None else float(bias), "learn": learn, "install": INSTALL,
                "load_with": f"ssmax_lite.hf.from_pretrained({type(model).__name__}, path)"}
    if not keep:
        _attach_scales(model, layers, settings)
    for layer in layers:
        layer.ssmax.requires_grad_(learn)
    setattr(model.config, CONFIG_KEY, settings)
    model.config.attn_implementation = NAME  # saved in config.json, so that a plain load cannot run softmax
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
    """Context manager: in the first SSMax layer only, record each sequence's last query's n at every forward
    call; yields the list of calls (lists of n). Reads them on the host: for looking, not for training."""
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

    ``model_class``: a concrete or ``AutoModel…`` class; ``kwargs`` go to its ``from_pretrained``. A softmax
    checkpoint with ``config=`` carrying ``ssmax`` settings starts ``s`` (and ``b``) from them. A subclass that
    adds the SSMax parameters builds the model, returned as the plain class (so it pickles)."""
    config = kwargs.pop("config", None) or AutoConfig.from_pretrained(path)
    if not isinstance(getattr(config, CONFIG_KEY, None), dict):
        raise ValueError(f"the config at {path!r} has no 'ssmax' settings; it was not saved after enable_ssmax "
                         f"(pass config= with them, or call enable_ssmax on the loaded model)")
    mapping = getattr(model_class, "_model_mapping", None)  # an AutoModel class: find the concrete one
    concrete = mapping[type(config)] if mapping is not None else model_class
    want_info = kwargs.pop("output_loading_info", False)
    if kwargs.setdefault("attn_implementation", NAME) != NAME:  # another attention would ignore the loaded s
        raise ValueError(f"attn_implementation must be {NAME!r} (or left out), got {kwargs['attn_implementation']!r}")
    model, info = _with_scales(concrete).from_pretrained(path, config=config, output_loading_info=True, **kwargs)
    model.__class__ = concrete
    for name, scales in model.named_modules():  # parameters missing from the checkpoint start as enable_ssmax's
        if isinstance(scales, SSMaxScales):
            scales.reset_parameters([p for p in ("s", "bias") if f"{name}.{p}" in info["missing_keys"]])
    return (model, info) if want_info else model


@functools.cache
def _with_scales(model_class: type) -> type:
    """``model_class`` with SSMax parameters, same name and module (for its checkpoint key renamings)."""
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
        raise ValueError(f"found no attention layer (a module named *Attention with a layer_idx) in {type(model)}")
    return found


def _attach_scales(model: nn.Module, layers: list[nn.Module], settings: dict) -> None:
    n_heads, like = model.config.get_text_config().num_attention_heads, next(model.parameters())
    for layer in layers:
        layer.ssmax = SSMaxScales(n_heads, settings["s"], settings.get("bias"), settings.get("learn", True),
                                  dtype=like.dtype, device=like.device)
    if _document_mask_hook not in model._forward_pre_hooks.values():
        model.register_forward_pre_hook(_document_mask_hook, with_kwargs=True)
