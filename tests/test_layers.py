"""``CausalSelfAttention`` (every kind of :data:`ATTENTION_KINDS`) and ``RotaryEmbedding``."""

import math

import pytest
import torch

from ssmax_lite.lab.layers import ATTENTION_KINDS, CausalSelfAttention
from ssmax_lite.lab.rope import RotaryEmbedding
from ssmax_lite.lab.rope import rotation_tables

D_MODEL, N_HEADS, LENGTH = 16, 4, 12


def make_module(kind, seed=0, train_len=LENGTH, **kwargs):
    torch.manual_seed(seed)
    module = CausalSelfAttention(D_MODEL, N_HEADS, attention=kind, train_len=train_len, **kwargs)
    with torch.no_grad():  # move the per-head tensors away from their start so each head differs
        for name in ("s", "bias", "c"):
            value = getattr(module, name, None)
            if value is not None:
                value.add_(torch.linspace(-0.05, 0.1, N_HEADS))
    return module.double()


def make_input(batch=2, length=LENGTH, seed=1):
    return torch.randn(batch, length, D_MODEL, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed))


def output_from_weights(module, x, weights, rope=None):
    """Recompute the module's output from its explicit attention matrix: out(concat_h(A_h V_h))."""
    b, length, d = x.shape
    v = module.qkv(x)[..., 2 * d:].view(b, length, N_HEADS, d // N_HEADS).transpose(1, 2)
    y = (weights @ v).transpose(1, 2).reshape(b, length, d)
    return module.out(y)


# --------------------------------------------------------------------------- the module


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_output_shape(kind):
    x = make_input(batch=3, length=7)
    assert make_module(kind)(x).shape == (3, 7, D_MODEL)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("with_rope", [False, True])
def test_attention_weights_agree_with_the_fused_forward(kind, training, with_rope):
    module = make_module(kind).train(training)
    rope = RotaryEmbedding(D_MODEL // N_HEADS) if with_rope else None
    x = make_input()
    weights = module.attention_weights(x, rope=rope)
    assert weights.shape == (2, N_HEADS, LENGTH, LENGTH)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, N_HEADS, LENGTH, dtype=weights.dtype))
    assert torch.all(weights.triu(diagonal=1) == 0)  # causal: no weight on future keys
    with torch.no_grad():
        fused = module(x, rope=rope)
        recomputed = output_from_weights(module, x, weights.to(x.dtype), rope=rope)
    torch.testing.assert_close(fused, recomputed, rtol=1e-5, atol=1e-6)


def test_ssmax_matches_softmax_at_the_last_training_position():
    softmax_module = make_module("softmax")
    ssmax_module = CausalSelfAttention(D_MODEL, N_HEADS, attention="ssmax", train_len=LENGTH).double()
    ssmax_module.load_state_dict(softmax_module.state_dict(), strict=False)  # same projections
    assert torch.allclose(ssmax_module.s * math.log(LENGTH), torch.ones(N_HEADS, dtype=torch.float64))
    x = make_input()
    with torch.no_grad():
        plain, scaled = softmax_module(x), ssmax_module(x)
    torch.testing.assert_close(scaled[:, -1], plain[:, -1])  # s·log n = 1 at n = train_len
    assert not torch.allclose(scaled[:, 1:-1], plain[:, 1:-1])  # earlier positions: s·log n < 1


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_every_kind_runs_forward_and_backward(kind):
    module = make_module(kind)
    x = make_input().requires_grad_(True)
    module(x).square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_ssmax_fixed_has_no_trainable_s():
    module = CausalSelfAttention(D_MODEL, N_HEADS, attention="ssmax-fixed", train_len=LENGTH)
    assert "s" not in dict(module.named_parameters())
    assert "s" in dict(module.named_buffers())
    assert not module.s.requires_grad
    assert "s" in module.state_dict()  # saved with the model all the same


@pytest.mark.parametrize("kind,names", [("ssmax", ["s"]), ("ssmax-bias", ["s", "bias"]),
                                        ("constant", ["c"])])
def test_gradients_reach_the_learned_per_head_tensors(kind, names):
    module = make_module(kind)
    module(make_input()).square().mean().backward()
    for name in names:
        grad = getattr(module, name).grad
        assert grad is not None and grad.shape == (N_HEADS,)
        assert torch.all(grad != 0), name


def test_default_s_init_is_one_over_log_train_len():
    module = CausalSelfAttention(D_MODEL, N_HEADS, attention="ssmax", train_len=256)
    torch.testing.assert_close(module.s.detach(), torch.full((N_HEADS,), 1 / math.log(256)))
    module = CausalSelfAttention(D_MODEL, N_HEADS, attention="ssmax", s_init=0.43)
    torch.testing.assert_close(module.s.detach(), torch.full((N_HEADS,), 0.43))


# --------------------------------------------------------------------------- RoPE


@pytest.mark.parametrize("theta", [10_000.0, 500_000.0])
def test_rope_scores_depend_only_on_the_offset(theta):
    rope = RotaryEmbedding(8, theta=theta)
    gen = torch.Generator().manual_seed(3)
    q, k = torch.randn(8, dtype=torch.float64, generator=gen), torch.randn(8, dtype=torch.float64, generator=gen)

    def score(q_pos, k_pos):
        q_rot = rope(q.view(1, 8), offset=q_pos)
        k_rot = rope(k.view(1, 8), offset=k_pos)
        return float(q_rot @ k_rot.T)

    for offset in (0, 1, 5, 17):
        scores = [score(start + offset, start) for start in (0, 3, 40, 1000)]
        assert max(scores) - min(scores) < 1e-9, (offset, scores)
    assert abs(score(5, 0) - score(0, 0)) > 1e-3  # and the offset does matter


def test_rope_rotation_keeps_the_norm_and_position_zero_is_identity():
    rope = RotaryEmbedding(6)
    x = torch.randn(2, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    rotated = rope(x)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rotated[:, 0], x[:, 0])


def test_rope_offset_matches_slicing_a_longer_sequence():
    rope = RotaryEmbedding(4)
    x = torch.randn(1, 10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(rope(x)[:, 6:], rope(x[:, 6:], offset=6))


def test_rope_theta_changes_the_output_and_can_be_changed_later():
    x = torch.randn(1, 6, 8, generator=torch.Generator().manual_seed(6))
    rope = RotaryEmbedding(8, theta=10_000.0)
    before = rope(x)
    assert not torch.allclose(before, RotaryEmbedding(8, theta=500_000.0)(x))
    rope.theta = 500_000.0  # evaluation with a raised base, as in the paper's long-context tests
    torch.testing.assert_close(rope(x), RotaryEmbedding(8, theta=500_000.0)(x))
    assert not torch.allclose(rope(x), before)


def test_rope_tables_are_built_once_per_theta_length_device_and_dtype():
    rotation_tables.cache_clear()
    rope = RotaryEmbedding(8)
    x = torch.randn(2, 5, 8)
    rope(x)
    assert rotation_tables.cache_info()["misses"] == 1
    rope(x)
    first = rotation_tables(8, rope.theta, 0, 5, x.device, x.dtype)
    assert rotation_tables.cache_info()["misses"] == 1  # reused, not rebuilt
    rope.theta = 500_000.0  # a new θ gets its own tables
    rotation_tables(8, rope.theta, 0, 5, x.device, x.dtype)
    assert rotation_tables.cache_info()["misses"] == 2
    angles = rope.angles(torch.arange(5.0))
    torch.testing.assert_close(rotation_tables(8, rope.theta, 0, 5, x.device, x.dtype)[0], angles.cos())
    assert first[0].shape == (5, 4)


def test_a_cached_table_written_in_place_leaves_the_cache_as_it_was():
    rotation_tables.cache_clear()
    cos, _ = rotation_tables(8, 10_000.0, 0, 5, torch.device("cpu"), torch.float32)
    expected = cos.clone()
    cos.zero_()  # a caller's in-place write changes its own copy only
    again, _ = rotation_tables(8, 10_000.0, 0, 5, torch.device("cpu"), torch.float32)
    assert rotation_tables.cache_info()["hits"] == 1
    torch.testing.assert_close(again, expected)


def test_the_constant_cache_is_bounded_by_memory():
    from ssmax_lite.lab._constants import cached_constant

    @cached_constant(max_bytes=4 * 1000)  # room for one table of 1000 float32 numbers
    def ramp(length):
        return torch.arange(length, dtype=torch.float32)

    ramp(1000), ramp(1000)
    assert ramp.cache_info() == dict(hits=1, misses=1, bytes=4000, entries=1)
    ramp(500)  # does not fit beside the first: the least recently used goes
    assert ramp.cache_info()["entries"] == 1 and ramp.cache_info()["bytes"] == 2000
    ramp(10_000)  # larger than the bound: returned, not kept
    assert ramp.cache_info()["bytes"] == 2000
    torch.testing.assert_close(ramp(10_000), torch.arange(10_000, dtype=torch.float32))


def test_the_matched_constant_steps_as_far_as_ssmax_at_the_training_length():
    """One AdamW step moves c'·ln L ("constant-matched") and s·ln L ("ssmax") equally at n = L, from the same
    start (softmax at n = L); the plain "constant" c moves about ln L times less. Only growth with n differs."""
    import math

    length = 64
    moved = {}
    for kind in ("ssmax", "constant-matched", "constant"):
        torch.manual_seed(0)
        layer = CausalSelfAttention(16, 2, attention=kind, train_len=length)
        start = layer.query_multiplier(1, length).flatten().detach().clone()
        torch.testing.assert_close(start, torch.ones(2))  # every kind starts as softmax at n = L
        learned = [p for name, p in layer.named_parameters() if name in ("s", "c")]
        optimizer = torch.optim.AdamW(learned, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.0)
        layer.query_multiplier(1, length).sum().backward()  # the same upward push on every kind
        optimizer.step()
        moved[kind] = (layer.query_multiplier(1, length).flatten() - start).detach()
    torch.testing.assert_close(moved["constant-matched"], moved["ssmax"])
    torch.testing.assert_close(moved["ssmax"], moved["constant"] * math.log(length))
    # the matched constant does not grow with n; SSMax does
    matched = CausalSelfAttention(16, 2, attention="constant-matched", train_len=length)
    assert torch.equal(matched.query_multiplier(1, 32 * length), matched.query_multiplier(1, length))
