"""ssmax_lite.hf beyond float32 and one process: mixed precision, loading, pickling, re-enabling, the errors
raised when a model is converted, and the install and version checks."""

from __future__ import annotations

import copy
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
import ssmax_lite.hf as ssmax_hf  # noqa: E402
from test_hf import SIZES, VOCAB, build, close, ssmax_model, tokens, unit_multiplier  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def attention_outputs(model, run):
    """The attention function's output of every layer while ``run`` runs (what o_proj receives)."""
    seen = []
    hooks = [layer.self_attn.o_proj.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
             for layer in model.model.layers]
    try:
        result = run()
    finally:
        for hook in hooks:
            hook.remove()
    return result, seen


def cpu_autocast_works(dtype) -> bool:
    """Whether this CPU runs transformers' own "sdpa" Llama under autocast to ``dtype`` (fp16 needs support)."""
    try:
        with torch.autocast("cpu", dtype=dtype):
            build("llama")(tokens(1, 4))
        return True
    except RuntimeError:
        return False


# ------------------------------------------------------------------------------ mixed precision


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_float32_weights_under_autocast_train_in_the_low_precision(dtype):
    """RoPE returns q and k in float32 while v comes from the projection in the autocast dtype: sdpa's autocast
    casts all three, and the attention output is in the low precision (no silent fall-back to float32)."""
    if not cpu_autocast_works(dtype):
        pytest.skip(f"this CPU has no autocast to {dtype}")
    model = ssmax_model("llama").train()
    ids = tokens(2, 9)
    with torch.autocast("cpu", dtype=dtype):
        out, seen = attention_outputs(model, lambda: model(ids, labels=ids))
    assert [o.dtype for o in seen] == [dtype] * SIZES["num_hidden_layers"]
    out.loss.backward()
    for scales in model.modules():
        if isinstance(scales, ssmax_hf.SSMaxScales):
            assert scales.s.dtype == torch.float32 and torch.isfinite(scales.s.grad).all()  # s stays float32
    reference = model.eval()(ids, labels=ids).loss  # the same model in float32
    assert abs(out.loss.item() - reference.item()) < 0.05


def test_unit_multiplier_under_autocast_equals_sdpa_under_autocast():
    ids = tokens(2, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        close(unit_multiplier(build("llama"))(ids).logits, build("llama")(ids).logits)


def test_low_precision_weights():
    """A bf16 model: s is created in bf16 (the model's dtype) and the multiplier is cast to the query's dtype."""
    model = ssmax_hf.enable_ssmax(build("llama").to(torch.bfloat16), train_length=64)
    assert {m.s.dtype for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales)} == {torch.bfloat16}
    ids = tokens(2, 9)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    _, seen = attention_outputs(model, lambda: model(ids, attention_mask=mask))
    assert [o.dtype for o in seen] == [torch.bfloat16] * SIZES["num_hidden_layers"]
    assert model.generate(ids, attention_mask=mask, max_new_tokens=3, do_sample=False, pad_token_id=0).shape == (2, 12)
    sdpa, unit = build("llama").to(torch.bfloat16), unit_multiplier(build("llama").to(torch.bfloat16))
    torch.testing.assert_close(unit(ids, attention_mask=mask).logits, sdpa(ids, attention_mask=mask).logits)
    float_model = ssmax_hf.enable_ssmax(build("llama"), train_length=64).to(torch.bfloat16)  # .to converts s
    assert ssmax_hf.learned_scales(float_model).dtype == torch.bfloat16


# ------------------------------------------------------------------------------ life cycle


def test_save_and_load_keep_s(tmp_path):
    model = ssmax_model("qwen3", seed=3)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["attn_implementation"] == "ssmax" and saved["ssmax"]["s"] == 0.5
    assert saved["ssmax"]["load_with"] == "ssmax_lite.hf.from_pretrained(Qwen3ForCausalLM, path)"
    assert saved["ssmax"]["install"] == ssmax_hf.INSTALL
    loaded = ssmax_hf.from_pretrained(transformers.AutoModelForCausalLM, tmp_path)
    assert type(loaded) is type(model) and loaded.config._attn_implementation == "ssmax"
    assert torch.equal(ssmax_hf.learned_scales(loaded), ssmax_hf.learned_scales(model))
    ids = tokens(2, 9)
    close(loaded(ids).logits, model(ids).logits)
    loaded, info = ssmax_hf.from_pretrained(transformers.Qwen3ForCausalLM, tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


@pytest.mark.parametrize("bias", [None, 0.25])
def test_a_softmax_checkpoint_with_ssmax_settings_starts_s_from_them(tmp_path, bias):
    """The SSMax parameters are not in a softmax checkpoint: they start from config.ssmax, never from
    uninitialised memory, and the rest of the weights load as saved."""
    softmax = build("llama")
    softmax.save_pretrained(tmp_path)
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    config.ssmax = {"s": 0.125, "bias": bias, "learn": True}
    for _ in range(2):  # the memory torch hands out may differ between two loads: check both
        model = ssmax_hf.from_pretrained(transformers.LlamaForCausalLM, tmp_path, config=config)
        assert torch.equal(ssmax_hf.learned_scales(model), torch.full((2, 4), 0.125))
        biases = [m.bias for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales)]
        expected_bias = [None, None] if bias is None else torch.full((2, 4), bias)
        assert biases == expected_bias if bias is None else torch.equal(torch.stack(biases), expected_bias)
        assert torch.equal(model.lm_head.weight, softmax.lm_head.weight)
    expected = ssmax_hf.enable_ssmax(build("llama"), s=0.125, bias=bias)
    ids = tokens(2, 9)
    close(model(ids).logits, expected(ids).logits)


def test_a_loaded_model_pickles_and_copies(tmp_path):
    ssmax_model("llama").save_pretrained(tmp_path)
    model = ssmax_hf.from_pretrained(transformers.LlamaForCausalLM, tmp_path)
    assert type(model) is transformers.LlamaForCausalLM  # the class transformers defines, so pickle finds it
    ids = tokens(2, 9)
    _, packed, position_ids, _ = __import__("test_hf").packed_row()
    for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        close(other(ids).logits, model(ids).logits)
        close(other(packed, position_ids=position_ids).logits, model(packed, position_ids=position_ids).logits)


def test_a_pickled_model_loads_in_a_fresh_process(tmp_path):
    """Unpickling imports ssmax_lite.hf (SSMaxScales lives there), which registers the "ssmax" attention."""
    model = ssmax_model("llama")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    torch.save(model(tokens(2, 9)).logits, tmp_path / "logits.pt")
    code = (f"import pickle, torch, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"from test_hf import tokens; m = pickle.loads(open({str(tmp_path / 'model.pkl')!r}, 'rb').read()); "
            f"torch.testing.assert_close(m(tokens(2, 9)).logits, torch.load({str(tmp_path / 'logits.pt')!r})); "
            f"print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_re_enabling_keeps_a_trained_s_unless_asked():
    model = ssmax_model("llama")
    trained = ssmax_hf.learned_scales(model)
    model.set_attn_implementation("sdpa")
    ssmax_hf.enable_ssmax(model)
    assert model.config._attn_implementation == "ssmax" and torch.equal(ssmax_hf.learned_scales(model), trained)
    with pytest.warns(UserWarning, match="kept the SSMax parameters .* reset=True"):
        ssmax_hf.enable_ssmax(model, train_length=64, learn=False)
    assert torch.equal(ssmax_hf.learned_scales(model), trained)
    assert not any(m.s.requires_grad for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales))
    ssmax_hf.enable_ssmax(model, s=0.3, reset=True)
    assert torch.equal(ssmax_hf.learned_scales(model), torch.full((2, 4), 0.3))
    assert model.config.ssmax["s"] == 0.3 and model.config.ssmax["learn"]
    with pytest.raises(ValueError, match="exactly one of s .* and train_length"):
        ssmax_hf.enable_ssmax(model, reset=True)


def test_a_model_built_on_the_meta_device_gets_s_when_materialised():
    """``to_empty`` gives every parameter uninitialised memory, and ``init_weights`` only knows transformers' own
    modules: SSMax's s and b start from their initial values instead, while a trained s on a real device stays."""
    with torch.device("meta"):
        model = build("llama")
    ssmax_hf.enable_ssmax(model, s=0.4, bias=0.1)
    assert all(p.is_meta for p in model.parameters())
    model.to_empty(device="cpu")
    model.init_weights()
    scales = [m for m in model.modules() if isinstance(m, ssmax_hf.SSMaxScales)]
    assert all(torch.equal(m.s, torch.full((4,), 0.4)) and torch.equal(m.bias, torch.full((4,), 0.1)) for m in scales)
    ids = tokens(2, 9)
    assert torch.isfinite(model(ids).logits).all()
    trained = ssmax_model("llama")  # s drawn per head: moves between dtypes and devices keep it
    before = ssmax_hf.learned_scales(trained)
    moved = ssmax_hf.learned_scales(trained.to(torch.float64))
    assert moved.dtype == torch.float64 and torch.equal(moved.float(), before)
    assert torch.equal(ssmax_hf.learned_scales(trained.to("cpu", torch.float32)), before)


def test_the_plain_class_on_an_ssmax_checkpoint_names_what_to_call(tmp_path):
    ssmax_model("llama").save_pretrained(tmp_path)
    plain = transformers.LlamaForCausalLM.from_pretrained(tmp_path)  # ssmax_lite.hf is imported here
    with pytest.raises(ValueError, match=r"loaded with the plain class.*ssmax_lite\.hf\.from_pretrained"):
        plain(tokens(1, 5))
    # without ssmax_lite.hf imported, transformers refuses the unknown attention: nothing runs softmax silently
    code = (f"import transformers; transformers.LlamaForCausalLM.from_pretrained({str(tmp_path)!r})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and 'attn_implementation="ssmax"' in out.stderr and "not supported" in out.stderr


# ------------------------------------------------------------------------------ errors when converting


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "exactly one of s .* and train_length"),
    (dict(s=0.3, train_length=64), "exactly one of s .* and train_length"),
    (dict(s=0.0), "s must be a finite number > 0"),
    (dict(s=float("nan")), "s must be a finite number > 0"),
    (dict(train_length=1), "train_length must be an int >= 2"),
    (dict(train_length=64.0), "train_length must be an int >= 2"),
    (dict(s=0.3, bias=float("inf")), "bias must be None .* or a finite number"),
    (dict(train_length=64, bias=1.5), "bias must be < 1"),
    (dict(s=0.3, learn="yes"), "learn and reset must be True or False"),
    (dict(s=0.3, reset=1), "learn and reset must be True or False"),
])
def test_bad_settings_raise_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ssmax_hf.enable_ssmax(build("llama"), **kwargs)


def test_bad_models_and_calls_raise_a_clear_value_error(tmp_path):
    with pytest.raises(ValueError, match="model must be a transformers PreTrainedModel"):
        ssmax_hf.enable_ssmax(torch.nn.Linear(2, 2), s=0.3)
    build("llama").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no 'ssmax' settings"):
        ssmax_hf.from_pretrained(transformers.AutoModelForCausalLM, tmp_path)
    with pytest.raises(ValueError, match="no SSMax layer"):
        ssmax_hf.learned_scales(build("llama"))
    with pytest.raises(ValueError, match="no SSMax layer"):
        with ssmax_hf.record_key_counts(build("llama")):
            pass
    for family in ("llama", "gpt2"):  # GPT-2's layers do not pass output_attentions to the attention function
        with pytest.raises(ValueError, match="returns no attention weights: pass output_attentions=False"):
            ssmax_model(family)(tokens(1, 5), output_attentions=True)
    with pytest.raises(ValueError, match="output_attentions"):  # in the config: transformers itself refuses
        ssmax_model("gpt2").config.output_attentions = True


def test_loading_an_ssmax_checkpoint_with_another_attention_raises(tmp_path):
    ssmax_model("llama").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="attn_implementation must be 'ssmax'"):
        ssmax_hf.from_pretrained(transformers.LlamaForCausalLM, tmp_path, attn_implementation="sdpa")
    loaded = ssmax_hf.from_pretrained(transformers.LlamaForCausalLM, tmp_path, attn_implementation="ssmax")
    assert loaded.config._attn_implementation == "ssmax"


def test_softcapping_and_sinks_raise_when_converting():
    small = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=8)
    gemma2 = transformers.Gemma2ForCausalLM(transformers.Gemma2Config(**small, attn_logit_softcapping=50.0))
    with pytest.raises(ValueError, match="attn_logit_softcapping"):
        ssmax_hf.enable_ssmax(gemma2, s=0.3)
    assert gemma2.config._attn_implementation != "ssmax" and not hasattr(gemma2.config, "ssmax")  # nothing changed
    gpt_oss = transformers.GptOssForCausalLM(transformers.GptOssConfig(**small, num_local_experts=2,
                                                                       num_experts_per_tok=1))
    with pytest.raises(ValueError, match="sinks"):
        ssmax_hf.enable_ssmax(gpt_oss, s=0.3)
    # without soft-capping Gemma 2 converts, and with s·log n + b ≡ 1 it is "ssmax" switched off
    gemma2 = transformers.Gemma2ForCausalLM(transformers.Gemma2Config(**small, attn_logit_softcapping=None)).eval()
    ids = tokens(2, 9)
    gemma2.set_attn_implementation("ssmax")
    expected = gemma2(ids).logits
    close(unit_multiplier(gemma2)(ids).logits, expected)


# ------------------------------------------------------------------------------ install and versions


def test_an_old_or_missing_transformers_names_the_version_and_the_install_command():
    for setup in ("import transformers; transformers.__version__ = '5.23.1'",
                  "import sys; sys.modules['transformers'] = None"):
        out = subprocess.run([sys.executable, "-c", f"{setup}; import ssmax_lite.hf"], capture_output=True, text=True)
        assert "ImportError: ssmax_lite.hf needs transformers >= 5.24" in out.stderr, out.stderr[-1000:]
        assert ssmax_hf.INSTALL in out.stderr


def test_every_install_command_for_the_hf_extra_is_the_one_from_the_repository():
    """The repository URL is defined once (_config.yml, .ci/repo_links.py); ssmax_lite.hf, its README section
    and chapter 6's prose install the hf extra from it."""
    sys.path.insert(0, str(ROOT / ".ci"))
    import repo_links

    expected = f'pip install "{repo_links.pip_requirement().replace("ssmax_lite @", "ssmax_lite[hf] @")}"'
    assert ssmax_hf.INSTALL == expected
    chapter = json.loads((ROOT / "notebooks" / "06_your_own_model.ipynb").read_text())
    texts = {"ssmax_lite/core/hf.py": (ROOT / "ssmax_lite" / "core" / "hf.py").read_text(),
             "README.md": (ROOT / "README.md").read_text(),
             "chapter 6": "\n".join("".join(c["source"]) for c in chapter["cells"] if c["cell_type"] == "markdown")}
    for where, text in texts.items():
        commands = re.findall(r"pip install[^\n]*ssmax_lite\[hf\][^\n]*", text)
        assert commands, f"{where} shows no install command for the hf extra"
        assert all(expected in c for c in commands), (where, commands)
