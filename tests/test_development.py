"""Settings chosen on development data: the rule of reported.yaml picks the best setting whose interval
over seeds lies above 50%, or none; and the development prompts are disjoint from the held-out ones."""

import pandas as pd
import pytest

from repro.evaluation import development, reported
from repro.runs.notebooks import notebook_parameters, resolve_notebook
from repro.runs.sweep import load_sweep
from repro.studies import base


def results(rates: dict[tuple[float, float], list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"dpo_learning_rate": lr, "dpo_epochs": ep, "seed": s, "win_rate": r}
                         for (lr, ep), values in rates.items() for s, r in enumerate(values)])


KEYS = ["dpo_learning_rate", "dpo_epochs"]


def test_the_rule_takes_the_best_mean_among_settings_whose_interval_clears_half():
    table = development.settings_table(results({
        (1e-4, 2.0): [0.55, 0.56, 0.54],  # clears 50%, mean 55%
        (3e-4, 2.0): [0.62, 0.61, 0.63],  # clears 50%, mean 62%: the choice
        (1e-3, 2.0): [0.90, 0.20, 0.95],  # the highest mean, but its interval does not clear 50%
    }), KEYS)
    assert list(table.seeds) == [3, 3, 3] and table.loc[2, "low"] < 0.5 < table.loc[2, "win_rate"]
    assert development.choose(table, KEYS) == {"dpo_learning_rate": 3e-4, "dpo_epochs": 2.0}


def test_no_setting_is_chosen_when_none_beats_its_start():
    table = development.settings_table(results({(1e-4, 2.0): [0.50, 0.49, 0.51], (3e-4, 2.0): [0.7]}), KEYS)
    assert development.choose(table, KEYS) is None  # one seed gives no interval to clear


def test_defaults_that_differ_from_the_choice_are_named():
    chosen = {"dpo_learning_rate": 3e-4, "dpo_epochs": 2.0}
    assert development.defaults_agree(chosen, {"dpo_learning_rate": 3e-4, "dpo_epochs": 2.0}) == {}
    assert development.defaults_agree(chosen, {"dpo_learning_rate": 9e-5, "dpo_epochs": 2.0}) == {
        "dpo_learning_rate": (3e-4, 9e-5)}
    assert development.defaults_agree(None, {}) == {}
    with pytest.raises(development.DevelopmentError, match="no column"):
        development.settings_table(pd.DataFrame({"seed": [0]}), KEYS)


def test_each_development_entry_names_a_sweep_a_control_and_parameters_that_exist():
    from repro.evaluation import controls

    ids = {c.id for c in controls.controls() if c.kind == "positive"}
    for e in reported.development_entries():
        sweep = load_sweep(e["sweep"])
        assert e["control"] in ids and set(e["choose"]) <= set(sweep.columns)
        defaults = notebook_parameters(resolve_notebook(e["defaults_of"]))
        assert set(e["choose"]) <= set(defaults)
    with pytest.raises(development.DevelopmentError):
        development.entry("nope")


def test_development_tasks_are_their_own_stream_and_leave_out_what_they_are_told():
    held = base.held_out_tasks(0, 10, difficulty=(1, 2))
    dev = base.held_out_tasks(0, 10, difficulty=(1, 2), split="dev")
    assert {t.uid for t in dev} != {t.uid for t in held} and len(dev) == len(held)
    clean = base.held_out_tasks(0, 10, difficulty=(1, 2), split="dev", exclude={t.uid for t in held})
    assert not {t.uid for t in clean} & {t.uid for t in held} and len(clean) == len(held)
    with pytest.raises(ValueError, match="split"):
        base.held_out_tasks(0, 10, split="test")
