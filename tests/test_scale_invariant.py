"""Scale-invariant attention (Anson, Wang & Aitchison 2025) against its formula, its lemmas and softmax."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssmax_lite.lab import scale_invariant
from ssmax_lite.lab.layers import CausalSelfAttention
from ssmax_lite.lab.model import ModelConfig, TinyTransformer
from ssmax_lite.lab.scale_invariant import (ALPHA, BETA, DEFAULT_TAU, scale_invariant_attention,
                                            scale_invariant_coefficients, scale_invariant_logits)


def test_the_boundary_condition_fixes_alpha_and_beta():
    # a_0 = 1 and m_0 = 0 (the nearest keys unscaled) give alpha = beta = e^(1/2), the paper's values
    assert ALPHA == BETA == pytest.approx(math.exp(0.5))
    a, m = scale_invariant_coefficients(torch.zeros(1, dtype=torch.float64))
    assert a.item() == pytest.approx(1.0, abs=1e-15) and m.item() == pytest.approx(0.0, abs=1e-15)
    assert DEFAULT_TAU == 10.0


def test_coefficients_are_the_papers_eq_16():
    t = torch.tensor([0.0, 1.0, 9.0, 63.0, 2047.0], dtype=torch.float64)
    for tau, alpha, beta in ((10.0, ALPHA, BETA), (3.0, 2.0, 5.0)):
        a, m = scale_invariant_coefficients(t, tau, alpha=alpha, beta=beta)
        expected_a = np.sqrt(2 * (np.log(t.numpy() / tau + 1) - np.log(alpha) + beta / alpha))
        np.testing.assert_allclose(a.numpy(), expected_a, rtol=1e-13)
        np.testing.assert_allclose(m.numpy(), -expected_a ** 2 + beta / alpha, rtol=1e-13, atol=1e-13)
    # with the defaults: a_t^2 = 1 + 2 ln(1 + t/10), m_t = -2 ln(1 + t/10)
    a, m = scale_invariant_coefficients(t)
    np.testing.assert_allclose(a.numpy() ** 2, 1 + 2 * np.log1p(t.numpy() / 10), rtol=1e-13)
    np.testing.assert_allclose(m.numpy(), -2 * np.log1p(t.numpy() / 10), rtol=1e-13, atol=1e-15)


def test_gaussian_scores_meet_lemmas_1_and_2():
    # for S ~ N(0, 1), L = a S + m is N(m, a^2): E[e^L] = e^(m + a^2/2) must be alpha/(t/tau + 1) (Lemma 1,
    # scale-invariant total attention) and E[e^L L] = (m + a^2) e^(m + a^2/2) must be beta/(t/tau + 1) (Lemma 2)
    t = torch.tensor([0.0, 3.0, 10.0, 100.0, 1e4], dtype=torch.float64)
    a, m = scale_invariant_coefficients(t)
    mean_weight = torch.exp(m + a ** 2 / 2)
    np.testing.assert_allclose(mean_weight.numpy(), ALPHA / (t.numpy() / DEFAULT_TAU + 1), rtol=1e-12)
    np.testing.assert_allclose(((m + a ** 2) * mean_weight).numpy(), BETA / (t.numpy() / DEFAULT_TAU + 1),
                               rtol=1e-12)
    # and by sampling, at two distances: 400,000 seeded draws, whose mean of e^L has a relative standard error
    # of sqrt(e^(a^2) - 1 / 400,000): 0.4 % at t = 5, 1 % at t = 30 (the tolerance is 5 of them)
    scores = torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for distance, tolerance in ((5.0, 0.02), (30.0, 0.05)):
        a, m = scale_invariant_coefficients(torch.tensor(distance, dtype=torch.float64))
        sampled = torch.exp(a * scores + m).mean().item()
        assert sampled == pytest.approx(ALPHA / (distance / DEFAULT_TAU + 1), rel=tolerance)


def _attention_by_loops(q, k, v, tau):
    """The formula written out for one head, query by query (numpy, float64)."""
    q, k, v = (x.detach().double().numpy() for x in (q, k, v))
    n_queries, n_keys, dim = q.shape[0], k.shape[0], q.shape[1]
    out = np.zeros((n_queries, v.shape[1]))
    for i in range(n_queries):
        position = n_keys - n_queries + i  # a new query sees every cached key
        logits = []
        for j in range(position + 1):
            t = position - j
            a = math.sqrt(2 * (math.log(t / tau + 1) - math.log(ALPHA) + BETA / ALPHA))
            logits.append(a * (q[i] @ k[j]) / math.sqrt(dim) + (-a * a + BETA / ALPHA))
        weights = np.exp(np.array(logits) - max(logits))
        out[i] = (weights / weights.sum()) @ v[: position + 1]
    return out


@pytest.mark.parametrize("n_queries, n_keys", [(7, 7), (1, 9), (3, 12)])
@pytest.mark.parametrize("tau", [10.0, 0.5])
def test_attention_equals_the_formula_written_out(n_queries, n_keys, tau):
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(shape, generator=gen, dtype=torch.float64)
               for shape in ((2, n_queries, 8), (2, n_keys, 8), (2, n_keys, 5)))
    got = scale_invariant_attention(q, k, v, tau)
    for head in range(2):
        np.testing.assert_allclose(got[head].numpy(), _attention_by_loops(q[head], k[head], v[head], tau),
                                   rtol=1e-10, atol=1e-12)


def test_the_logits_mask_keys_after_the_query():
    q, k = torch.randn(1, 4, 8), torch.randn(1, 6, 8)
    logits = scale_invariant_logits(q, k)
    seen = torch.isfinite(logits[0])
    expected = torch.arange(6)[None, :] <= torch.arange(4)[:, None] + 2  # query i sees keys 0 … i + 2
    assert torch.equal(seen, expected)


def test_with_a_huge_length_scale_it_is_causal_softmax():
    # tau -> infinity: a_t -> 1 and m_t -> 0 for every key, so the logits are the plain scores
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, 20, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(scale_invariant_attention(q, k, v, tau=1e15),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-9, atol=1e-12)


def test_no_query_scaling_expresses_it():
    # 30 identical keys: any per-query multiplier (SSMax's s·log n, a temperature) scales equal scores
    # equally and attends uniformly, 1/30 each; scale-invariant attention weighs the keys by their distance
    q = torch.ones(1, 1, 4, dtype=torch.float64)
    k = v = torch.ones(1, 30, 4, dtype=torch.float64)
    logits = scale_invariant_logits(q, k)[0, 0]
    a, m = scale_invariant_coefficients(torch.arange(29, -1, -1, dtype=torch.float64))  # key j is 29 - j back
    torch.testing.assert_close(logits, a * 2.0 + m)  # every score is 4 / sqrt(4) = 2
    weights = torch.softmax(logits, -1)
    assert (weights.diff() > 0).all()  # nearer keys weigh more ...
    assert weights[-1] > 2 * weights[0]  # ... the nearest more than twice the farthest (2.37 times)
    for multiplier in (0.5, 1.0, math.log(30)):
        torch.testing.assert_close(torch.softmax(multiplier * 2.0 * torch.ones(30, dtype=torch.float64), -1),
                                   torch.full((30,), 1 / 30, dtype=torch.float64))


def test_blocks_of_queries_change_nothing(monkeypatch):
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 40, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    whole = scale_invariant_attention(q, k, v)
    monkeypatch.setattr(scale_invariant, "_QUERY_BLOCK", 7)
    torch.testing.assert_close(scale_invariant_attention(q, k, v), whole, rtol=1e-13, atol=1e-14)


def test_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda q, k, v: scale_invariant_attention(q, k, v, 3.0), (q, k, v))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_are_computed_in_float32_and_returned_in_their_dtype(dtype):
    q, k, v = (torch.randn(2, 50, 8).to(dtype) for _ in range(3))
    out = scale_invariant_attention(q, k, v)
    reference = scale_invariant_attention(q.float(), k.float(), v.float())
    assert out.dtype == dtype and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), reference, rtol=2e-2, atol=2e-2)


def test_bad_arguments_name_themselves():
    q = torch.randn(1, 4, 8)
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        scale_invariant_attention(q, q, q, tau=0.0)
    with pytest.raises(ValueError, match="alpha and beta"):
        scale_invariant_coefficients(torch.zeros(1), alpha=3.0, beta=1.0)  # beta < alpha ln alpha
    with pytest.raises(ValueError, match="L_q <= L_k"):
        scale_invariant_attention(torch.randn(1, 5, 8), q, q)
    with pytest.raises(ValueError, match="may only hold 'tau'"):
        CausalSelfAttention(16, 2, "scale-invariant", train_len=8, scaling_params={"floor_scale": 8})
    with pytest.raises(ValueError, match="tau must be"):
        CausalSelfAttention(16, 2, "scale-invariant", train_len=8, scaling_params={"tau": -1.0})


def test_the_layer_runs_it_with_its_tau_and_learns_nothing_extra():
    torch.manual_seed(0)
    layer = CausalSelfAttention(16, 2, "scale-invariant", train_len=8, scaling_params={"tau": 4.0})
    assert {name for name, _ in layer.named_parameters()} == {"qkv.weight", "out.weight"}
    x = torch.randn(3, 11, 16)
    q, k, v = layer._split_heads(x, None)
    expected = layer.out(scale_invariant_attention(q, k, v, 4.0).transpose(1, 2).reshape(x.shape))
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.attention_weights(x).sum(-1), torch.ones(3, 2, 11))


def test_a_tiny_model_with_it_trains_and_has_no_learned_scale():
    config = ModelConfig(vocab_size=12, d_model=16, n_layers=2, n_heads=2, train_len=8,
                         attention="scale-invariant", pe="rope")
    torch.manual_seed(0)
    model = TinyTransformer(config)
    tokens = torch.randint(0, 12, (4, 40))  # 5 x the training length
    loss = F.cross_entropy(model(tokens).flatten(0, 1), tokens.roll(-1, 1).flatten())
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="no learned scale"):
        model.length_scales()
