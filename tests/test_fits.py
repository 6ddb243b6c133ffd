"""The ``"learned-pn"`` attention kind (the paper's Fig. 2) and the curves fitted to its p_n."""

import numpy as np
import pytest
import torch

from ssmax_lite.lab.fits import CURVES, fit_curve, fit_curves, learned_pn
from ssmax_lite.lab.model import ModelConfig, TinyTransformer
from ssmax_lite.lab.train import make_optimizer, preset

N = np.arange(2, 65, dtype=np.float64)


@pytest.mark.parametrize("curve,truth,params", [
    ("log", 0.2 * np.log(N) + 1.0, (0.2, 1.0)),
    ("power", 2.0 * N ** 0.3, (2.0, 0.3)),
    ("linear", 0.01 * N + 0.5, (0.01, 0.5)),
])
def test_each_curve_recovers_its_own_parameters(curve, truth, params):
    fit = fit_curve(N, truth, curve)
    np.testing.assert_allclose(fit.params, params, rtol=1e-9)
    assert fit.r2 == pytest.approx(1.0)
    np.testing.assert_allclose(fit(N), truth, rtol=1e-9)


def test_the_right_curve_fits_best_and_r2_is_the_usual_one():
    rng = np.random.default_rng(0)
    p = 0.15 * np.log(N) + 0.95 + rng.normal(0, 0.02, N.size)
    fits = fit_curves(N, p)
    assert tuple(fits) == CURVES
    assert fits["log"].r2 > fits["linear"].r2 and fits["log"].r2 > fits["power"].r2 - 0.01
    residual = ((p - fits["linear"](N)) ** 2).sum()
    assert fits["linear"].r2 == pytest.approx(1 - residual / ((p - p.mean()) ** 2).sum())
    assert fits["log"].formula().endswith("·ln n + " + f"{fits['log'].params[1]:.3f}")


def test_bad_input_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="curve must be one of"):
        fit_curve(N, N, "cubic")
    with pytest.raises(ValueError, match="same length"):
        fit_curve(N, N[:-1], "log")
    with pytest.raises(ValueError, match="every p > 0"):
        fit_curve(N, -N, "power")
    with pytest.raises(ValueError, match="counts >= 1"):
        fit_curve(N - 5, N, "log")


def _model(attention, n_layers=2, train_len=16, seed=0):
    torch.manual_seed(seed)
    return TinyTransformer(ModelConfig(vocab_size=11, d_model=16, n_layers=n_layers, n_heads=2,
                                       attention=attention, train_len=train_len)).eval()


def test_learned_pn_starts_as_softmax_and_shares_one_pn_between_layers():
    softmax, learned = _model("softmax"), _model("learned-pn")
    tokens = torch.randint(0, 11, (3, 40))  # longer than train_len: counts beyond L use p_L
    torch.testing.assert_close(learned(tokens), softmax(tokens))
    pn = [block.attn.pn for block in learned.blocks]
    assert pn[0] is pn[1] and pn[0].shape == (16,)
    np.testing.assert_array_equal(learned_pn(learned), np.ones(16))
    with pytest.raises(ValueError, match="learned-pn"):
        learned_pn(softmax)


def test_learned_pn_trains_every_pn_and_keeps_the_tie_through_a_state_dict():
    model = _model("learned-pn").train()
    optimizer = make_optimizer(model, preset("quick", train_len=16), "cpu")
    assert sum(p is model.blocks[0].attn.pn for g in optimizer.param_groups for p in g["params"]) == 1
    tokens = torch.randint(0, 11, (4, 16))
    loss = torch.nn.functional.cross_entropy(model(tokens).flatten(0, 1), tokens.roll(-1, 1).flatten())
    loss.backward()
    grad = model.blocks[0].attn.pn.grad
    assert grad is not None and (grad[1:] != 0).all()   # p_1 sees one key, so its softmax is 1 whatever p_1 is
    copy = _model("learned-pn", seed=1)
    copy.load_state_dict(model.state_dict())
    assert copy.blocks[0].attn.pn is copy.blocks[1].attn.pn
    torch.testing.assert_close(copy.blocks[1].attn.pn, model.blocks[0].attn.pn)


def test_learned_pn_multiplier_indexes_pn_by_count_and_clamps_beyond_l():
    from ssmax_lite.lab.scalings import fixed_params, length_multiplier

    pn = np.linspace(1.0, 2.0, 8)
    m = length_multiplier("learned-pn", np.array([1, 2, 8, 9, 100]), train_len=8, pn=pn, s=2.0, bias=0.5)
    np.testing.assert_allclose(m, 2.0 * pn[[0, 1, 7, 7, 7]] + 0.5)
    with pytest.raises(ValueError, match="pn must be a 1-D array of finite numbers"):
        fixed_params("learned-pn", 8, pn=[1.0, float("nan")])


def test_extend_learned_pn_continues_the_table_with_the_fit_and_leaves_the_model_alone():
    from ssmax_lite.lab.fits import Fit, extend_learned_pn

    model = _model("learned-pn", train_len=8)
    with torch.no_grad():
        model.blocks[0].attn.pn.copy_(torch.linspace(1.0, 1.7, 8))
    fit = Fit("log", (0.5, 1.0), 1.0)
    twin = extend_learned_pn(model, fit, 20)
    pn = learned_pn(twin)
    np.testing.assert_allclose(pn[:8], np.linspace(1.0, 1.7, 8), rtol=1e-6)
    np.testing.assert_allclose(pn[8:], 0.5 * np.log(np.arange(9, 21)) + 1.0, rtol=1e-6)
    assert twin.blocks[1].attn.pn is twin.blocks[0].attn.pn
    assert learned_pn(model).size == 8                       # the original is untouched
    with pytest.raises(ValueError, match="up_to must be an int >= L = 8"):
        extend_learned_pn(model, fit, 4)


def test_switching_a_model_to_learned_pn_shares_one_pn_too():
    from ssmax_lite.lab.convert import switch_attention

    model = switch_attention(_model("softmax"), "learned-pn")
    assert model.blocks[0].attn.pn is model.blocks[1].attn.pn
