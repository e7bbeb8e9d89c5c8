"""The self-rewarding stages end to end at the smallest size (an XS model on a few hundred documents):
they run, cache, chain through the run store, and count what they produce."""

import pandas as pd
import pytest

from repro import world
from repro.judges.llm_judge import JudgeSpec
from repro.runs import RunStore
from repro.studies import base
from repro.studies.self_rewarding import data as sd
from repro.studies.self_rewarding import stages as sr
from repro.training.preference import PreferenceSpec
from repro.training.sft import SFTSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("store"))
    m0 = base.base_model(store, base.BaseSpec(corpus_docs=300, model_size="XS"), progress=False)
    seed_data = sd.SeedDataSpec(ift_size=24, eft_train_prompts=8, eft_eval_prompts=4)
    ift = sd.ift_records(seed_data)
    tune = SFTSpec(num_train_epochs=1.0)
    eft = sr.eft_stage(store, seed_data, m0, JudgeSpec(max_new_tokens=12), source="oracle",
                       exclude={r["uid"] for r in ift}, progress=False)
    records = ift + sd.eft_records(pd.read_parquet(eft / "eft_train.parquet"))
    m1 = sr.finetune_stage(store, "sr-m1", m0, records, tune, {"eft": eft.key}, upstream=[eft], progress=False)
    spec = sr.IterationSpec(prompts=4, candidates=3, judge_samples=2, max_new_tokens=12, judge_max_new_tokens=12,
                            prompt_max_new_tokens=24,
                            preference=PreferenceSpec(num_train_epochs=1.0))
    seeds = [r["prompt"][0]["content"] for r in ift]
    m2, prompts, aift = sr.self_rewarding_iteration(store, m1, m0, seeds, spec, 1, progress=False)
    return store, m1, m2, prompts, aift, spec, seeds, m0


def test_candidates_and_self_judgments_on_given_prompts(chain, tmp_path):
    """The smoke M0 writes no valid prompt; on world prompts the candidate and judging steps still run."""
    store, m1, _, _, _, spec, _, _ = chain
    tasks = world.sample_tasks(4, seed=99, difficulty=1)

    def write(workdir):
        pd.DataFrame([{"uid": t.uid, "family": t.family, "prompt": t.prompt} for t in tasks]).to_parquet(
            workdir / "prompts.parquet")

    prompts = store.run("given-prompts", {"n": 4}, write)
    aift = sr.aift_stage(store, m1, prompts, spec, 1, progress=False)
    candidates = pd.read_parquet(aift / "candidates.parquet")
    assert len(candidates) == 4 * spec.candidates
    assert candidates.oracle.between(0, 5).all() and set(candidates.prompt) == {t.prompt for t in tasks}
    assert aift.results["parse"]["total"] == 4 * spec.candidates * spec.judge_samples
    nxt = sr.preference_stage(store, m1, aift, spec, 1, progress=False)
    assert nxt.results["pairs"] == aift.results["pairs"]


def test_eft_from_the_oracle_and_m1(chain):
    store, m1, *_ = chain
    assert m1.results["examples"] == 24 + 8 * 3


def test_iteration_produces_prompts_candidates_judgments_and_a_next_model(chain):
    store, m1, m2, prompts, aift, spec, seeds, m0 = chain
    accepted = pd.read_parquet(prompts / "prompts.parquet")
    assert len(accepted) == prompts.results["accepted"] <= spec.prompts
    assert not set(accepted.prompt) & set(seeds)
    candidates = pd.read_parquet(aift / "candidates.parquet")
    assert len(candidates) == len(accepted) * spec.candidates == aift.results["candidates"]
    assert aift.results["parse"]["total"] == len(candidates) * spec.judge_samples
    counts = aift.results
    assert counts["pairs"] + counts["ties"] + counts["unscored"] == counts["prompts"]
    assert m2.results["pairs"] == counts["pairs"] and (m2 / "model" / "config.json").exists()


def test_rerun_reuses_every_stage(chain):
    store, m1, m2, prompts, aift, spec, seeds, m0 = chain
    again, prompts2, aift2 = sr.self_rewarding_iteration(store, m1, m0, seeds, spec, 1, progress=False)
    assert (again.key, prompts2.key, aift2.key) == (m2.key, prompts.key, aift.key)
    assert again.manifest["finished"] == m2.manifest["finished"]


def test_preference_pairs_take_best_and_worst_and_drop_ties():
    frame = pd.DataFrame({
        "prompt_id": ["a"] * 3 + ["b"] * 2 + ["c"] * 2,
        "prompt": ["pa"] * 3 + ["pb"] * 2 + ["pc"] * 2,
        "response": ["a1", "a2", "a3", "b1", "b2", "c1", "c2"],
        "judge": [2.0, 4.5, 1.0, 3.0, 3.0, 4.0, float("nan")],
        "oracle": [2, 5, 1, 3, 3, 4, 0],
    })
    pairs, counts = sr.preference_pairs(frame)
    assert counts == {"prompts": 3, "pairs": 1, "ties": 1, "unscored": 1}
    assert pairs.iloc[0][["chosen", "rejected", "chosen_oracle", "rejected_oracle"]].tolist() == ["a2", "a3", 5, 1]


def test_evaluation_and_reward_modelling_stages(chain):
    store, m1, m2, *_ = chain
    base_spec = base.BaseSpec(corpus_docs=300, model_size="XS")
    corpus = base.corpus_stage(store, base_spec)
    spec = sr.EvalSpec(prompts_per_family=2, samples=2, max_new_tokens=12, judge_samples=1)
    prompts = sr.world_prompts_stage(store, corpus, base_spec, spec)
    e1 = sr.evaluate_stage(store, m1, prompts, spec, progress=False)
    e2 = sr.evaluate_stage(store, m2, prompts, spec, progress=False)
    r1 = pd.read_parquet(e1 / "responses.parquet")
    assert len(r1) == e1.results["responses"] == e1.results["prompts"] * 2
    assert r1.oracle.between(0, 5).all()
    result = sr.head_to_head(r1, pd.read_parquet(e2 / "responses.parquet"))
    assert result.wins + result.ties + result.losses == e1.results["prompts"]
    assert sr.head_to_head(r1, r1).ties == e1.results["prompts"]  # a model ties with itself
    eft = [s for s in store.stages() if s.name == "sr-eft"][0]
    rm = sr.reward_modelling_stage(store, m1, eft, JudgeSpec(samples=1, max_new_tokens=12), progress=False)
    assert rm.results["n_responses"] == 4 * 3 and rm.results["parse"]["total"] == 12
