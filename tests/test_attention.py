"""``ssmax_lite.scaled_dot_product_attention`` against a float64 reference that builds the matrix.

The library folds the per-query factor ``s·log n_i + b`` into q and calls torch's fused
kernel. The reference below does the opposite: it builds every logit, masks it, applies
the SSMax formula row by row and multiplies by V, so the two share no code path.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right, causal_upper_left

from ssmax_lite import attended_key_counts, scaled_dot_product_attention
from ssmax_lite.core import attention as attention_module

B, H, E = 2, 3, 4


def make_qkv(l_q, l_k, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, length, E, generator=gen, dtype=dtype) for length in (l_q, l_k, l_k))
    return q, k, v


def reference_attention(q, k, v, allowed=None, additive=None, s=None, bias=None, scale=None):
    """Plain float64 loops: o_i = Σ_j a_ij v_j with a_i = softmax(m_i · q_i·k_j · scale + additive_ij).

    ``allowed`` (bool, broadcast to (B, H, L_q, L_k)) says which keys query i sees;
    n_i = the number of them; m_i = s_h·log n_i + b_h (1 when s and bias are None).
    Keys that are not allowed, or whose additive term is -inf, get weight 0.
    """
    q, k, v = q.double(), k.double(), v.double()
    l_q, l_k = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    allowed = torch.ones(l_q, l_k, dtype=torch.bool) if allowed is None else allowed
    additive = torch.zeros(l_q, l_k, dtype=torch.float64) if additive is None else additive.double()
    allowed = (allowed & ~torch.isneginf(additive)).expand(B, H, l_q, l_k)
    additive = additive.expand(B, H, l_q, l_k)
    s_h = torch.zeros(H, dtype=torch.float64) + (0.0 if s is None else torch.as_tensor(s).double())
    b_h = torch.zeros(H, dtype=torch.float64) + (0.0 if bias is None else torch.as_tensor(bias).double())
    out = torch.zeros(B, H, l_q, v.shape[-1], dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            for i in range(l_q):
                keys = allowed[b, h, i].nonzero().flatten()
                n_i = len(keys)
                m_i = 1.0 if s is None and bias is None else float(s_h[h] * math.log(n_i) + b_h[h])
                logits = torch.tensor([m_i * float(q[b, h, i] @ k[b, h, j]) * scale
                                       + float(additive[b, h, i, j]) for j in keys], dtype=torch.float64)
                weights = torch.exp(logits - logits.max())
                weights = weights / weights.sum()
                out[b, h, i] = (weights[:, None] * v[b, h, keys]).sum(dim=0)
    return out


def causal_allowed(l_q, l_k):
    """Bottom-right causal mask: query i sees keys 0 … i + L_k - L_q."""
    return torch.ones(l_q, l_k, dtype=torch.bool).tril(diagonal=l_k - l_q)


S_PER_HEAD = torch.tensor([0.3, 0.8, 1.4], dtype=torch.float64)
BIAS_PER_HEAD = torch.tensor([0.1, -0.2, 0.5], dtype=torch.float64)

SSMAX_SETTINGS = {
    "scalar s": dict(s=0.6),
    "per-head s": dict(s=S_PER_HEAD),
    "per-head s and bias": dict(s=S_PER_HEAD, bias=BIAS_PER_HEAD),
    "scalar s, tensor bias": dict(s=torch.tensor(0.9, dtype=torch.float64), bias=0.25),
}


# --------------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("setting", list(SSMAX_SETTINGS))
def test_no_mask(setting):
    q, k, v = make_qkv(5, 7)
    got = scaled_dot_product_attention(q, k, v, **SSMAX_SETTINGS[setting])
    torch.testing.assert_close(got, reference_attention(q, k, v, **SSMAX_SETTINGS[setting]))


def causal_mask(l_q, l_k):
    """is_causal=True for L_q = L_k; torch's bottom-right causal mask object otherwise."""
    return dict(is_causal=True) if l_q == l_k else dict(attn_mask=causal_lower_right(l_q, l_k))


@pytest.mark.parametrize("setting", list(SSMAX_SETTINGS))
@pytest.mark.parametrize("l_q,l_k", [(6, 6), (3, 8), (1, 5)])
def test_causal_bottom_right_aligned(setting, l_q, l_k):
    q, k, v = make_qkv(l_q, l_k, seed=1)
    got = scaled_dot_product_attention(q, k, v, **causal_mask(l_q, l_k), **SSMAX_SETTINGS[setting])
    expected = reference_attention(q, k, v, allowed=causal_allowed(l_q, l_k), **SSMAX_SETTINGS[setting])
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("setting", list(SSMAX_SETTINGS))
def test_causal_upper_left_object(setting):
    q, k, v = make_qkv(3, 8, seed=14)
    got = scaled_dot_product_attention(q, k, v, attn_mask=causal_upper_left(3, 8), **SSMAX_SETTINGS[setting])
    allowed = torch.ones(3, 8, dtype=torch.bool).tril()
    torch.testing.assert_close(got, reference_attention(q, k, v, allowed=allowed, **SSMAX_SETTINGS[setting]))


def test_is_causal_with_fewer_queries_than_keys_raises_with_ssmax():
    q, k, v = make_qkv(3, 8, seed=15)
    with pytest.raises(ValueError, match=r"is_causal=True needs L_q == L_k.*causal_lower_right"):
        scaled_dot_product_attention(q, k, v, is_causal=True, s=0.5)


@pytest.mark.parametrize("setting", list(SSMAX_SETTINGS))
def test_boolean_padding_mask(setting):
    q, k, v = make_qkv(4, 6, seed=2)
    lengths = torch.tensor([6, 3])  # batch 1 has three padded keys
    padding = torch.arange(6)[None, :] < lengths[:, None]
    mask = padding[:, None, None, :]  # (B, 1, 1, L_k)
    got = scaled_dot_product_attention(q, k, v, attn_mask=mask, **SSMAX_SETTINGS[setting])
    torch.testing.assert_close(got, reference_attention(q, k, v, allowed=mask, **SSMAX_SETTINGS[setting]))


@pytest.mark.parametrize("setting", list(SSMAX_SETTINGS))
def test_float_additive_mask(setting):
    q, k, v = make_qkv(4, 5, seed=3)
    additive = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    additive[0, 3:] = float("-inf")
    additive[2, 0] = float("-inf")
    got = scaled_dot_product_attention(q, k, v, attn_mask=additive, **SSMAX_SETTINGS[setting])
    torch.testing.assert_close(got, reference_attention(q, k, v, additive=additive, **SSMAX_SETTINGS[setting]))


def test_explicit_scale():
    q, k, v = make_qkv(3, 4, seed=4)
    got = scaled_dot_product_attention(q, k, v, scale=0.37, s=S_PER_HEAD)
    torch.testing.assert_close(got, reference_attention(q, k, v, s=S_PER_HEAD, scale=0.37))


def test_bias_alone_is_a_constant_temperature():
    q, k, v = make_qkv(3, 4, seed=5)
    got = scaled_dot_product_attention(q, k, v, bias=BIAS_PER_HEAD + 1)
    torch.testing.assert_close(got, reference_attention(q, k, v, s=0.0, bias=BIAS_PER_HEAD + 1))


def test_multiplier_one_at_full_length_equals_softmax_for_the_last_query():
    l = 9
    q, k, v = make_qkv(l, l, seed=6)
    got = scaled_dot_product_attention(q, k, v, is_causal=True, s=1 / math.log(l))
    plain = scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(got[..., -1, :], plain[..., -1, :])
    assert not torch.allclose(got[..., 1:-1, :], plain[..., 1:-1, :])  # shorter prefixes are flatter


# --------------------------------------------------------------------------- s=None is torch itself


@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool", "float"])
def test_s_none_is_exactly_torch(mask_kind):
    q, k, v = make_qkv(5, 5, seed=7, dtype=torch.float32)
    kwargs = {"none": {}, "causal": {"is_causal": True},
              "bool": {"attn_mask": torch.rand(5, 5, generator=torch.Generator().manual_seed(1)) > 0.3},
              "float": {"attn_mask": torch.randn(5, 5)}}[mask_kind]
    if mask_kind == "bool":
        kwargs["attn_mask"][:, 0] = True
    assert torch.equal(scaled_dot_product_attention(q, k, v, **kwargs),
                       F.scaled_dot_product_attention(q, k, v, **kwargs))


@pytest.mark.parametrize("mask", ["is_causal", "lower_right", "upper_left"])
def test_s_none_with_fewer_queries_than_keys_is_exactly_torch(mask):
    q, k, v = make_qkv(3, 8, seed=8, dtype=torch.float32)
    kwargs = {"is_causal": dict(is_causal=True), "lower_right": dict(attn_mask=causal_lower_right(3, 8)),
              "upper_left": dict(attn_mask=causal_upper_left(3, 8))}[mask]
    assert torch.equal(scaled_dot_product_attention(q, k, v, **kwargs), F.scaled_dot_product_attention(q, k, v, **kwargs))


def test_the_signature_is_torchs():
    import inspect
    ours = list(inspect.signature(scaled_dot_product_attention).parameters)
    assert ours[:8] == ["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"]
    assert ours[8:] == ["s", "bias"]
    q, k, v = make_qkv(4, 4, seed=16, dtype=torch.float32)
    # positional arguments mean what they mean to torch (the 5th is dropout_p)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, None, 0.0, True, 0.3),
                               F.scaled_dot_product_attention(q, k, v, None, 0.0, True, scale=0.3))


def test_grouped_query_attention_with_ssmax():
    gen = torch.Generator().manual_seed(17)
    q = torch.randn(2, 4, 5, 8, generator=gen, dtype=torch.float64)
    k, v = (torch.randn(2, 2, 5, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    s = torch.tensor([0.3, 0.6, 0.9, 1.2], dtype=torch.float64)
    got = scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True, s=s)
    repeated = [t.repeat_interleave(2, dim=1) for t in (k, v)]
    torch.testing.assert_close(got, scaled_dot_product_attention(q, *repeated, is_causal=True, s=s))


def test_dropout_in_training_keeps_the_multiplier():
    # dropout drops attention weights after the softmax; with p = 0 the call is deterministic and exact
    q, k, v = make_qkv(4, 4, seed=18)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=True, s=S_PER_HEAD),
                               reference_attention(q, k, v, allowed=causal_allowed(4, 4), s=S_PER_HEAD))
    torch.manual_seed(0)
    dropped = scaled_dot_product_attention(q, k, v, dropout_p=0.5, is_causal=True, s=S_PER_HEAD)
    assert dropped.shape == q.shape and torch.isfinite(dropped).all()


# --------------------------------------------------------------------------- decoding, counts


@pytest.mark.parametrize("setting", list(SSMAX_SETTINGS))
@pytest.mark.parametrize("n_new", [1, 3])
def test_decoding_with_kv_cache_matches_the_full_causal_pass(setting, n_new):
    q, k, v = make_qkv(10, 10, seed=10)
    full = scaled_dot_product_attention(q, k, v, is_causal=True, **SSMAX_SETTINGS[setting])
    last = scaled_dot_product_attention(q[..., -n_new:, :], k, v, attn_mask=causal_lower_right(n_new, 10),
                                        **SSMAX_SETTINGS[setting])
    torch.testing.assert_close(last, full[..., -n_new:, :])
    if n_new == 1:  # the newest query sees every key: no mask at all
        unmasked = scaled_dot_product_attention(q[..., -1:, :], k, v, **SSMAX_SETTINGS[setting])
        torch.testing.assert_close(unmasked, full[..., -1:, :])


def test_attended_key_counts():
    assert attended_key_counts(3, 7, attn_mask=causal_lower_right(3, 7)).flatten().tolist() == [5, 6, 7]
    assert attended_key_counts(3, 7, attn_mask=causal_upper_left(3, 7)).flatten().tolist() == [1, 2, 3]
    assert attended_key_counts(3, 7, is_causal=True).flatten().tolist() == [1, 2, 3]  # torch's alignment
    with pytest.warns(UserWarning, match="NaN"):  # torch's own warning: rows without a key
        more_queries = causal_lower_right(7, 3)
    assert attended_key_counts(7, 3, attn_mask=more_queries).flatten().tolist() == [0] * 4 + [1, 2, 3]
    assert attended_key_counts(2, 7).flatten().tolist() == [7]
    bool_mask = torch.tensor([[True, False, True], [False, False, True]])
    assert attended_key_counts(2, 3, attn_mask=bool_mask).flatten().tolist() == [2, 1]
    float_mask = torch.tensor([[0.0, float("-inf"), -3.0], [float("-inf")] * 3])
    assert attended_key_counts(2, 3, attn_mask=float_mask).flatten().tolist() == [2, 0]


def test_log_n_is_built_once_and_can_be_saved_for_backward():
    attention_module._LOG_N.clear()
    q, k, v = make_qkv(4, 9, seed=19, dtype=torch.float32)
    mask = causal_lower_right(4, 9)
    with torch.inference_mode():  # built here first, as in an evaluation
        scaled_dot_product_attention(q, k, v, attn_mask=mask, s=0.5)
    (cached,) = attention_module._LOG_N.values()
    torch.testing.assert_close(cached.flatten(), torch.log(torch.arange(6.0, 10.0)))
    s = torch.tensor(0.5, requires_grad=True)
    scaled_dot_product_attention(q, k, v, attn_mask=mask, s=s).sum().backward()  # reuses it, saved for backward
    assert len(attention_module._LOG_N) == 1 and s.grad is not None and torch.isfinite(s.grad)


def test_the_log_n_cache_is_bounded():
    attention_module._LOG_N.clear()
    for length in range(1, attention_module._LOG_N_ENTRIES + 20):
        q = torch.randn(1, 1, length, 2)
        scaled_dot_product_attention(q, q, q, is_causal=True, s=0.5)
    assert len(attention_module._LOG_N) == attention_module._LOG_N_ENTRIES


def test_float32_matches_float64_reference():
    q, k, v = make_qkv(6, 6, seed=11, dtype=torch.float32)
    got = scaled_dot_product_attention(q, k, v, is_causal=True, s=S_PER_HEAD.float())
    assert got.dtype == torch.float32
    expected = reference_attention(q, k, v, allowed=causal_allowed(6, 6), s=S_PER_HEAD)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("is_causal,l_q", [(True, 4), (True, 2), (False, 4)])
def test_gradcheck_wrt_q_k_v_s_and_bias(is_causal, l_q):
    q, k, v = (t[:1, :2, :, :3].clone().requires_grad_(True) for t in make_qkv(l_q, 4, seed=12))
    s = torch.tensor([0.7, 1.2], dtype=torch.float64, requires_grad=True)
    bias = torch.tensor([0.1, -0.3], dtype=torch.float64, requires_grad=True)

    mask = causal_mask(l_q, 4) if is_causal else {}

    def attention(q, k, v, s, bias):
        return scaled_dot_product_attention(q, k, v, **mask, s=s, bias=bias)

    assert torch.autograd.gradcheck(attention, (q, k, v, s, bias))


def test_gradient_reaches_s_and_matches_the_reference():
    q, k, v = make_qkv(4, 4, seed=13)
    s_lib = S_PER_HEAD.clone().requires_grad_(True)
    s_ref = S_PER_HEAD.clone().requires_grad_(True)
    weights = torch.randn(B, H, 4, E, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (scaled_dot_product_attention(q, k, v, is_causal=True, s=s_lib) * weights).sum().backward()
    # reference gradient through explicit matrices (differentiable, unlike the loop version)
    n = torch.arange(1, 5, dtype=torch.float64)
    logits = (q @ k.transpose(-1, -2)) / math.sqrt(E) * (s_ref[:, None] * n.log())[..., None]
    logits = logits.masked_fill(~causal_allowed(4, 4), float("-inf"))
    ((torch.softmax(logits, dim=-1) @ v) * weights).sum().backward()
    assert torch.all(s_lib.grad != 0)
    torch.testing.assert_close(s_lib.grad, s_ref.grad)
