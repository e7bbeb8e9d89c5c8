"""Work sized to the statistics: the evaluation noise of a win rate, the seed variance pooled over a sweep's
settings, the predicted half-width and the seeds the rule of reported.yaml asks for."""

import numpy as np
import pandas as pd
import pytest

from repro.evaluation import development, reported, sizing
from repro.evaluation.stats import seed_ci
from repro.runs.notebooks import notebook_parameters, resolve_notebook


def responses(means: np.ndarray, samples: int, rng: np.random.Generator) -> pd.DataFrame:
    """Integer scores 0-5 around each prompt's mean, ``samples`` per prompt, as an evaluation stage writes them."""
    scores = np.clip(np.rint(means[:, None] + rng.normal(0, 1.2, (means.size, samples))), 0, 5)
    return pd.DataFrame({"prompt_id": np.repeat([f"p{i}" for i in range(means.size)], samples),
                         "sample": np.tile(np.arange(samples), means.size), "oracle": scores.ravel()})


def win_rate(a: pd.DataFrame, b: pd.DataFrame) -> float:
    diff = a.groupby("prompt_id").oracle.mean() - b.groupby("prompt_id").oracle.mean()
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


@pytest.mark.parametrize("samples", [2, 4])
def test_evaluation_variance_matches_the_spread_of_fresh_evaluations(samples):
    """The estimate from ONE evaluation per model agrees with the variance over many fresh evaluations of
    the same prompts (the truth); the uncorrected bootstrap would fall short by (k - 1) / k."""
    rng = np.random.default_rng(0)
    mean_a, mean_b = rng.uniform(1, 4, 300), rng.uniform(1, 4, 300)
    truth = np.var([win_rate(responses(mean_a, samples, rng), responses(mean_b, samples, rng))
                    for _ in range(400)], ddof=1)
    estimates = [sizing.evaluation_variance(responses(mean_a, samples, rng), responses(mean_b, samples, rng),
                                            resamples=400, seed=s) for s in range(8)]
    assert np.mean(estimates) == pytest.approx(truth, rel=0.15)
    assert np.mean(estimates) * (samples - 1) / samples < truth * 0.88  # the correction is what gets it there


def test_evaluation_variance_keeps_only_shared_prompts_and_ragged_counts():
    a = pd.DataFrame({"prompt_id": ["x", "x", "y", "y", "y", "y", "z", "z"], "oracle": [1, 3, 2, 2, 4, 4, 5, 0]})
    b = pd.DataFrame({"prompt_id": ["x", "x", "y", "y", "w", "w"], "oracle": [2, 2, 3, 3, 1, 1]})
    value = sizing.evaluation_variance(a, b, resamples=200)
    assert value > 0
    same = pd.DataFrame({"prompt_id": ["x", "x", "y", "y"], "oracle": [2.0, 2.0, 3.0, 3.0]})
    assert sizing.evaluation_variance(same, same) == 0  # nothing to draw differently
    with pytest.raises(sizing.SizingError, match="share no"):
        sizing.evaluation_variance(a, b.assign(prompt_id="q"))
    with pytest.raises(sizing.SizingError, match="several samples"):
        sizing.evaluation_variance(a.drop_duplicates("prompt_id"), b.drop_duplicates("prompt_id"))


def sweep(values: dict[float, list[float]], noise: float = 1e-4) -> pd.DataFrame:
    return pd.DataFrame([{"lr": lr, "seed": s, "win_rate": v, "eval_var": noise}
                         for lr, vs in values.items() for s, v in enumerate(vs)])


def test_components_pool_the_seed_variance_over_settings_by_their_degrees_of_freedom():
    results = sweep({1e-4: [0.50, 0.52, 0.54], 3e-4: [0.60, 0.64], 1e-3: [0.7]})
    parts = sizing.components(results, ["lr"], "win_rate", "eval_var")
    expected = (2 * np.var([0.50, 0.52, 0.54], ddof=1) + 1 * np.var([0.60, 0.64], ddof=1)) / 3
    assert (parts.df, parts.settings) == (3, 2)  # the one-seed setting adds nothing
    assert parts.seed_var == pytest.approx(expected) and parts.eval_var == pytest.approx(1e-4)
    assert parts.train_var == pytest.approx(expected - 1e-4)
    assert parts.eval_share == pytest.approx(1e-4 / expected)
    with pytest.raises(sizing.SizingError, match="two seeds"):
        sizing.components(sweep({1e-4: [0.5], 3e-4: [0.6]}), ["lr"], "win_rate", "eval_var")
    with pytest.raises(sizing.SizingError, match="no column eval_var"):
        sizing.components(results.drop(columns="eval_var"), ["lr"], "win_rate", "eval_var")


def test_the_predicted_half_width_is_the_t_interval_of_seed_ci_and_shrinks_with_evaluation():
    values = [0.48, 0.55, 0.51, 0.53]
    parts = sizing.components(sweep({1e-4: values}, noise=0.0), ["lr"], "win_rate", "eval_var")
    est = seed_ci(values)
    assert parts.half_width(4) == pytest.approx(est.high - est.value)
    noisy = sizing.Components(seed_var=4e-4, df=24, eval_var=3e-4, settings=12)
    assert noisy.half_width(3, 2.0) < noisy.half_width(3) < noisy.half_width(3, 0.5)
    assert noisy.half_width(3, 1e9) == pytest.approx(sizing.Components(1e-4, 24, 0.0, 12).half_width(3), rel=1e-6)
    # evaluation noise measured above the seed variance (chance) explains all of it, never more
    assert sizing.Components(1e-4, 24, 5e-4, 12).half_width(3) == pytest.approx(
        sizing.Components(1e-4, 24, 1e-4, 12).half_width(3))
    with pytest.raises(sizing.SizingError):
        noisy.half_width(1)
    with pytest.raises(sizing.SizingError):
        noisy.half_width(3, 0)


def test_the_rule_asks_for_the_fewest_seeds_that_reach_the_target():
    parts = sizing.Components(seed_var=0.0244 ** 2, df=24, eval_var=0.012 ** 2, settings=12)
    needed = sizing.seeds_needed(parts, 0.05)
    assert parts.half_width(needed) <= 0.05 < parts.half_width(needed - 1)
    assert sizing.seeds_needed(parts, 1e-4) is None
    table = sizing.designs(parts, target=0.05)
    assert set(table.scale) == set(sizing.SCALES) and set(table.seeds) == set(sizing.SEED_RANGE)
    assert table[(table.scale == 1.0)].query("meets").seeds.min() == needed
    with pytest.raises(sizing.SizingError):
        sizing.seeds_needed(parts, 0)


def test_a_plan_agrees_only_with_exactly_the_seeds_the_rule_asks_for():
    results = sweep({1e-4: [0.50, 0.53, 0.51], 3e-4: [0.60, 0.57, 0.62]})
    rule = {"metric": "win_rate", "noise": "eval_var", "half_width": 0.05}
    plans = {s: sizing.plan(results, ["lr"], rule, s) for s in (2, 3, 6)}
    needed = plans[3].needed
    assert all(p.needed == needed for p in plans.values())
    assert [s for s, p in plans.items() if p.agrees] == ([needed] if needed in plans else [])
    assert plans[3].current_half_width == pytest.approx(plans[3].parts.half_width(3))


def test_each_sizing_entry_names_a_development_sweep_and_a_seed_parameter_of_its_chapter():
    entries = reported.sizing_entries()
    assert entries, "reported.yaml sizes at least the self-rewarding chapter"
    for e in entries:
        dev = development.entry(e["development"])
        parameters = notebook_parameters(resolve_notebook(e["applies_to"]))
        assert e["parameter"] in parameters and isinstance(parameters[e["parameter"]].default, list)
        assert 0 < e["half_width"] < 0.5 and e["metric"] == dev["metric"]
    with pytest.raises(sizing.SizingError):
        sizing.entry("nope")
