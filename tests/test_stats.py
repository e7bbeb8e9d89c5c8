import numpy as np
import pytest

from repro.evaluation.stats import bootstrap_ci


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = bootstrap_ci(rng.normal(2.0, 1.0, 30))
    large = bootstrap_ci(rng.normal(2.0, 1.0, 3000))
    assert small.low < small.value < small.high
    assert large.high - large.low < (small.high - small.low) / 5
    assert abs(large.value - 2.0) < 0.1 and large.low < 2.0 < large.high


def test_bootstrap_is_reproducible_and_handles_edge_cases():
    data = [0, 1, 1, 0, 1]
    assert bootstrap_ci(data, seed=3) == bootstrap_ci(data, seed=3)
    assert bootstrap_ci([5.0]).low == bootstrap_ci([5.0]).high == 5.0
    constant = bootstrap_ci([1, 1, 1, 1])
    assert (constant.low, constant.value, constant.high) == (1.0, 1.0, 1.0)
    median = bootstrap_ci([1, 2, 3, 100], statistic=np.median)
    assert median.value == 2.5
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])


def test_seed_interval_is_the_student_t_interval_computed_by_hand():
    from repro.evaluation.stats import seed_ci

    # values 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.484138
    est = seed_ci([1.0, 2.0, 3.0])
    assert est.value == 2.0 and est.n == 3
    assert abs(est.high - 4.484138) < 1e-5 and abs(est.low + 0.484138) < 1e-5
    assert seed_ci([0.5]).low == seed_ci([0.5]).high == 0.5
    assert seed_ci([0.2, float("nan"), 0.2]).n == 2 and seed_ci([0.2, 0.2]).high == 0.2
    assert np.isnan(seed_ci([]).value)
    clipped = seed_ci([0.9, 1.0, 1.0], bounds=(0, 1))
    assert clipped.high == 1.0 and clipped.low == seed_ci([0.9, 1.0, 1.0]).low
