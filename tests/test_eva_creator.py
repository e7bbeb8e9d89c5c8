"""eva's creator: informativeness metrics on hand-made reward matrices, selection, and mixing."""

import numpy as np
import pytest

from repro.studies.eva import stages as eva

REWARDS = np.array([
    [0.0, 0.0, 0.0, 0.0],  # no spread: nothing to learn
    [0.0, 1.0, 0.0, 0.0],  # one response stands out
    [-1.0, 1.0, -1.0, 1.0],  # wide spread
    [0.9, 1.0, 0.9, 1.0],  # narrow spread, high mean
])


def test_each_metric_on_a_hand_made_matrix():
    assert eva.informativeness(REWARDS).tolist() == [0.0, 1.0, 2.0, pytest.approx(0.1)]
    assert eva.informativeness(REWARDS, "advantage").tolist() == pytest.approx([0.0, 0.75, 1.0, 0.05])
    assert eva.informativeness(REWARDS, "std").tolist() == pytest.approx([0.0, np.sqrt(3) / 4, 1.0, 0.05])
    assert eva.informativeness(REWARDS, "low_mean").tolist() == pytest.approx([0.95, 0.7, 0.95, 0.0])
    assert eva.informativeness(REWARDS, "uniform").tolist() == [1.0] * 4
    for metric in eva.INFORMATIVENESS:
        assert (eva.informativeness(REWARDS, metric) >= 0).all()


def test_bad_reward_matrices_and_metrics_are_refused():
    with pytest.raises(ValueError, match="unknown informativeness"):
        eva.informativeness(REWARDS, "entropy")
    for bad in ([], [1.0, 2.0], [[1.0, np.nan]]):
        with pytest.raises(ValueError):
            eva.informativeness(bad)


def test_greedy_takes_the_top_and_sampling_follows_the_weights():
    scores = eva.informativeness(REWARDS)
    assert eva.select(scores, 0.5, how="greedy").tolist() == [2, 1]
    assert eva.select(scores, 0.01, how="greedy").tolist() == [2]  # at least one
    draws = np.array([eva.select([0.0, 1.0, 3.0, 0.0], 0.25, seed=s)[0] for s in range(2000)])
    assert set(draws) <= {1, 2} and abs((draws == 2).mean() - 0.75) < 0.04
    everything = eva.select(scores, 1.0, seed=0)
    assert sorted(everything.tolist()) == [0, 1, 2, 3]  # zero-weight prompts still drawn at the end
    assert sorted(everything[:3].tolist()) == [1, 2, 3]
    uniform = np.array([eva.select([0.0, 0.0, 9.0, 0.0], 0.25, how="uniform", seed=s)[0] for s in range(2000)])
    assert abs((uniform == 2).mean() - 0.25) < 0.04
    assert eva.select(scores, 0.5, seed=7).tolist() == eva.select(scores, 0.5, seed=7).tolist()
    for kwargs in ({"fraction": 0.0}, {"fraction": 1.5}, {"how": "best"}):
        with pytest.raises(ValueError):
            eva.select(scores, **kwargs)
    with pytest.raises(ValueError, match="non-negative"):
        eva.select([-1.0, 1.0])


def test_mixing_keeps_every_evolved_prompt_and_adds_the_old_share():
    evolved, old = [f"new {i}" for i in range(8)], [f"old {i}" for i in range(10)]
    mixed = eva.mix(evolved, old)
    assert mixed[:8] == evolved and len(mixed) == 10 and set(mixed[8:]) <= set(old) and len(set(mixed)) == 10
    assert eva.mix(evolved, old, evolved_share=1.0) == evolved
    assert len(eva.mix(evolved, old[:1], evolved_share=0.5)) == 9  # capped by the old prompts there are
    assert eva.mix(evolved, []) == evolved
    with pytest.raises(ValueError):
        eva.mix(evolved, old, evolved_share=0.0)


def test_equal_rewards_give_zero_informativeness_not_round_off_below_it():
    # Six equal rewards: their mean exceeds their maximum by one rounding step in floating point.
    row = np.full((1, 6), 0.36159505490948474)
    assert (row.max(axis=1) - row.mean(axis=1))[0] < 0  # the round-off this guards against
    for metric in eva.INFORMATIVENESS:
        values = eva.informativeness(np.vstack([row, [[0.0, 1, 2, 3, 4, 5]]]), metric)
        assert (values >= 0).all()
        assert metric in ("uniform", "low_mean") or values[0] == pytest.approx(0, abs=1e-12)
    assert len(eva.select(eva.informativeness(np.vstack([row, row]), "advantage"), 0.5)) == 1
