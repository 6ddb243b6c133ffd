"""The verdict rule of ssmax_lite.lab.verdicts, case by case."""

import math

import numpy as np
import pytest

from ssmax_lite.lab.verdicts import VERDICTS, paired_verdict, t_quantile

LEARNED = [1.0] * 5


def verdict(method, baseline, **kwargs):
    at_l = kwargs.pop("at_l", (LEARNED, LEARNED))
    return paired_verdict(method, baseline, method_at_l=at_l[0], baseline_at_l=at_l[1], chance=0.125, **kwargs)


def test_a_clear_win_on_every_seed_is_reproduced():
    v = verdict([1.0, 1.0, 0.99, 1.0, 1.0], [0.5, 0.6, 0.55, 0.45, 0.62])
    assert v.label == "reproduced" and v.seeds_used == 5 and v.interval[0] > 0
    assert math.isclose(v.difference, np.mean([0.5, 0.4, 0.44, 0.55, 0.38]))


def test_a_clear_loss_is_refuted():
    assert verdict([0.5, 0.6, 0.55, 0.45, 0.62], [1.0, 1.0, 0.99, 1.0, 1.0]).label == "refuted"


def test_mixed_signs_are_inconclusive():
    v = verdict([0.8, 0.6, 0.7, 0.5, 0.9], [0.7, 0.7, 0.6, 0.6, 0.8])
    assert v.label == "inconclusive" and v.interval[0] < 0 < v.interval[1]


def test_both_at_the_ceiling_is_not_testable_even_with_a_consistent_difference():
    v = verdict([1.0] * 5, [0.995] * 5)
    assert v.label == "not testable here" and "ceiling" in v.reason


def test_both_near_chance_is_not_testable():
    assert verdict([0.16, 0.15, 0.14], [0.12, 0.13, 0.11], at_l=([1.0] * 3, [1.0] * 3)).label == "not testable here"


def test_seeds_that_did_not_learn_are_left_out_and_counted():
    v = verdict([1.0, 1.0, 1.0, 0.2, 1.0], [0.5, 0.6, 0.55, 0.9, 0.62],
                at_l=([1.0, 1.0, 1.0, 0.5, 1.0], LEARNED))
    assert v.seeds_used == 4 and v.seeds_excluded == 1 and v.label == "reproduced"
    none_learned = verdict([1.0] * 3, [0.5] * 3, at_l=([0.5] * 3, [1.0] * 3))
    assert none_learned.label == "inconclusive" and none_learned.seeds_excluded == 3


def test_one_usable_seed_is_inconclusive():
    assert verdict([1.0, 1.0], [0.5, 0.5], at_l=([1.0, 0.3], [1.0, 1.0])).label == "inconclusive"


def test_a_loss_is_better_when_lower():
    v = paired_verdict([0.01, 0.02, 0.015], [2.0, 2.5, 1.8], method_at_l=[1.0] * 3, baseline_at_l=[1.0] * 3,
                       chance=math.log(8), higher_is_better=False)
    assert v.label == "reproduced" and v.difference > 0


def test_the_interval_is_students_t():
    differences = np.array([0.1, 0.3, 0.2, 0.4])
    v = verdict(0.5 + differences, [0.5] * 4, at_l=([1.0] * 4, [1.0] * 4))
    half = t_quantile(3) * differences.std(ddof=1) / 2
    assert np.allclose(v.interval, (differences.mean() - half, differences.mean() + half))
    assert t_quantile(1) == 12.706 and t_quantile(4) == 2.776 and t_quantile(100) == 1.960


def test_every_label_is_one_of_the_four():
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = verdict(rng.uniform(0, 1, 5), rng.uniform(0, 1, 5), at_l=(rng.uniform(0.9, 1, 5), LEARNED))
        assert v.label in VERDICTS


@pytest.mark.parametrize("bad", [dict(method=[1.0, 1.0], baseline=[0.5]), dict(method=[float("nan")], baseline=[0.5])])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError, match="method, baseline"):
        paired_verdict(**bad, method_at_l=[1.0] * len(bad["method"]), baseline_at_l=[1.0] * len(bad["baseline"]),
                       chance=0.1)
    with pytest.raises(ValueError, match="df must be"):
        t_quantile(0)
