"""SSMax in Hugging Face transformers models (ssmax_lite.hf): n is right in every situation.

Tiny Llama, Qwen2, Qwen3 and GPT-NeoX models are built from configs (nothing is downloaded). Each
situation is checked against a computation whose n is known: the same sequence alone, without a
cache, unpacked, or a direct softmax with (s·log n)-scaled logits.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
import ssmax_lite.hf as ssmax_hf  # noqa: E402

VOCAB = 40
SIZES = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(num_key_value_heads=2)),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(num_key_value_heads=2)),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(num_key_value_heads=2, head_dim=8)),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict()),
}


def build(family: str, attn: str = "sdpa", seed: int = 0):
    config_name, model_name, extra = FAMILIES[family]
    config = getattr(transformers, config_name)(**SIZES, **extra)
    torch.manual_seed(seed)
    return _set(getattr(transformers, model_name)(config).eval(), attn)


def _set(model, attn: str):
    model.set_attn_implementation(attn)
    return model


def ssmax_model(family: str, seed: int = 0):
    """SSMax switched on, with a different s per layer and head (so a wrong n shows)."""
    model = ssmax_hf.enable_ssmax(build(family, seed=seed), s=0.5)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        for scales in model.modules():
            if isinstance(scales, ssmax_hf.SSMaxScales):
                scales.s.copy_(0.2 + torch.rand(scales.s.shape, generator=generator))
    return model


def tokens(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def close(a, b):
    torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


family = pytest.mark.parametrize("family", list(FAMILIES))


def test_import_ssmax_lite_does_not_import_transformers():
    code = ("import sys, ssmax_lite, ssmax_lite.attention, ssmax_lite.train, ssmax_lite.convert, "
            "ssmax_lite.evaluate, ssmax_lite.experiments; print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------------------ one layer, n known


def reference_attention(q, k, v, allowed, s):
    """softmax((s_h log n_i)·q·k/√E) with n_i = allowed keys of row i, written out."""
    k, v = (x.repeat_interleave(q.shape[1] // x.shape[1], dim=1) for x in (k, v))
    n = allowed.sum(-1, keepdim=True).clamp(min=1).to(q.dtype)
    logits = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]) * (s.view(1, -1, 1, 1) * torch.log(n))
    weights = logits.masked_fill(~allowed, float("-inf")).softmax(-1)
    return (weights @ v).transpose(1, 2)


def test_attention_function_counts_the_allowed_keys_of_each_row():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 2, 9, 8), torch.randn(2, 2, 9, 8)
    allowed = torch.rand(2, 1, 5, 9) < 0.6
    allowed[..., 0] = True
    module = torch.nn.Module()
    module.ssmax = ssmax_hf.SSMaxScales(4, 0.3)
    with torch.no_grad():
        module.ssmax.s.copy_(torch.tensor([0.2, 0.5, 1.0, 1.5]))
    out, weights = ssmax_hf.ssmax_attention_forward(module, q, k, v, allowed, scaling=8 ** -0.5)
    assert weights is None
    close(out, reference_attention(q, k, v, allowed, module.ssmax.s.detach()))
    # transformers' float masks use finfo.min, not -inf: those keys must not count either
    float_mask = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    out_float, _ = ssmax_hf.ssmax_attention_forward(module, q, k, v, float_mask, scaling=8 ** -0.5)
    close(out_float, out)


def test_switching_a_trained_model_keeps_the_last_training_position_exact():
    """Configuration (e): s = 1/log L, so s·log n = 1 at n = L and the row at L is softmax's row."""
    torch.manual_seed(0)
    length = 12
    q, k, v = (torch.randn(1, 4, length, 8) for _ in range(3))
    layer = build("llama").model.layers[0].self_attn
    softmax_out, _ = ssmax_hf.ssmax_attention_forward(layer, q, k, v, None, scaling=8 ** -0.5)
    layer.ssmax = ssmax_hf.SSMaxScales(4, 1 / math.log(length))
    ssmax_out, _ = ssmax_hf.ssmax_attention_forward(layer, q, k, v, None, scaling=8 ** -0.5)
    close(ssmax_out[:, -1], softmax_out[:, -1])
    assert (ssmax_out[:, :-1] - softmax_out[:, :-1]).abs().max() > 1e-3


# ------------------------------------------------------------------------------ whole models


@family
def test_ssmax_off_equals_transformers_sdpa(family):
    sdpa = build(family)
    off = _set(build(family), "ssmax")  # the ssmax attention, with no s in any layer
    ids = tokens(3, 11)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding
    mask[1, -3:] = 0  # right padding
    close(off(ids).logits, sdpa(ids).logits)
    close(off(ids, attention_mask=mask).logits, sdpa(ids, attention_mask=mask).logits)


@family
@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_equals_each_sequence_alone(family, side):
    model = ssmax_model(family)
    ids = tokens(2, 10)
    mask = torch.ones_like(ids)
    pad = 4
    real = slice(pad, None) if side == "left" else slice(None, -pad)
    mask[0] = 0
    mask[0, real] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    batched = model(ids, attention_mask=mask, position_ids=position_ids).logits
    close(batched[0, real], model(ids[:1, real]).logits[0])
    close(batched[1], model(ids[1:]).logits[0])


@family
def test_generate_with_cache_equals_recomputing_without_it(family):
    model = ssmax_model(family)
    ids = tokens(2, 7)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # a left-padded prompt, as generate() expects
    runs = [model.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, use_cache=use_cache,
                           output_scores=True, return_dict_in_generate=True, pad_token_id=0)
            for use_cache in (True, False)]
    assert torch.equal(runs[0].sequences, runs[1].sequences)
    for with_cache, without in zip(runs[0].scores, runs[1].scores):
        close(with_cache, without)


@family
def test_the_new_token_sees_the_cache_plus_itself(family):
    model = ssmax_model(family)
    ids = tokens(2, 6)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0
    with ssmax_hf.record_key_counts(model) as counts:
        model.generate(ids, attention_mask=mask, max_new_tokens=3, do_sample=False, pad_token_id=0)
    # the prompt's last query sees 4 and 6 keys (padding excluded), then one more per new token
    assert counts == [[4, 6], [5, 7], [6, 8]]


@family
def test_chunked_prefill_equals_one_prefill(family):
    model = ssmax_model(family)
    ids = tokens(2, 12)
    whole = model(ids).logits
    cache = transformers.DynamicCache(config=model.config)
    parts = [model(ids[:, start:start + 5], cache=cache, use_cache=True).logits for start in (0, 5, 10)]
    close(torch.cat(parts, dim=1), whole)


@family
@pytest.mark.parametrize("use_cache", [False, True])
def test_packed_sequences_equal_the_documents_alone(family, use_cache):
    model = ssmax_model(family)
    documents = [tokens(1, length, seed=length) for length in (5, 8, 3)]
    packed = torch.cat(documents, dim=1)
    position_ids = torch.cat([torch.arange(d.shape[1]) for d in documents]).unsqueeze(0)
    logits = model(packed, position_ids=position_ids, use_cache=use_cache).logits
    start = 0
    for document in documents:
        close(logits[0, start:start + document.shape[1]], model(document).logits[0])
        start += document.shape[1]


@family
def test_a_4d_document_mask_restarts_n_per_document(family):
    model = ssmax_model(family)
    documents = [tokens(1, 6, seed=6), tokens(1, 4, seed=4)]
    packed = torch.cat(documents, dim=1)
    doc_id = torch.tensor([0] * 6 + [1] * 4)
    allowed = (doc_id[:, None] == doc_id[None, :]) & torch.ones(10, 10, dtype=torch.bool).tril()
    position_ids = torch.tensor([list(range(6)) + list(range(4))])
    logits = model(packed, attention_mask=allowed[None, None], position_ids=position_ids).logits
    close(logits[0, 6:], model(documents[1]).logits[0])


@family
def test_gradients_reach_s(family):
    model = ssmax_model(family).train()
    model(tokens(2, 9), labels=tokens(2, 9)).loss.backward()
    scales = [m for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales)]
    assert len(scales) == SIZES["num_hidden_layers"]
    for m in scales:
        assert m.s.grad is not None and m.s.grad.abs().min() > 0


@family
def test_save_and_load_keep_s(family, tmp_path):
    model = ssmax_model(family, seed=3)
    model.save_pretrained(tmp_path)
    loaded = ssmax_hf.from_pretrained(transformers.AutoModelForCausalLM, tmp_path)
    assert type(loaded).__name__ == type(model).__name__ and loaded.config._attn_implementation == "ssmax"
    assert torch.equal(ssmax_hf.learned_scales(loaded), ssmax_hf.learned_scales(model))
    ids = tokens(2, 9)
    close(loaded(ids).logits, model(ids).logits)


def test_fixed_s_gets_no_gradient_and_bias_is_learned():
    model = ssmax_hf.enable_ssmax(build("llama"), s=0.3, bias=0.1, learn=False)
    assert not any(p.requires_grad for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales)
                   for p in m.parameters())
    model = ssmax_hf.enable_ssmax(build("llama"), train_length=64, bias=0.2)
    s = ssmax_hf.learned_scales(model)
    close(s * math.log(64) + 0.2, torch.ones_like(s))  # (e): s·log L + b = 1
    model.train()
    model(tokens(2, 9), labels=tokens(2, 9)).loss.backward()
    assert all(m.bias.grad is not None for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales))


# ------------------------------------------------------------------------------ bad configuration


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "exactly one of s .* and train_length"),
    (dict(s=0.3, train_length=64), "exactly one of s .* and train_length"),
    (dict(s=0.0), "s must be a finite number > 0"),
    (dict(s=float("nan")), "s must be a finite number > 0"),
    (dict(train_length=1), "train_length must be an int >= 2"),
    (dict(train_length=64.0), "train_length must be an int >= 2"),
    (dict(s=0.3, bias=float("inf")), "bias must be None .* or a finite number"),
    (dict(train_length=64, bias=1.5), "bias must be < 1"),
    (dict(s=0.3, learn="yes"), "learn must be True .* or False"),
])
def test_bad_settings_raise_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ssmax_hf.enable_ssmax(build("llama"), **kwargs)


def test_bad_models_raise_a_clear_value_error(tmp_path):
    with pytest.raises(ValueError, match="model must be a transformers PreTrainedModel"):
        ssmax_hf.enable_ssmax(torch.nn.Linear(2, 2), s=0.3)
    model = build("llama")
    model.config.attention_dropout = 0.1
    with pytest.raises(ValueError, match="config.attention_dropout must be 0.0"):
        ssmax_hf.enable_ssmax(model, s=0.3)
    build("llama").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no 'ssmax' settings"):
        ssmax_hf.from_pretrained(transformers.AutoModelForCausalLM, tmp_path)
    with pytest.raises(ValueError, match="no SSMax layer"):
        ssmax_hf.learned_scales(build("llama"))


# ------------------------------------------------------------------------------ the book's task (chapter 6)


def test_an_hf_model_trains_and_is_evaluated_like_the_tiny_transformer():
    from ssmax_lite.evaluate import accuracy_by_length
    from ssmax_lite.hf_task import TokensToLogits, train_hf_model
    from ssmax_lite.train import preset

    config = preset("quick", steps=6, batch_size=4)
    lm = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=config.task.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=4))
    s_before = ssmax_hf.learned_scales(ssmax_hf.enable_ssmax(lm, train_length=config.train_len))
    result = train_hf_model(lm, config)
    assert isinstance(result.model, TokensToLogits) and result.model.lm is lm and not lm.training
    assert result.losses.shape == (6,) and np.isfinite(result.losses).all()
    assert not torch.equal(ssmax_hf.learned_scales(lm), s_before)  # s trained along with the weights
    evaluation = accuracy_by_length(result.model, config.task, config.train_len, (1, 2), n_sequences=2)
    assert evaluation.lengths == (64, 128) and ((0 <= evaluation.accuracy) & (evaluation.accuracy <= 1)).all()


def test_the_task_bridge_rejects_what_it_cannot_train():
    from ssmax_lite.evaluate import accuracy_by_length
    from ssmax_lite.hf_task import TokensToLogits, train_hf_model
    from ssmax_lite.train import preset

    config = preset("quick", steps=2)
    with pytest.raises(ValueError, match="lm must be a causal language model"):
        TokensToLogits(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="must equal the task's vocab_size"):
        train_hf_model(build("llama"), config)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        train_hf_model(build("llama"), config.to_dict())
    with pytest.raises(ValueError, match="model must be a TinyTransformer or a module that maps tokens"):
        accuracy_by_length(torch.nn.Linear(2, 2), config.task, config.train_len, (1,))
