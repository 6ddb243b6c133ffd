"""Every model-facing function computes on the model's device: checked on the ``meta`` device.

A meta tensor has a shape and no values, and mixing one with a CPU tensor raises (``Tensor on device cpu
is not on the expected device meta!``). A function that builds a tensor on the CPU while the model lives
on a GPU (the chapters' crashes on a GPU runtime: counts built on the CPU beside a CUDA ``s``) fails here
the same way, on a machine without a GPU.

Functions that end by copying their result to the host (``.cpu()``, ``.numpy()``) for printing or fitting
are split into a compute half, which returns tensors on the model's device, and the copy; the compute half
is what runs here. ``MODEL_FACING`` is found by reading the library: every public function with a
``model``-like argument and every public method of a public ``nn.Module``. Each one is either covered here
(``COVERED``) or excluded with a reason (``EXCLUDED``), so a new one fails the test until someone decides.
"""

import copy
import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch
from torch import nn

import ssmax_lite
from ssmax_lite.lab import convert, evaluate, fits, train
from ssmax_lite.lab.layers import ATTENTION_KINDS, CausalSelfAttention
from ssmax_lite.lab.model import ModelConfig, TinyTransformer
from ssmax_lite.lab.tasks import ByteTextTask, LookupTask, RecallStreamTask
from ssmax_lite.lab.scalings import SCALINGS, get_scaling

META = torch.device("meta")
MODEL_ARGUMENTS = {"model", "models", "module", "lm", "runs", "layer"}
SKIPPED_MODULES = {"ssmax_lite.core.hf"}  # its device paths are tested in tests/test_hf.py (meta included)


def model_facing() -> set[str]:
    """``module.function`` or ``module.Class.method`` for every public model-facing callable of the library."""
    found = set()
    for info in pkgutil.walk_packages(ssmax_lite.__path__, "ssmax_lite."):
        if info.ispkg or info.name in SKIPPED_MODULES or info.name.rpartition(".")[2].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, nn.Module):
                found.update(f"{info.name}.{name}.{method}" for method, value in vars(obj).items()
                             if callable(value) and not method.startswith("_"))
            elif inspect.isfunction(obj) and MODEL_ARGUMENTS & set(inspect.signature(obj).parameters):
                found.add(f"{info.name}.{name}")
    return found


# --------------------------------------------------------------------------- meta models


def meta_model(kind: str = "ssmax", pe: str = "nope", vocab_size: int = 20, train_len: int = 8) -> TinyTransformer:
    config = ModelConfig(vocab_size=vocab_size, d_model=16, n_layers=2, n_heads=2, train_len=train_len,
                         attention=kind, pe=pe)
    return TinyTransformer(config).to(META).train(_applied_in_training(kind))


def meta_layer(kind: str) -> CausalSelfAttention:
    return CausalSelfAttention(16, 2, attention=kind, train_len=8).to(META)


LOOKUP = RecallStreamTask(n_keys=4, n_values=4, n_needles=2)
SAMPLING = dict(n_sequences=4, batch_size=2, seed=0, rope_theta_value=None)


def on_meta(*tensors) -> bool:
    return all(t.device == META for t in tensors)


# --------------------------------------------------------------------------- what runs on meta


def check_query_multiplier():
    for kind in ATTENTION_KINDS:
        layer = meta_layer(kind).eval()
        for n_queries, n_keys in ((1, 8), (4, 32)):
            multiplier = layer.query_multiplier(n_queries, n_keys)
            assert multiplier is None or on_meta(multiplier), kind


def check_layer_forward():
    for kind in ATTENTION_KINDS:
        layer = meta_layer(kind)
        out = layer(torch.empty(2, 5, 16, device=META))
        assert out.shape == (2, 5, 16) and on_meta(out)


def check_layer_attention_weights():
    weights = meta_layer("ssmax").attention_weights(torch.empty(2, 5, 16, device=META))
    assert weights.shape == (2, 2, 5, 5) and on_meta(weights)


def check_set_attention():
    layer = meta_layer("softmax")
    for kind in ATTENTION_KINDS:
        layer.set_attention(kind)
        assert all(p.device == META for p in layer.parameters()), kind


def check_extra_repr():
    assert "ssmax" in meta_layer("ssmax").extra_repr()


def check_model_forward():
    for kind in ATTENTION_KINDS:
        for pe in ("nope", "rope"):
            logits = meta_model(kind, pe)(torch.zeros(2, 12, dtype=torch.long, device=META))
            logits.sum().backward()
            assert logits.shape == (2, 12, 20) and on_meta(logits)


def check_model_attention_weights():
    weights = meta_model("ssmax", "rope").attention_weights(torch.zeros(2, 6, dtype=torch.long, device=META))
    assert len(weights) == 2 and on_meta(*weights)


def check_length_scales():
    for kind in ("ssmax", "constant", "ssmax-bias"):
        assert on_meta(meta_model(kind).length_scales())


def check_set_rope_theta():
    model = meta_model("ssmax", "rope")
    model.set_rope_theta(500_000.0)
    assert on_meta(model(torch.zeros(1, 6, dtype=torch.long, device=META)))


def check_share_learned_pn():
    model = meta_model("learned-pn")
    model.share_learned_pn()
    assert model.blocks[1].attn.pn is model.blocks[0].attn.pn and on_meta(model.blocks[0].attn.pn)


def check_num_parameters():
    assert meta_model().num_parameters() > 0


def check_accuracy_by_length():
    tallies = evaluate._length_tallies(meta_model(), LOOKUP, (8, 16), **SAMPLING)
    assert on_meta(*tallies)


def check_accuracy_by_depth():
    tallies = evaluate._depth_tallies(meta_model(), LOOKUP, (8, 16), evaluate.depth_edges(8, (1, 2)), **SAMPLING)
    assert on_meta(*tallies)


def check_needle_attention():
    for heads in ("each", "max"):
        weights = evaluate._needle_weights(meta_model("ssmax", "rope"), LOOKUP, [8, 16], heads=heads, **SAMPLING)
        assert on_meta(weights)


def check_loss_by_position():
    text = ByteTextTask(split="test")
    sums = evaluate._position_loss_sums(meta_model(vocab_size=text.vocab_size), text, 16, **SAMPLING)
    assert sums.shape == (16,) and on_meta(sums)


def check_rope_theta():
    model = meta_model("ssmax", "rope")
    with evaluate.rope_theta(model, 1e6):
        assert model.rope.theta == 1e6
        assert on_meta(model(torch.zeros(1, 6, dtype=torch.long, device=META)))
    assert model.rope.theta == 10_000.0


def check_attention_modules():
    assert len(convert.attention_modules(meta_model())) == 2


def check_switch_attention():
    for kind in ATTENTION_KINDS:
        model = convert.switch_attention(meta_model("softmax"), kind)
        assert all(p.device == META for p in model.parameters()), kind
        assert on_meta(model.eval()(torch.zeros(1, 12, dtype=torch.long, device=META)))


def check_extend_learned_pn():
    model = meta_model("learned-pn")
    line = fits.fit_curve(np.arange(1, 9), 0.1 * np.log(np.arange(1, 9)) + 1, "log")
    twin = fits.extend_learned_pn(model, line, 32)
    assert twin.blocks[0].attn.pn.shape == (32,) and on_meta(twin.blocks[0].attn.pn)
    assert on_meta(twin.eval()(torch.zeros(1, 32, dtype=torch.long, device=META)))


def check_train_step():
    model = meta_model("ssmax")
    config = train.preset("quick", attention="ssmax")
    optimizer = train.make_optimizer(model, config, "cpu")
    batch = LookupTask(4, 4, 2, tokens_per_needle=1).sample(2, 8, np.random.default_rng(0)).to(META)
    loss = train.train_step(model, optimizer, batch, 1.0, "cpu", precision="fp32")
    assert on_meta(loss) and all(p.device == META for p in model.parameters())


def check_attention_function():
    q, k, v = (torch.empty(2, 3, length, 4, device=META) for length in (5, 5, 5))
    out = ssmax_lite.scaled_dot_product_attention(q, k, v, is_causal=True, s=torch.empty(3, device=META))
    counts = ssmax_lite.attended_key_counts(5, 5, is_causal=True, device=META)
    assert on_meta(out, counts)


COVERED = {
    "ssmax_lite.lab.layers.CausalSelfAttention.query_multiplier": check_query_multiplier,
    "ssmax_lite.lab.layers.CausalSelfAttention.forward": check_layer_forward,
    "ssmax_lite.lab.layers.CausalSelfAttention.attention_weights": check_layer_attention_weights,
    "ssmax_lite.lab.layers.CausalSelfAttention.set_attention": check_set_attention,
    "ssmax_lite.lab.layers.CausalSelfAttention.extra_repr": check_extra_repr,
    "ssmax_lite.lab.model.TinyTransformer.forward": check_model_forward,
    "ssmax_lite.lab.model.TinyTransformer.attention_weights": check_model_attention_weights,
    "ssmax_lite.lab.model.TinyTransformer.length_scales": check_length_scales,
    "ssmax_lite.lab.model.TinyTransformer.set_rope_theta": check_set_rope_theta,
    "ssmax_lite.lab.model.TinyTransformer.share_learned_pn": check_share_learned_pn,
    "ssmax_lite.lab.model.TinyTransformer.num_parameters": check_num_parameters,
    "ssmax_lite.lab.evaluate.accuracy_by_length": check_accuracy_by_length,
    "ssmax_lite.lab.evaluate.accuracy_by_depth": check_accuracy_by_depth,
    "ssmax_lite.lab.evaluate.needle_attention": check_needle_attention,
    "ssmax_lite.lab.evaluate.loss_by_position": check_loss_by_position,
    "ssmax_lite.lab.evaluate.loss_by_bins": check_loss_by_position,  # one loss_by_position per bin
    "ssmax_lite.lab.evaluate.attention_map": check_model_attention_weights,  # then one matrix to numpy
    "ssmax_lite.lab.evaluate.learned_scales": check_length_scales,  # then to numpy
    "ssmax_lite.lab.evaluate.rope_theta": check_rope_theta,
    "ssmax_lite.lab.convert.attention_modules": check_attention_modules,
    "ssmax_lite.lab.convert.switch_attention": check_switch_attention,
    "ssmax_lite.lab.fits.extend_learned_pn": check_extend_learned_pn,
    "ssmax_lite.lab.train.train_step": check_train_step,
    "ssmax_lite.lab.train.make_optimizer": check_train_step,
    "ssmax_lite.lab.rope.RotaryEmbedding.forward": check_set_rope_theta,
    "ssmax_lite.lab.rope.RotaryEmbedding.angles": check_set_rope_theta,
    "ssmax_lite.lab.rope.RotaryEmbedding.extra_repr": check_extra_repr,
}

EXCLUDED = {
    "ssmax_lite.lab.train.fit": "train_step (covered) in a loop on the device it is given; the losses are copied "
                                "to the host every 50 steps (LossLog)",
    "ssmax_lite.lab.convert.fine_tune": "train_step (covered) in a loop on the model's device, as fit",
    "ssmax_lite.lab.fits.learned_pn": "returns the p_n parameter as a numpy array for fitting: a copy, no computing",
    "ssmax_lite.lab.compare.evaluate_method": "collects accuracy_by_length's results (covered) over models, in numpy",
    "ssmax_lite.lab.experiments.evaluate_models": "collects accuracy_by_length/_by_depth's results (covered), in numpy",
    "ssmax_lite.lab.experiments.evaluate_text_models": "collects loss_by_bins' results (covered), in numpy",
    "ssmax_lite.lab.hf_task.train_hf_model": "fit (excluded above) around TokensToLogits (covered)",
    "ssmax_lite.lab.hf_task.TokensToLogits.forward": "calls a transformers model, which reads its position ids' "
                                                     "values (packed-sequence detection): no meta run; chapter 6 "
                                                     "and tests/test_hf.py run it",
}


def test_every_model_facing_function_is_covered_or_excluded():
    found = model_facing()
    undecided = found - set(COVERED) - set(EXCLUDED)
    assert not undecided, f"model-facing functions neither covered by a meta-device check nor excluded: {sorted(undecided)}"
    gone = (set(COVERED) | set(EXCLUDED)) - found
    assert not gone, f"listed here but no longer in the library: {sorted(gone)}"


@pytest.mark.parametrize("name", sorted(COVERED))
def test_computes_on_the_models_device(name):
    COVERED[name]()


def test_the_core_attention_call_computes_on_the_inputs_device():
    check_attention_function()


def test_query_multiplier_would_fail_with_counts_on_the_cpu(monkeypatch):
    """The crash of chapter 3's exercise on a GPU: counts built on the CPU beside an ``s`` on another device."""
    from ssmax_lite.lab import layers

    def counts_on_the_cpu(n_queries, n_keys, device, dtype):
        n = torch.arange(n_keys - n_queries + 1, n_keys + 1, dtype=dtype).unsqueeze(-1)
        return n, torch.log(n)

    monkeypatch.setattr(layers, "_key_counts", counts_on_the_cpu)
    with pytest.raises(RuntimeError, match="device"):
        meta_layer("ssmax").query_multiplier(1, 8)


def test_learned_pn_would_fail_with_its_table_on_the_cpu(monkeypatch):
    """The crash of chapter 3c's exercise on a GPU: the p_n table built on the CPU beside an ``s`` elsewhere."""
    import dataclasses

    from ssmax_lite.lab import scalings

    def table_on_the_cpu(n, log_n, context_len, p):  # the formula as it was before the fix
        pn = torch.ones(p["pn"].shape, dtype=n.dtype)
        return p["s"] * pn[(n.clamp(max=pn.shape[-1]) - 1).long()] + p["bias"]

    assert meta_layer("learned-pn").query_multiplier(1, 8).device == META  # as the library builds it
    monkeypatch.setitem(scalings.SCALINGS, "learned-pn",
                        dataclasses.replace(scalings.SCALINGS["learned-pn"], _multiplier=table_on_the_cpu))
    with pytest.raises(RuntimeError, match="Tensor on device cpu is not on the expected device meta"):
        meta_layer("learned-pn").query_multiplier(1, 8)


def _applied_in_training(kind: str) -> bool:
    """Whether ``kind`` changes the logits in training mode (scale-invariant attention, outside the
    registry of multipliers, always does; the registry's inference-only methods do not)."""
    return kind not in SCALINGS or get_scaling(kind).applied != "inference"
