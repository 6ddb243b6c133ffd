"""The book's lab: the models, tasks, training, measurements and plots of its chapters.

* :mod:`~ssmax_lite.lab.scalings`    — the registry of length scalings: SSMax and its peers (log n, Qwen, Llama 4, YaRN, …)
* :mod:`~ssmax_lite.lab.layers`      — ``CausalSelfAttention`` for any method of the registry
* :mod:`~ssmax_lite.lab.scale_invariant` — scale-invariant attention (a logit per key distance; explicit logits)
* :mod:`~ssmax_lite.lab.rope`        — rotary position embedding with a changeable θ
* :mod:`~ssmax_lite.lab.model`       — ``TinyTransformer`` and its ``ModelConfig`` (NoPE or RoPE)
* :mod:`~ssmax_lite.lab.tasks`       — synthetic needle/lookup tasks generated on the fly, and next-byte text
* :mod:`~ssmax_lite.lab.corpus`      — chapter 3d's text (CPython's standard library, shipped and checksummed)
* :mod:`~ssmax_lite.lab.train`       — the training loop, its ``quick`` / ``full`` presets and its cache
* :mod:`~ssmax_lite.lab.evaluate`    — accuracy against length, attention on the needle, learned s
* :mod:`~ssmax_lite.lab.experiments` — the chapters' experiments, also a command line (``python -m ssmax_lite.lab.experiments``)
* :mod:`~ssmax_lite.lab.convert`     — switching a trained model to SSMax (the paper's configurations e and f)
* :mod:`~ssmax_lite.lab.compare`     — one method's accuracy over seeds, as a table (chapters 4–5)
* :mod:`~ssmax_lite.lab.fading`      — closed forms behind chapters 1–2 (top weight, bound, entropy)
* :mod:`~ssmax_lite.lab.fits`        — chapter 3c: fitting log n and power curves to a learned multiplier
* :mod:`~ssmax_lite.lab.verdicts`    — the rule that judges a claim: paired differences over seeds, a 95 % interval
* :mod:`~ssmax_lite.lab.regime`      — chapter 3e: reading, tabulating and drawing the stored regime map
* :mod:`~ssmax_lite.lab.tables`      — the chapters' tables, as HTML for the book and as text
* :mod:`~ssmax_lite.lab.hf_task`     — chapter 6: the lookup task with a Hugging Face model
* :mod:`~ssmax_lite.lab.plotting`    — every figure of the book, and the sliders (needs matplotlib and ipywidgets)
* :mod:`~ssmax_lite.lab.diagram`     — the model diagram

Nothing here is imported by ``import ssmax_lite``; import the module you need.
"""
