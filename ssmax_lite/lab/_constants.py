"""Constant tensors built once per (length, device, dtype) and reused by every call.

The attention path needs :math:`\\log n_i` for every query and RoPE needs its cos/sin tables.
Both depend only on Python numbers (lengths, θ), a device and a dtype, so they are built
once and kept in a small least-recently-used cache instead of being rebuilt by every
layer on every forward.

Two details make the cache safe to use anywhere:

* an entry is built with inference mode off, so that a table first needed inside
  ``torch.inference_mode()`` can later be saved for a backward pass;
* under ``torch.compile`` the builder is traced instead of looked up, so the compiled graph
  holds the arithmetic (which the compiler can fold) and no Python-side state.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["cached_constant"]


def cached_constant(maxsize: int = 64):
    """Decorator: memoise a builder of constant tensors whose arguments are all hashable.

    The tensors it returns are shared between callers: they must only be read.
    """

    def decorate(build):
        @functools.lru_cache(maxsize=maxsize)
        def build_outside_inference_mode(*args):
            with torch.inference_mode(False):
                return build(*args)

        @functools.wraps(build)
        def lookup(*args):
            if torch.compiler.is_compiling():
                return build(*args)
            return build_outside_inference_mode(*args)

        lookup.cache_clear = build_outside_inference_mode.cache_clear
        return lookup

    return decorate
