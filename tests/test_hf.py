"""SSMax in Hugging Face transformers models (ssmax_lite.hf): n is right in every situation, and with
s·log n + b ≡ 1 every path equals transformers' own "sdpa".

Tiny models are built from configs (nothing is downloaded). Each situation is checked against a computation
whose n is known: the same sequence alone, without a cache, unpacked, a direct softmax with (s·log n)-scaled
logits, or "sdpa" itself. Precision, life cycle, errors and installation are in test_hf_lifecycle.py.
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
# families checked against "sdpa" only: GPT-2 (its own config keys, attention dropout attn_pdrop), Mistral with
# a sliding window shorter than the sequences, Gemma 3 (GQA, a sliding and a full layer)
MORE = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4)),
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(**SIZES, num_key_value_heads=2, sliding_window=4)),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM",
               dict(**SIZES, num_key_value_heads=2, head_dim=8, sliding_window=4,
                    layer_types=["sliding_attention", "full_attention"])),
}


def build(family: str, attn: str = "sdpa", seed: int = 0, **overrides):
    config_name, model_name, extra = FAMILIES[family] if family in FAMILIES else MORE[family]
    sizes = SIZES if family in FAMILIES else {}
    config = getattr(transformers, config_name)(**{**sizes, **extra, **overrides})
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
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


def unit_multiplier(model):
    """SSMax switched on with s = 0 and b = 1: s·log n + b ≡ 1, so the model must compute what "sdpa" computes."""
    ssmax_hf.enable_ssmax(model, s=0.5, bias=0.0)
    with torch.no_grad():
        for scales in model.modules():
            if isinstance(scales, ssmax_hf.SSMaxScales):
                scales.s.zero_()
                scales.bias.fill_(1.0)
    return model


def tokens(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def padding_mask(ids):
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding
    if len(ids) > 2:
        mask[1, -3:] = 0  # right padding
    return mask


def close(a, b):
    torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


family = pytest.mark.parametrize("family", list(FAMILIES))
every_family = pytest.mark.parametrize("family", list(FAMILIES) + list(MORE))


def test_import_ssmax_lite_does_not_import_transformers():
    code = ("import sys, ssmax_lite, ssmax_lite.core.attention, ssmax_lite.lab.train, ssmax_lite.lab.convert, "
            "ssmax_lite.lab.evaluate, ssmax_lite.lab.experiments; print('transformers' in sys.modules)")
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


def gqa_module(s):
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True  # what a transformers attention layer carries
    module.ssmax = ssmax_hf.SSMaxScales(len(s), 0.3)
    with torch.no_grad():
        module.ssmax.s.copy_(torch.tensor(s))
    return module


def test_attention_function_counts_the_allowed_keys_of_each_row():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 2, 9, 8), torch.randn(2, 2, 9, 8)
    allowed = torch.rand(2, 1, 5, 9) < 0.6
    allowed[..., 0] = True
    module = gqa_module([0.2, 0.5, 1.0, 1.5])
    out, weights = ssmax_hf.ssmax_attention_forward(module, q, k, v, allowed, scaling=8 ** -0.5)
    assert weights is None
    close(out, reference_attention(q, k, v, allowed, module.ssmax.s.detach()))
    # a float mask with finfo.min (transformers' eager masks) or -inf: those keys must not count either
    for masked in (torch.finfo(torch.float32).min, float("-inf")):
        float_mask = torch.zeros(allowed.shape).masked_fill(~allowed, masked)
        close(ssmax_hf.ssmax_attention_forward(module, q, k, v, float_mask, scaling=8 ** -0.5)[0], out)


@pytest.mark.parametrize("l_q, l_k, causal, expected", [
    (6, 6, True, list(range(1, 7))),    # causal prefill: n_i = i + 1 (sdpa's is_causal)
    (6, 10, True, list(range(1, 7))),   # an empty static cache: sdpa cuts the slots past L_q
    (1, 10, True, [10]),                # one decoding query sees its whole cache
    (6, 6, False, [6] * 6),             # a bidirectional layer
])
def test_without_a_mask_n_is_what_sdpa_lets_each_query_see(l_q, l_k, causal, expected):
    module = gqa_module([0.3] * 4)
    q, k = torch.zeros(1, 4, l_q, 8), torch.zeros(1, 2, l_k, 8)
    n = ssmax_hf._key_counts(module, q, k, None, causal)
    assert n.dtype == torch.float32 and n.flatten().tolist() == expected


def test_the_attention_function_reads_no_tensor_value_on_the_host():
    """On the meta device any read of a value (.item(), bool(tensor), .tolist()) raises: what passes here makes
    the CPU wait for no GPU. Every mask kind, GQA, decoding, the bias."""
    module = gqa_module([0.3] * 4).to("meta")
    module.ssmax.bias = torch.nn.Parameter(torch.zeros(4, device="meta"))
    for l_q, l_k, mask in ((16, 16, None), (1, 16, None), (16, 16, torch.ones(2, 1, 16, 16, dtype=torch.bool)),
                           (4, 16, torch.zeros(2, 1, 4, 16)), (1, 16, torch.ones(2, 1, 1, 16, dtype=torch.bool))):
        q, k = torch.empty(2, 4, l_q, 8, device="meta"), torch.empty(2, 2, l_k, 8, device="meta")
        mask = None if mask is None else mask.to("meta")
        out, _ = ssmax_hf.ssmax_attention_forward(module, q, k, k, mask, scaling=0.3)
        assert out.shape == (2, l_q, 4, 8) and out.device.type == "meta"


def test_switching_a_trained_model_keeps_the_last_training_position_exact():
    """Configuration (e): s = 1/log L, so s·log n = 1 at n = L and the row at L is softmax's row."""
    torch.manual_seed(0)
    length = 12
    q, k, v = (torch.randn(1, 4, length, 8) for _ in range(3))
    layer = build("gpt_neox").gpt_neox.layers[0].attention
    softmax_out, _ = ssmax_hf.ssmax_attention_forward(layer, q, k, v, None, scaling=8 ** -0.5)
    layer.ssmax = ssmax_hf.SSMaxScales(4, 1 / math.log(length))
    ssmax_out, _ = ssmax_hf.ssmax_attention_forward(layer, q, k, v, None, scaling=8 ** -0.5)
    close(ssmax_out[:, -1], softmax_out[:, -1])
    assert (ssmax_out[:, :-1] - softmax_out[:, :-1]).abs().max() > 1e-3


# ------------------------------------------------------------------------------ s·log n + b ≡ 1 is "sdpa"


@every_family
def test_unit_multiplier_equals_sdpa_padded_and_unpadded(family):
    sdpa, ssmax = build(family), unit_multiplier(build(family))
    ids = tokens(3, 11)
    for mask in (None, padding_mask(ids)):
        close(ssmax(ids, attention_mask=mask).logits, sdpa(ids, attention_mask=mask).logits)
    off = build(family, attn="ssmax")  # the "ssmax" attention with no s in any layer is "sdpa" too
    close(off(ids).logits, sdpa(ids).logits)


@every_family
def test_unit_multiplier_generates_as_sdpa(family):
    sdpa, ssmax = build(family), unit_multiplier(build(family))
    ids = tokens(2, 7)
    runs = [model.generate(ids, attention_mask=padding_mask(ids), max_new_tokens=5, do_sample=False,
                           output_scores=True, return_dict_in_generate=True, pad_token_id=0) for model in (ssmax, sdpa)]
    assert torch.equal(runs[0].sequences, runs[1].sequences)
    for a, b in zip(runs[0].scores, runs[1].scores):
        close(a, b)


def test_unit_multiplier_with_a_static_cache_equals_sdpa():
    sdpa, ssmax = build("llama"), unit_multiplier(build("llama"))
    ids = tokens(2, 7)
    runs = [model.generate(ids, max_new_tokens=4, do_sample=False, cache_implementation="static",
                           output_scores=True, return_dict_in_generate=True, pad_token_id=0) for model in (ssmax, sdpa)]
    for a, b in zip(runs[0].scores, runs[1].scores):
        close(a, b)


@pytest.mark.parametrize("family", ["llama", "gpt_neox", "gpt2"])
def test_attention_dropout_in_training_equals_sdpa(family):
    """Dropout acts on the weights after the softmax, so it commutes with a per-query factor: with the same
    seed, "ssmax" with s·log n + b ≡ 1 drops exactly what "sdpa" drops, and training works."""
    dropout = dict(attn_pdrop=0.5) if family == "gpt2" else dict(attention_dropout=0.5)
    sdpa, ssmax = build(family, **dropout).train(), unit_multiplier(build(family, **dropout)).train()
    ids = tokens(2, 9)
    losses = []
    for model in (sdpa, ssmax):
        torch.manual_seed(5)
        losses.append(model(ids, labels=ids).loss)
    torch.manual_seed(6)
    assert (ssmax(ids, labels=ids).loss - losses[1]).abs() > 1e-4  # another seed drops other weights
    close(losses[1], losses[0])
    losses[1].backward()
    assert all(m.s.grad is not None for m in ssmax.modules() if isinstance(m, ssmax_hf.SSMaxScales))


def kernel_calls(model, run):
    """The arguments of every torch SDPA call while ``run`` runs: mask, is_causal, enable_gqa, shapes."""
    calls, sdpa = [], torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        calls.append((tuple(q.shape), tuple(k.shape), None if attn_mask is None else tuple(attn_mask.shape),
                      kwargs.get("is_causal"), kwargs.get("enable_gqa", False)))
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        run(model)
    finally:
        torch.nn.functional.scaled_dot_product_attention = sdpa
    return calls


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_ssmax_makes_the_same_kernel_calls_as_sdpa(family):
    """The is_causal fast path without a mask, enable_gqa where sdpa uses it (no K/V copies), the same masks."""
    ids = tokens(2, 7)
    runs = {"unpadded": lambda m: m(ids), "padded": lambda m: m(ids, attention_mask=padding_mask(ids)),
            "generate": lambda m: m.generate(ids, max_new_tokens=2, do_sample=False, pad_token_id=0)}
    expected = {name: kernel_calls(build(family), run) for name, run in runs.items()}
    ssmax = ssmax_model(family) if family in FAMILIES else unit_multiplier(build(family))
    assert {name: kernel_calls(ssmax, run) for name, run in runs.items()} == expected
    # llama, no mask: is_causal and enable_gqa; mistral's window (4 < 7 tokens) needs a mask, so a K/V copy
    assert expected["unpadded"][0][2:] == ((None, True, True) if family == "llama" else ((2, 1, 7, 7), False, False))


# ------------------------------------------------------------------------------ whole models, n known


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
    runs = [model.generate(ids, attention_mask=padding_mask(ids), max_new_tokens=6, do_sample=False,
                           use_cache=use_cache, output_scores=True, return_dict_in_generate=True, pad_token_id=0)
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


def packed_row():
    documents = [tokens(1, length, seed=length) for length in (5, 8, 3)]
    position_ids = torch.cat([torch.arange(d.shape[1]) for d in documents]).unsqueeze(0)
    doc_id = torch.cat([torch.full((d.shape[1],), i) for i, d in enumerate(documents)])
    allowed = (doc_id[:, None] == doc_id[None, :]) & torch.ones(16, 16, dtype=torch.bool).tril()
    return documents, torch.cat(documents, dim=1), position_ids, allowed[None, None]


@family
@pytest.mark.parametrize("use_cache", [False, True])
def test_packed_sequences_equal_the_documents_alone(family, use_cache):
    model = ssmax_model(family)
    documents, packed, position_ids, _ = packed_row()
    with ssmax_hf.record_key_counts(model) as counts:
        logits = model(packed, position_ids=position_ids, use_cache=use_cache).logits
    assert counts == [[3]]  # the last query sees its own document's 3 keys, not the row's 16
    start = 0
    for document in documents:
        close(logits[0, start:start + document.shape[1]], model(document).logits[0])
        start += document.shape[1]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("use_cache", [False, True])
def test_packed_sequences_equal_sdpa_given_the_document_mask(family, use_cache):
    """transformers builds no document mask with a cache; "ssmax" does, and with s·log n + b ≡ 1 it equals sdpa
    given the same mask explicitly."""
    sdpa, ssmax = build(family), unit_multiplier(build(family))
    _, packed, position_ids, allowed = packed_row()
    expected = sdpa(packed, attention_mask=allowed, position_ids=position_ids, use_cache=use_cache).logits
    close(ssmax(packed, position_ids=position_ids, use_cache=use_cache).logits, expected)
    close(ssmax(packed, attention_mask=allowed, position_ids=position_ids, use_cache=use_cache).logits, expected)


def test_packed_sequences_with_a_cache_and_sliding_windows_raise():
    sdpa, model = build("mistral"), unit_multiplier(build("mistral"))
    _, packed, position_ids, _ = packed_row()
    with pytest.raises(ValueError, match="use_cache=False"):
        model(packed, position_ids=position_ids, use_cache=True)
    for kwargs in (dict(position_ids=position_ids, use_cache=False),  # transformers builds window and documents
                   dict(use_cache=True)):  # positions that do not restart: no document mask needed
        close(model(packed, **kwargs).logits, sdpa(packed, **kwargs).logits)


@family
def test_gradients_reach_s(family):
    model = ssmax_model(family).train()
    model(tokens(2, 9), labels=tokens(2, 9)).loss.backward()
    scales = [m for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales)]
    assert len(scales) == SIZES["num_hidden_layers"]
    for m in scales:
        assert m.s.grad is not None and m.s.grad.abs().min() > 0


def test_activation_checkpointing_gives_the_same_gradients():
    ids = tokens(2, 9)
    grads = []
    for checkpointing in (False, True):
        model = ssmax_model("llama").train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(ids, labels=ids, use_cache=False).loss.backward()
        grads.append(torch.stack([m.s.grad for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales)]))
    assert grads[0].abs().min() > 0
    close(grads[1], grads[0])


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


# ------------------------------------------------------------------------------ the book's task (chapter 6)


def test_an_hf_model_trains_and_is_evaluated_like_the_tiny_transformer():
    from ssmax_lite.lab.evaluate import accuracy_by_length
    from ssmax_lite.lab.hf_task import TokensToLogits, train_hf_model
    from ssmax_lite.lab.train import preset

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
    from ssmax_lite.lab.evaluate import accuracy_by_length
    from ssmax_lite.lab.hf_task import TokensToLogits, train_hf_model
    from ssmax_lite.lab.train import preset

    config = preset("quick", steps=2)
    with pytest.raises(ValueError, match="lm must be a causal language model"):
        TokensToLogits(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="must equal the task's vocab_size"):
        train_hf_model(build("llama"), config)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        train_hf_model(build("llama"), config.to_dict())
    with pytest.raises(ValueError, match="model must be a TinyTransformer or a module that maps tokens"):
        accuracy_by_length(torch.nn.Linear(2, 2), config.task, config.train_len, (1,))


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
def test_a_compiled_model_computes_what_the_eager_one_computes(padded):
    """Under torch.compile the mask carries no counts (they are a Python attribute): n is counted in the graph."""
    model = ssmax_model("llama", seed=2)
    ids = tokens(2, 9)
    mask = padding_mask(ids) if padded else None
    expected = model(ids, attention_mask=mask).logits
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager")
    close(compiled(ids, attention_mask=mask).logits, expected)
    torch._dynamo.reset()
