"""The studies' specs are built by the library from a notebook's parameters, and the trainers' settings
travel as one object from the spec to trl's config."""

import pytest

from repro.evaluation import development
from repro.generation import DEFAULT_ENGINE
from repro.runs.notebooks import notebook_parameters, resolve_notebook
from repro.studies import base
from repro.studies.common import preference_key, settings_key
from repro.studies.eva import stages as eva
from repro.studies.eva import study as eva_study
from repro.studies.rlaif import stages as rl
from repro.studies.rlaif import study as rlaif_study
from repro.studies.self_rewarding import study as sr_study
from repro.training.preference import PreferenceSpec, preference_config
from repro.training.sft import SFTSpec


def defaults(notebook: str) -> dict:
    """A notebook's parameters as a run with no overrides has them."""
    return {name: p.default for name, p in notebook_parameters(resolve_notebook(notebook)).items()}


def test_every_notebook_spec_is_built_from_its_parameters():
    world = defaults("00_world")
    assert base.BaseSpec.from_parameters(world) == base.BaseSpec(
        world_seed=world["world_seed"], corpus_docs=world["corpus_docs"], difficulty=tuple(world["difficulty"]),
        model_size=world["model_size"], seed=world["seed"], epochs=world["epochs"],
        learning_rate=world["learning_rate"], batch_size=world["batch_size"])
    assert base.SampleSpec.from_parameters(world).generation.n == world["samples_per_task"]
    p = defaults("10_self_rewarding")
    spec = sr_study.StudySpec.from_parameters(p)
    assert spec.base.seed == p["m0_seed"] and spec.iteration.prompts == p["new_prompts"]
    assert spec.evaluation.prompts_per_family == p["eval_prompts_per_family"] and spec.iterations == p["iterations"]
    p = defaults("30_eva")
    spec = eva_study.EvaSpec.from_parameters(p)
    assert spec.reward == p["reward_model"] and spec.sampling.n == p["responses"]
    assert spec.creator.metric == p["informativeness"] and spec.prompts.chunk_size == p["chunk_size"]
    sft_policy = eva_study.sft_policy_spec(p)
    assert sft_policy.evaluation.prompts_per_family == p["sr_eval_prompts_per_family"]
    p = defaults("21_rlaif_rl")
    policy = rlaif_study.PolicySpec.from_parameters(p)
    assert policy.rl_prompts == p["rl_prompts"] and policy.rl.beta == p["rl_beta"] and policy.engine == DEFAULT_ENGINE
    assert rl.WorldSpec.from_parameters(p).sft_posts == p["sft_posts"]
    assert rl.LabellerSpec.from_parameters(defaults("20_rlaif_labeling")).epochs == defaults("20_rlaif_labeling")[
        "pretrain_epochs"]


def test_the_preference_settings_reach_trl_as_one_object(tmp_path):
    p = {**defaults("10_self_rewarding"), "dpo_learning_rate": 3e-4, "dpo_epochs": 5.0, "dpo_beta": 0.2}
    preference = sr_study.StudySpec.from_parameters(p).iteration.preference
    config = preference_config(preference, tmp_path)
    assert type(config).__name__ == "DPOConfig"
    assert (config.learning_rate, config.num_train_epochs, config.beta) == (3e-4, 5.0, 0.2)


@pytest.mark.parametrize("notebook", ["10_self_rewarding", "30_eva"])
def test_notebook_defaults_are_the_libraries_defaults(notebook):
    """A trainer setting has one default: the notebooks' parameter cells declare the library's value."""
    p = defaults(notebook)
    if notebook == "10_self_rewarding":
        spec = sr_study.StudySpec.from_parameters(p)
        # ... except the DPO settings that 11_dev_settings chooses on development data: those are the chapter's
        # own defaults (the library keeps the paper's plain DPO)
        assert development.entry("sr-dpo")["choose"] == ["dpo_learning_rate", "dpo_epochs", "dpo_sft_weight"]
        assert spec.iteration.preference == PreferenceSpec(learning_rate=p["dpo_learning_rate"],
                                                           num_train_epochs=p["dpo_epochs"],
                                                           sft_weight=p["dpo_sft_weight"])
    else:
        spec = eva_study.sft_policy_spec(p)
        assert eva_study.EvaSpec.from_parameters(p).solver == eva_study.EvaSpec().solver
        assert eva_study.EvaSpec.from_parameters(p).reward_training == eva.default_reward_training()
    assert spec.tune == SFTSpec()


def test_stage_keys_keep_their_names():
    """Stage keys name the settings as they always have (``epochs``), so stores made before stay valid."""
    preference = PreferenceSpec()
    assert preference_key(preference) == {"method": preference.method, "beta": preference.beta,
                                          "learning_rate": preference.learning_rate,
                                          "epochs": preference.num_train_epochs, "batch_size": preference.batch_size}
    sft = SFTSpec()
    assert settings_key(sft, ("learning_rate", "num_train_epochs", "batch_size", "seed")) == {
        "learning_rate": sft.learning_rate, "epochs": sft.num_train_epochs, "batch_size": sft.batch_size,
        "seed": sft.seed}


def test_missing_parameters_are_named():
    p = defaults("10_self_rewarding")
    del p["dpo_beta"]
    with pytest.raises(KeyError, match="dpo_beta"):
        sr_study.StudySpec.from_parameters(p)
