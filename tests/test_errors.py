"""Every bad input raises ``ValueError`` whose message names the argument (never a silent NaN)."""

import math

import numpy as np
import pytest
import torch

from ssmax_lite import scaled_dot_product_attention, softmax, ssmax
from ssmax_lite.lab.layers import CausalSelfAttention
from ssmax_lite.lab.rope import RotaryEmbedding

X = np.array([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -np.inf, 3.0], [0.2, 0.1, 0.0, -0.3]])
NAN, INF = float("nan"), float("inf")


def qkv(l_q=5, l_k=6, heads=4):
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(2, heads, l_q, 8, generator=gen), torch.randn(2, heads, l_k, 8, generator=gen),
            torch.randn(2, heads, l_k, 8, generator=gen))


# --------------------------------------------------------------------------- softmax / ssmax

@pytest.mark.parametrize("backend", [np.asarray, torch.tensor])
@pytest.mark.parametrize("n", [0, 0.5, -3, [1, 0, 2], NAN, INF])
def test_n_below_one_or_not_finite(backend, n):
    with pytest.raises(ValueError, match=r"\bn\b"):
        ssmax(backend(X), n=backend(n) if isinstance(n, list) else n)


@pytest.mark.parametrize("backend", [np.asarray, torch.tensor])
@pytest.mark.parametrize("name", ["s", "bias"])
@pytest.mark.parametrize("value", [NAN, INF, -INF, [1.0, NAN, 1.0]])
def test_s_and_bias_must_be_finite(backend, name, value):
    value = backend(value) if isinstance(value, list) else value
    with pytest.raises(ValueError, match=rf"\b{name}\b must be finite"):
        ssmax(backend(X), **{name: value})


@pytest.mark.parametrize("backend", [np.asarray, torch.tensor])
@pytest.mark.parametrize("bad", [NAN, INF])
@pytest.mark.parametrize("function", [softmax, ssmax])
def test_nan_or_plus_inf_logits(backend, bad, function):
    x = X.copy()
    x[1, 1] = bad
    with pytest.raises(ValueError, match=r"\bx\b must hold finite logits"):
        function(backend(x))


@pytest.mark.parametrize("dim", [2, -3, 1.0, True, "last"])
@pytest.mark.parametrize("function", [softmax, ssmax])
def test_bad_dim(dim, function):
    with pytest.raises(ValueError, match=r"\bdim\b"):
        function(X, dim=dim)


def test_zero_dimensional_or_empty_x():
    with pytest.raises(ValueError, match=r"\bx\b must have at least one dimension"):
        softmax(np.float64(1.0))
    with pytest.raises(ValueError, match=r"\bx\b has size 0"):
        ssmax(torch.zeros(3, 0))


def test_integer_tensor_x():
    with pytest.raises(ValueError, match=r"\bx\b must be a floating-point tensor"):
        softmax(torch.ones(3, dtype=torch.int64))


@pytest.mark.parametrize("backend", [np.asarray, torch.tensor])
@pytest.mark.parametrize("name,value", [
    ("n", [2, 3]),                 # X has 3 rows: (2,) does not broadcast against (3,)
    ("n", [[2], [3], [4], [5]]),   # 4 rows
    ("n", np.full((3, 4), 2)),     # keepdim form must have size 1 along dim
    ("n", np.full((3, 5), 2)),     # would enlarge x's shape
    ("s", [0.5, 1.0]),
    ("bias", [0.1, 0.2, 0.3, 0.4]),
])
def test_n_s_or_bias_not_broadcastable(backend, name, value):
    with pytest.raises(ValueError, match=rf"^{name} has shape"):
        ssmax(backend(X), **{name: backend(np.asarray(value))})


def test_enlarging_broadcast_is_refused():
    x = np.zeros((3, 1, 4))
    with pytest.raises(ValueError, match=r"^n has shape \(3, 7\)"):
        ssmax(x, n=np.full((3, 7), 2))  # (3, 7) broadcasts with (3, 1) but would change x's shape


def test_s_must_be_a_number():
    with pytest.raises(ValueError, match=r"^s must be a real number"):
        ssmax(X, s="large")


def test_scaled_logits_that_overflow():
    x = torch.tensor([[3e4, 0.0]], dtype=torch.float16)
    with pytest.raises(ValueError, match="overflow; reduce s, bias or"):
        ssmax(x, s=1e36, n=2)


# --------------------------------------------------------------------------- attention


@pytest.mark.parametrize("s", [1.0, torch.ones(4)])
def test_query_key_embedding_mismatch(s):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"^query and key must share E"):
        scaled_dot_product_attention(q, k[..., :4], v, s=s)


def test_key_value_length_mismatch():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"key and value must share L_k"):
        scaled_dot_product_attention(q, k, v[..., :3, :], s=1.0)


def test_query_key_value_dtype_mismatch():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"^query, key and value must share one floating-point dtype"):
        scaled_dot_product_attention(q.double(), k, v, s=1.0)


@pytest.mark.parametrize("name,tensor", [("query", torch.ones(3)), ("key", "keys")])
def test_query_key_value_type_and_rank(name, tensor):
    q, k, v = qkv()
    args = {"query": q, "key": k, "value": v}
    args[name] = tensor
    with pytest.raises(ValueError, match=rf"^{name} must be a tensor of shape"):
        scaled_dot_product_attention(**args, s=1.0)


@pytest.mark.parametrize("name", ["s", "bias"])
@pytest.mark.parametrize("value", [torch.ones(3), torch.ones(4, 1), torch.ones(2, 4)])
def test_s_or_bias_of_wrong_shape(name, value):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=rf"^{name} must be a number or a tensor of shape \(\) or \(H,\) = \(4,\)"):
        scaled_dot_product_attention(q, k, v, **{name: value})


def test_per_head_s_needs_a_head_axis():
    q, k, v = (t[0, 0] for t in qkv())  # (L, E): no head axis
    with pytest.raises(ValueError, match=r"^s must be a number or a tensor of shape \(\)"):
        scaled_dot_product_attention(q, k, v, s=torch.ones(1))


@pytest.mark.parametrize("name", ["s", "bias"])
@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_attention_s_or_bias_not_finite(name, value):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=rf"^{name} must be finite"):
        scaled_dot_product_attention(q, k, v, **{name: value})


@pytest.mark.parametrize("name", ["s", "bias"])
@pytest.mark.parametrize("value", ["1.0", [1.0, 2.0], np.ones(4)])
def test_attention_s_or_bias_of_wrong_type(name, value):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=rf"^{name} must be None, a number, or a tensor"):
        scaled_dot_product_attention(q, k, v, **{name: value})


@pytest.mark.parametrize("mask", [
    torch.ones(5, 7, dtype=torch.bool),          # wrong L_k
    torch.ones(4, 6, dtype=torch.bool),          # wrong L_q
])
def test_attn_mask_of_bad_shape(mask):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"^attn_mask has shape"):
        scaled_dot_product_attention(q, k, v, attn_mask=mask, s=0.8)


def test_causal_mask_object_for_other_lengths():
    from torch.nn.attention.bias import causal_lower_right
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"^attn_mask is a causal mask for L_q=3, L_k=6"):
        scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(3, 6), s=0.8)


@pytest.mark.parametrize("mask,message", [
    (np.ones((5, 6), dtype=bool), "must be a bool tensor"),
    (torch.zeros(5, 6, dtype=torch.float64), "must be a bool tensor, a tensor of the query's dtype"),
    (torch.ones(5, 6, dtype=torch.int64), "must be a bool tensor, a tensor of the query's dtype"),
])
def test_attn_mask_of_bad_type_or_dtype(mask, message):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=rf"^attn_mask {message}"):
        scaled_dot_product_attention(q, k, v, attn_mask=mask, s=1.0)


def test_is_causal_with_attn_mask():
    q, k, v = qkv(l_q=6)
    with pytest.raises(ValueError, match=r"attn_mask or is_causal=True, not both"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(6, 6, dtype=torch.bool), is_causal=True, s=1.0)


@pytest.mark.parametrize("l_q,l_k", [(6, 5), (5, 6)])
def test_is_causal_needs_equal_lengths_with_ssmax(l_q, l_k):
    q, k, v = qkv(l_q=l_q, l_k=l_k)
    with pytest.raises(ValueError, match=r"^is_causal=True needs L_q == L_k with SSMax"):
        scaled_dot_product_attention(q, k, v, is_causal=True, s=1.0)


@pytest.mark.parametrize("scale", [NAN, INF, "0.1"])
def test_scale_not_finite(scale):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"^scale must be None or a finite number"):
        scaled_dot_product_attention(q, k, v, scale=scale, s=1.0)


# --------------------------------------------------------------------------- module and RoPE


def test_unknown_attention_kind():
    with pytest.raises(ValueError, match=r"^attention must be one of"):
        CausalSelfAttention(16, 4, attention="flash")
    module = CausalSelfAttention(16, 4)
    with pytest.raises(ValueError, match=r"^attention must be one of"):
        module.set_attention("ssmax2")


@pytest.mark.parametrize("d_model,n_heads", [(18, 4), (16, 0), (0, 4), (-8, 4), (16.0, 4), (16, 2.0)])
def test_bad_d_model_or_n_heads(d_model, n_heads):
    with pytest.raises(ValueError, match=r"d_model .* n_heads"):
        CausalSelfAttention(d_model, n_heads)


@pytest.mark.parametrize("train_len", [1, 0, 64.0])
def test_bad_train_len(train_len):
    with pytest.raises(ValueError, match=r"^train_len must be"):
        CausalSelfAttention(16, 4, attention="ssmax", train_len=train_len)


@pytest.mark.parametrize("kwargs", [dict(s_init=NAN), dict(s_init=INF), dict(bias_init=NAN)])
def test_bad_s_init_or_bias_init(kwargs):
    with pytest.raises(ValueError, match=r"s_init and bias_init must be finite"):
        CausalSelfAttention(16, 4, attention="ssmax-bias", **kwargs)


@pytest.mark.parametrize("shape", [(2, 5, 12), (5, 16), (1, 2, 5, 16)])
def test_module_input_of_wrong_shape(shape):
    module = CausalSelfAttention(16, 4, attention="ssmax")
    with pytest.raises(ValueError, match=r"^x must have shape \(B, L, d_model=16\)"):
        module(torch.zeros(shape))


@pytest.mark.parametrize("head_dim", [5, 0, -2, 4.0, True])
def test_rope_bad_head_dim(head_dim):
    with pytest.raises(ValueError, match=r"^head_dim must be an even int"):
        RotaryEmbedding(head_dim)


@pytest.mark.parametrize("theta", [1.0, 0.5, -10.0, NAN, INF, "10000"])
def test_rope_bad_theta(theta):
    with pytest.raises(ValueError, match=r"^theta must be a finite number > 1"):
        RotaryEmbedding(8, theta=theta)


def test_rope_input_of_wrong_size():
    with pytest.raises(ValueError, match=r"head_dim=8"):
        RotaryEmbedding(8)(torch.zeros(2, 3, 6))


def test_no_error_path_returns_nan_for_valid_extremes():
    # the boundary of each check is accepted: n = 1, s = 0, a fully masked row, theta just above 1
    out = ssmax(np.array([[-np.inf, -np.inf], [0.0, 1.0]]), s=0.0, n=1)
    assert np.all(np.isfinite(out)) and math.isclose(out[1].sum(), 1.0)
    assert torch.isfinite(RotaryEmbedding(2, theta=1.0001)(torch.ones(3, 2))).all()
