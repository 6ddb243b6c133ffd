"""The book's lookup task with a Hugging Face causal language model (chapter 6).

``transformers`` models take ``input_ids`` and return an output object; the book's training loop
(:func:`ssmax_lite.lab.train.fit`) and evaluation (:func:`ssmax_lite.lab.evaluate.accuracy_by_length`) call
``model(tokens)`` and expect logits. :class:`TokensToLogits` adapts the one to the other, so an HF
model trains and is measured exactly like chapter 3's ``TinyTransformer``. Needs no ``transformers``
import of its own.
"""

from __future__ import annotations

import torch
from torch import nn

from .train import TrainConfig, TrainResult, fit

__all__ = ["TokensToLogits", "train_hf_model"]


class TokensToLogits(nn.Module):
    """Wraps a causal LM so that ``wrapper(tokens) == lm(input_ids=tokens, use_cache=False).logits``.

    ``wrapper.lm`` is the wrapped model; ``wrapper.config`` its config (the evaluation reads
    ``config.vocab_size``). No cache is built: training and evaluation see whole sequences.
    """

    def __init__(self, lm: nn.Module):
        super().__init__()
        if not callable(lm) or not hasattr(getattr(lm, "config", None), "vocab_size"):
            raise ValueError(f"lm must be a causal language model with config.vocab_size (a transformers "
                             f"...ForCausalLM), got {type(lm).__name__}")
        self.lm = lm
        self.config = lm.config

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.lm(input_ids=tokens, use_cache=False).logits


def train_hf_model(lm: nn.Module, config: TrainConfig, *, progress: bool = False, desc: str = "hf") -> TrainResult:
    """Train ``lm`` in place on ``config``'s task with the book's recipe (:func:`ssmax_lite.lab.train.fit`).

    ``config.model`` is used only for ``train_len`` (and the task's vocabulary, which must equal
    ``lm.config.vocab_size``); the architecture is ``lm``'s. Seed ``torch`` before building ``lm``
    for reproducible weights. Returns the :class:`~ssmax_lite.lab.train.TrainResult` whose ``model`` is
    the :class:`TokensToLogits` wrapper, in eval mode.

    A model built from a config at the book's width (64) learns this task slowly with ``transformers``'
    default ``initializer_range=0.02``: its attention starts uniform and the loss sits on a plateau for
    hundreds of steps. Chapter 6 builds its Llamas with ``initializer_range=0.06``.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    wrapper = lm if isinstance(lm, TokensToLogits) else TokensToLogits(lm)
    if wrapper.config.vocab_size != config.task.vocab_size:
        raise ValueError(f"lm.config.vocab_size ({wrapper.config.vocab_size}) must equal the task's vocab_size "
                         f"({config.task.vocab_size})")
    device = next(wrapper.parameters()).device.type
    return fit(wrapper, config, device=device, progress=progress, desc=desc)
