"""Group advantages: hand-computed values for every scale, and the no-signal cases."""

from __future__ import annotations

import math
import statistics

import pytest

from wideseek_rl.advantages import group_advantages


def test_group_scale_by_hand():
    # Group "a": rewards 1, 0, 0, 1 -> mean 0.5, sample std sqrt(1/3).
    adv = group_advantages([1.0, 0.0, 0.0, 1.0], ["a"] * 4, eps=0.0)
    s = math.sqrt(1 / 3)
    assert adv.values == pytest.approx((0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s))
    assert (adv.groups, adv.groups_with_signal) == (1, 1)


def test_eps_is_added_to_the_std():
    adv = group_advantages([2.0, 0.0], [0, 0], eps=0.5)
    # mean 1, sample std sqrt(2)
    assert adv.values == pytest.approx((1 / (math.sqrt(2) + 0.5), -1 / (math.sqrt(2) + 0.5)))


def test_batch_and_none_scales():
    scores = [1.0, 0.0, 3.0, 1.0, 5.0, 5.0]
    groups = ["x", "x", "y", "y", "z", "z"]
    batch_std = statistics.stdev(scores)
    adv = group_advantages(scores, groups, scale="batch", eps=0.0)
    assert adv.values == pytest.approx(
        (0.5 / batch_std, -0.5 / batch_std, 1 / batch_std, -1 / batch_std, 0.0, 0.0))
    plain = group_advantages(scores, groups, scale="none")
    assert plain.values == (0.5, -0.5, 1.0, -1.0, 0.0, 0.0)
    assert (plain.groups, plain.groups_with_signal) == (3, 2)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_singletons_and_equal_groups_have_zero_advantage(scale):
    adv = group_advantages([0.7, 0.2, 0.2, 0.2, 0.9, 0.1], ["solo", "eq", "eq", "eq", "ok", "ok"],
                           scale=scale)
    assert adv.values[:4] == (0.0, 0.0, 0.0, 0.0)
    assert adv.values[4] > 0 > adv.values[5]
    assert (adv.groups, adv.groups_with_signal) == (3, 1)


def test_order_of_episodes_does_not_matter():
    a = group_advantages([0.1, 0.9, 0.4, 0.4, 0.0], [1, 2, 1, 2, 1])
    b = group_advantages([0.0, 0.4, 0.4, 0.9, 0.1], [1, 2, 1, 2, 1])
    assert a.values[0] == pytest.approx(b.values[4]) and a.values[1] == pytest.approx(b.values[3])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="group ids"):
        group_advantages([1.0], [0, 1])
    with pytest.raises(ValueError, match="finite"):
        group_advantages([float("nan"), 1.0], [0, 0])
    with pytest.raises(ValueError, match="scale"):
        group_advantages([1.0], [0], scale="std")  # type: ignore[arg-type]
