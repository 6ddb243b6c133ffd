"""The tiny transformer: shapes, causality, RoPE θ at evaluation, learned scales, config checks."""

import math

import pytest
import torch

from ssmax_lite.lab.layers import CausalSelfAttention
from ssmax_lite.lab.model import ModelConfig, TinyTransformer


def _model(**kwargs):
    torch.manual_seed(0)
    return TinyTransformer(ModelConfig(vocab_size=20, d_model=32, n_layers=2, n_heads=4, train_len=16, **kwargs))


@pytest.mark.parametrize("attention", ["softmax", "ssmax", "constant"])
@pytest.mark.parametrize("pe", ["nope", "rope"])
def test_logits_shape_and_blocks_expose_attention(attention, pe):
    model = _model(attention=attention, pe=pe)
    tokens = torch.randint(0, 20, (3, 11))
    assert model(tokens).shape == (3, 11, 20)
    assert all(isinstance(block.attn, CausalSelfAttention) for block in model.blocks)
    assert model.blocks[0].attn.attention == attention


@pytest.mark.parametrize("pe", ["nope", "rope"])
def test_model_is_causal(pe):
    model = _model(attention="ssmax", pe=pe)
    tokens = torch.randint(0, 20, (1, 12))
    changed = tokens.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 20
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[0, :8], b[0, :8])
    assert not torch.allclose(a[0, 8:], b[0, 8:])


def test_attention_weights_are_causal_distributions_matching_forward():
    model = _model(attention="ssmax")
    tokens = torch.randint(0, 20, (2, 9))
    weights = model.attention_weights(tokens)
    assert len(weights) == 2 and weights[0].shape == (2, 4, 9, 9)
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 9))
        assert torch.all(w.triu(diagonal=1) == 0)
    # the explicit first-layer weights reproduce the fused attention output
    block = model.blocks[0]
    x = block.ln_attn(model.embed(tokens))
    q, k, v = block.attn.qkv(x).split(32, dim=-1)
    v = v.view(2, 9, 4, 8).transpose(1, 2)
    by_hand = block.attn.out((weights[0] @ v).transpose(1, 2).reshape(2, 9, 32))
    torch.testing.assert_close(by_hand, block.attn(x), atol=1e-5, rtol=1e-4)


def test_set_rope_theta_changes_only_long_range_output():
    model = _model(pe="rope")
    tokens = torch.randint(0, 20, (1, 30))
    with torch.no_grad():
        before = model(tokens)
        model.set_rope_theta(500_000.0)
        after = model(tokens)
    assert model.rope.theta == 500_000.0
    torch.testing.assert_close(before[0, 0], after[0, 0])  # position 0 sees only itself
    assert not torch.allclose(before[0, 5:], after[0, 5:])


def test_set_rope_theta_needs_rope_and_a_valid_theta():
    with pytest.raises(ValueError, match="pe='rope'"):
        _model(pe="nope").set_rope_theta(1e5)
    with pytest.raises(ValueError, match="theta"):
        _model(pe="rope").set_rope_theta(float("nan"))


def test_length_scales_start_at_one_over_log_train_len():
    scales = _model(attention="ssmax").length_scales()
    assert scales.shape == (2, 4)
    torch.testing.assert_close(scales, torch.full((2, 4), 1 / math.log(16)))
    torch.testing.assert_close(_model(attention="constant").length_scales(), torch.ones(2, 4))
    with pytest.raises(ValueError, match="softmax"):
        _model(attention="softmax").length_scales()


def test_tied_embeddings_share_weights():
    model = _model()
    assert model.head.weight is model.embed.weight
    untied = _model(tie_embeddings=False)
    assert untied.head.weight is not untied.embed.weight


@pytest.mark.parametrize("kwargs, match", [
    (dict(attention="sparsemax"), "attention"),
    (dict(pe="alibi"), "pe"),
    (dict(n_heads=5), "multiple"),
    (dict(rope_theta=1.0), "rope_theta"),
    (dict(train_len=1), "train_len"),
    (dict(d_ff=0), "d_ff"),
])
def test_bad_config_raises(kwargs, match):
    base = dict(vocab_size=20, d_model=32, n_layers=2, n_heads=4, train_len=16)
    with pytest.raises(ValueError, match=match):
        ModelConfig(**(base | kwargs))


def test_bad_tokens_raise():
    model = _model()
    with pytest.raises(ValueError, match="tokens"):
        model(torch.randint(0, 20, (5,)))
    with pytest.raises(ValueError, match="vocab_size"):
        model(torch.full((1, 4), 20))
