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
