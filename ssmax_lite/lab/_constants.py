"""Constant tensors built once per (length, device, dtype) and reused by every call.

The attention path needs :math:`\\log n_i` for every query and RoPE needs its cos/sin tables.
Both depend only on Python numbers (lengths, θ), a device and a dtype, so they are built
once and kept in a small least-recently-used cache instead of being rebuilt by every
layer on every forward.

Four details make the cache safe to use anywhere:

* it is bounded by the memory its tensors take (``max_bytes``, 32 MiB by default), not only by
  their number: the least recently used entries go first, and a result larger than the bound is
  returned without being kept;
* every call returns copies, so a caller that writes into a table in place changes its own copy,
  never what the next caller gets (a copy of a table of ``L × E/2`` numbers costs far less than
  the attention that uses it);
* an entry is built with inference mode off, so that a table first needed inside
  ``torch.inference_mode()`` can later be saved for a backward pass;
* under ``torch.compile`` the builder is traced instead of looked up, so the compiled graph
  holds the arithmetic (which the compiler can fold) and no Python-side state.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch

__all__ = ["cached_constant"]


def _tensors(result):
    return result if isinstance(result, tuple) else (result,)


def cached_constant(max_bytes: int = 32 * 2**20):
    """Decorator: memoise a builder of constant tensors (a tensor or a tuple of them) whose arguments
    are all hashable, keeping at most ``max_bytes`` of tensors; each call returns fresh copies.

    The decorated function has ``cache_clear()`` and ``cache_info()`` (``hits``, ``misses``,
    ``entries``, ``bytes``).
    """

    def decorate(build):
        entries: OrderedDict = OrderedDict()  # args -> result, least recently used first
        stats = {"hits": 0, "misses": 0, "bytes": 0}

        def kept(*args):
            result = entries.get(args)
            if result is not None:
                entries.move_to_end(args)
                stats["hits"] += 1
                return result
            stats["misses"] += 1
            with torch.inference_mode(False):
                result = build(*args)
            size = sum(t.numel() * t.element_size() for t in _tensors(result))
            if size <= max_bytes:
                while entries and stats["bytes"] + size > max_bytes:
                    _, dropped = entries.popitem(last=False)
                    stats["bytes"] -= sum(t.numel() * t.element_size() for t in _tensors(dropped))
                entries[args] = result
                stats["bytes"] += size
            return result

        @functools.wraps(build)
        def lookup(*args):
            if torch.compiler.is_compiling():
                return build(*args)
            result = kept(*args)
            copies = tuple(t.clone() for t in _tensors(result))
            return copies if isinstance(result, tuple) else copies[0]

        def cache_clear():
            entries.clear()
            stats.update(hits=0, misses=0, bytes=0)

        lookup.cache_clear = cache_clear
        lookup.cache_info = lambda: dict(stats, entries=len(entries))
        return lookup

    return decorate
