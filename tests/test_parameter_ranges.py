"""Parameter values outside what a notebook accepts are refused before a kernel starts: one line naming
the notebook, the parameter and where the value came from, exit code 2, and nothing in the run store
touched."""

import pytest

from repro.cli import main
from repro.models import SIZE_PRESETS
from repro.runs.notebooks import (
    ParameterError,
    list_notebooks,
    load_profile,
    notebook_parameters,
    resolve_notebook,
    resolve_parameters,
)
from repro.runs.ranges import RULES, SIZES, Between, Each, OneOf, check_range

# List parameters whose items the studies parse and check themselves (technique codes, sweep names).
FREE_LISTS = {"techniques", "self_consistency", "size_techniques", "technique_candidates", "sweeps"}


def test_every_numeric_and_list_parameter_of_every_notebook_has_a_range():
    missing = sorted({f"{nb.stem}:{name}" for nb in list_notebooks()
                      for name, p in notebook_parameters(nb).items()
                      if p.type in ("int", "float", "list") and name not in RULES and name not in FREE_LISTS})
    assert not missing, f"add a rule to repro.runs.ranges.RULES for {missing}"


def test_every_default_lies_in_its_range_and_sizes_are_the_presets():
    assert SIZES == tuple(SIZE_PRESETS)
    for nb in list_notebooks():
        for name, p in notebook_parameters(nb).items():
            assert check_range(name, p.default) is None, f"{nb.stem}: default of {name} {check_range(name, p.default)}"


def test_every_shipped_profile_and_sweep_lies_in_range(shipped_profiles):
    from repro import paths
    from repro.runs.sweep import load_sweep

    for profile in shipped_profiles.values():
        for nb in list_notebooks():
            resolve_parameters(nb, profile, {})
    for sweep in sorted((paths.project_root() / "configs" / "sweeps").glob("*.yaml")):
        load_sweep(sweep)  # resolves every run's parameters, raising ParameterError on any out of range


@pytest.mark.parametrize("rule,good,bad", [
    (Between(1, integer=True), [1, 7, 10**9], [0, -3, 1.5, True, "2", None]),
    (Between(0, 1), [0, 0.5, 1, 1.0], [-0.01, 1.01, float("nan"), float("inf")]),
    (Between(0, 1, low_open=True), [1e-9, 1], [0, 0.0, 2]),
    (Between(0, 1, low_open=True, high_open=True), [0.5], [0, 1]),
    (OneOf(("a", "b")), ["a", "b"], ["c", "", None, 1]),
    (Each(Between(1, 5, integer=True), min_items=2, max_items=2), [[1, 2], [5, 5]], [[1], [1, 2, 3], [0, 2], 3, "12"]),
])
def test_rules_accept_and_refuse(rule, good, bad):
    assert all(rule.check(v) is None for v in good)
    for value in bad:
        problem = rule.check(value)
        assert problem is not None and "must be" in problem, value


# (notebook, parameter, value as typed on the command line, what the message must say)
BAD_VALUES = [
    ("00_world", "corpus_docs", "-5", "must be >= 1, got -5"),
    ("00_world", "batch_size", "0", "must be >= 1, got 0"),
    ("00_world", "top_p", "1.5", "must be in (0, 1], got 1.5"),
    ("00_world", "top_p", "0", "must be in (0, 1], got 0.0"),
    ("00_world", "temperature", "-0.1", "must be >= 0, got -0.1"),
    ("00_world", "learning_rate", "0", "must be > 0, got 0.0"),
    ("00_world", "epochs", "-1", "must be > 0, got -1.0"),
    ("00_world", "seed", "-1", "must be in [0, 4294967295], got -1"),
    ("00_world", "model_size", "XXL", "must be one of 'XXS', 'XS', 'S', 'M', 'L', got 'XXL'"),
    ("00_world", "difficulty", "[1, 9]", "item 1 must be in [1, 5], got 9"),
    ("00_world", "difficulty", "[2]", "must be a list of 2 item(s)"),
    ("00_world", "max_new_tokens", "0", "must be >= 1, got 0"),
    ("10_self_rewarding", "iterations", "0", "must be >= 1, got 0"),
    ("10_self_rewarding", "candidates", "-2", "must be >= 1, got -2"),
    ("10_self_rewarding", "judge_samples", "0", "must be >= 1, got 0"),
    ("10_self_rewarding", "prompt_top_p", "2", "must be in (0, 1], got 2.0"),
    ("10_self_rewarding", "rouge_threshold", "1.2", "must be in [0, 1], got 1.2"),
    ("10_self_rewarding", "seeds", "[]", "must be a list of at least 1 item(s)"),
    ("10_self_rewarding", "seeds", "[0, -1]", "item 1 must be in [0, 4294967295], got -1"),
    ("10_self_rewarding", "method", "ppo", "must be one of 'dpo', 'sppo', 'simpo', 'orpo', got 'ppo'"),
    ("10_self_rewarding", "generation_backend", "tgi", "must be one of 'transformers', 'vllm'"),
    ("10_self_rewarding", "dpo_beta", "0", "must be > 0, got 0.0"),
    ("20_rlaif_labeling", "eval_fraction", "1", "must be in (0, 1), got 1.0"),
    ("20_rlaif_labeling", "target_agreement", "-0.5", "must be in [0, 1], got -0.5"),
    ("20_rlaif_labeling", "labeller_sizes", "[S, XL]", "item 1 must be one of"),
    ("21_rlaif_rl", "rl_generations", "1", "must be >= 2, got 1"),
    ("21_rlaif_rl", "rl_temperature", "0", "must be > 0, got 0.0"),
    ("21_rlaif_rl", "rm_data_sizes", "[16, 0]", "item 1 must be >= 1, got 0"),
    ("21_rlaif_rl", "rl_beta", "-0.05", "must be >= 0, got -0.05"),
    ("30_eva", "keep_fraction", "0", "must be in (0, 1], got 0.0"),
    ("30_eva", "evolved_share", "1.5", "must be in [0, 1], got 1.5"),
    ("30_eva", "chunks", "1", "must be >= 2, got 1"),
    ("30_eva", "responses", "1", "must be >= 2, got 1"),
    ("30_eva", "hard_difficulty", "6", "must be in [1, 5], got 6"),
    ("30_eva", "iterations", "0", "must be >= 1, got 0"),
    ("31_eva_ablations", "jobs", "0", "must be >= 1, got 0"),
    ("31_eva_ablations", "sweep_seeds", "[-3]", "item 0 must be in [0, 4294967295], got -3"),
]


@pytest.mark.parametrize("notebook,name,value,message", BAD_VALUES)
def test_out_of_range_values_exit_2_naming_notebook_and_parameter(notebook, name, value, message, capsys, tmp_path):
    store = tmp_path / "store"
    (store / "stages" / "keep").mkdir(parents=True)
    (store / "stages" / "keep" / "result.json").write_text("{}")
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    assert main(["run", notebook, "-p", f"{name}={value}", "--store", str(store), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"repro: error: {notebook}: parameter {name!r} (-p) ") and message in err, err
    assert "\n" not in err
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before  # nothing written, nothing lost


def test_profile_values_out_of_range_name_the_profile(tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("defaults: {seeds: [0, -4]}\nnotebooks: {}\n")
    with pytest.raises(ParameterError, match=r"10_self_rewarding: parameter 'seeds' \(profile mine\) item 1 must be"):
        resolve_parameters(resolve_notebook("10_self_rewarding"), load_profile(profile), {})
    profile.write_text("notebooks: {00_world: {top_p: 3}}\n")
    with pytest.raises(ParameterError, match=r"00_world: parameter 'top_p' \(profile mine\) must be in \(0, 1\]"):
        resolve_parameters(resolve_notebook("00_world"), load_profile(profile), {})


def test_list_shows_each_parameters_range(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "top_p: float = 0.9  # nucleus sampling threshold (in (0, 1])" in out
