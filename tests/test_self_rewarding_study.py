"""The study-level tables of the self-rewarding chapter, on hand-made runs whose answers are known."""

import math

import numpy as np
import pandas as pd
import pytest

from repro.evaluation.stats import Estimate, verdict
from repro.runs import RunStore
from repro.studies.self_rewarding import study as study


def responses(scores: dict[str, list[float]], words: int = 3) -> pd.DataFrame:
    """Held-out responses: per prompt id, one row per sampled answer with that oracle score."""
    rows = [{"prompt_id": p, "sample": i, "oracle": s, "words": words, "self_judge": s}
            for p, values in scores.items() for i, s in enumerate(values)]
    return pd.DataFrame(rows)


class FakeRun(study.SeedRun):
    """A SeedRun whose evaluations are given frames instead of stages."""

    def __init__(self, seed, spec, frames):
        super().__init__(seed=seed, spec=spec)
        self.frames = frames
        self.models = dict.fromkeys(frames)

    def responses(self, name):
        return self.frames[name]


SPEC = study.StudySpec(iterations=2, ablations=False)


def test_compare_uses_each_models_mean_score_per_prompt():
    a = responses({"p1": [5, 5], "p2": [3, 3], "p3": [2, 2]})
    b = responses({"p1": [4, 4], "p2": [2, 4], "p3": [5, 3]})
    # per-prompt means: A 5, 3, 2; B 4, 3, 4 -> win, tie, loss
    assert study.compare(a, b) == {"win": 1 / 3, "tie": 1 / 3, "loss": 1 / 3, "win_rate": 0.5, "prompts": 3}
    with pytest.raises(ValueError, match="same prompts"):
        study.compare(a, responses({"p1": [1]}))


def test_head_to_head_pairs_are_the_papers_for_two_iterations():
    pairs = study.head_to_head_pairs(SPEC)
    assert pairs == [("M1", "SFT"), ("M2", "SFT"), ("M3", "SFT"), ("M2", "M1"), ("M3", "M2"), ("M3", "M1")]
    with_ablations = study.head_to_head_pairs(study.StudySpec(iterations=1))
    assert with_ablations[:3] == [("M1", "SFT"), ("M2", "SFT"), ("M2", "M1")]
    assert (study.NO_EFT, "SFT") in with_ablations and (study.TOP_SCORED_SFT, "M1") in with_ablations
    with pytest.raises(ValueError, match="iterations"):
        study.StudySpec(iterations=0)


def test_tables_over_seeds_and_the_verdict_rule():
    good, bad = responses({"p1": [5], "p2": [4]}), responses({"p1": [1], "p2": [4]})
    frames = {"SFT": bad, "M1": bad, "M2": good, "M3": good}
    runs = [FakeRun(seed, SPEC, frames) for seed in (0, 1, 2)]
    table = study.head_to_head_table(runs)
    assert len(table) == 6 * 3
    m2 = table[table.pair == "M2 vs SFT"]
    assert (m2.win == 0.5).all() and (m2.tie == 0.5).all() and (m2.win_rate == 0.75).all()
    summary = study.summarise_over_seeds(table, "pair", ["win_rate"])
    row = summary.set_index("pair").loc["M2 vs SFT"]
    assert row.win_rate == 0.75 and row.win_rate_low == row.win_rate_high == 0.75 and row.seeds == 3
    # the reference: a model equal to it wins nothing and ties everything
    ref = study.reference_win_rates(runs, good)
    assert set(ref[ref.model == "M3"].win_rate) == {0.5} and set(ref[ref.model == "SFT"].win_rate) == {0.25}
    diff = study.per_seed_difference(ref, "win_rate", "M3", "M1")
    assert list(diff) == [0.25, 0.25, 0.25]
    # the rule, on intervals computed by hand
    assert verdict(Estimate(0.6, 0.55, 0.65, 3), 0.5) == "reproduced"
    assert verdict(Estimate(0.6, 0.45, 0.75, 3), 0.5) == "not reproduced at this scale"
    assert verdict(Estimate(0.4, 0.35, 0.45, 3), 0.5) == "opposite"
    assert verdict(Estimate(-3, -4, -2, 3), 0.0, expect="less") == "reproduced"
    assert verdict(Estimate(0.6, 0.6, 0.6, 1), 0.5) == "not testable"
    assert verdict(Estimate(0.52, 0.45, 0.6, 3), 0.5, expect="equal") == "reproduced"
    assert verdict(Estimate(0.7, 0.6, 0.8, 3), 0.5, expect="equal") == "not reproduced at this scale"
    with pytest.raises(ValueError, match="expect"):
        verdict(Estimate(0.7, 0.6, 0.8, 3), 0.5, expect="more")


def test_summaries_carry_the_student_t_interval_and_keep_the_model_order():
    frame = pd.DataFrame({"model": ["M2"] * 3 + ["M1"] * 3, "seed": [0, 1, 2] * 2,
                          "x": [0.5, 0.6, 0.7, 0.1, 0.1, 0.1]})
    out = study.summarise_over_seeds(frame, "model", ["x"], order=["M1", "M2"])
    assert list(out.model) == ["M1", "M2"]
    half = 4.302652729749462 * 0.1 / math.sqrt(3)
    assert out.x[1] == pytest.approx(0.6) and out.x_high[1] == pytest.approx(0.6 + half)
    text = study.with_interval(out, ["x"])
    assert text.x[1] == f"0.60 [{0.6 - half:.2f}, {0.6 + half:.2f}]" and "x_low" not in text
    assert study.with_interval(out, ["x"], percent=True)["x %"][1] == f"60.0 [{60 - 100 * half:.1f}, {60 + 100 * half:.1f}]"


def test_judge_vs_oracle_measures_correlation_and_overrating():
    frame = responses({"p1": [1, 2], "p2": [3, 4]})
    frame["self_judge"] = frame.oracle + 1.0  # perfectly correlated, one point too generous
    frame.loc[0, "self_judge"] = np.nan  # one unreadable judgment
    runs = [FakeRun(0, SPEC, {"SFT": frame, "M1": frame, "M2": frame, "M3": frame})]
    out = study.judge_vs_oracle(runs).set_index("model").loc["M1"]
    assert out.correlation == pytest.approx(1.0) and out.overrating == pytest.approx(1.0) and out.parsed == 0.75


def test_top_scored_records_keep_self_judged_fives_once(tmp_path):
    store = RunStore(tmp_path)
    frame = pd.DataFrame({"prompt_id": ["a", "a", "b", "b"], "candidate": [0, 1, 0, 1],
                          "prompt": ["pa", "pa", "pb", "pb"], "response": ["x", "x", "y", "z"],
                          "judge": [5.0, 5.0, 4.67, np.nan]})
    stage = store.run("aift", {}, lambda d: frame.to_parquet(d / "candidates.parquet") or {})
    records = study.top_scored_records(stage, 5.0)
    assert [(r["prompt"][0]["content"], r["completion"][0]["content"]) for r in records] == [("pa", "x")]
    assert len(study.top_scored_records(stage, 4.5)) == 2


def test_the_fixed_reference_is_the_corpus_writer_on_the_held_out_prompts(tmp_path):
    from repro.studies import base
    from repro.studies.self_rewarding import stages as sr

    store = RunStore(tmp_path)
    base_spec = base.BaseSpec(corpus_docs=50)
    corpus = base.corpus_stage(store, base_spec)
    prompts = sr.world_prompts_stage(store, corpus, base_spec, sr.EvalSpec(prompts_per_family=5))
    stage = study.reference_stage(store, prompts, samples=4)
    frame = pd.read_parquet(stage / "responses.parquet")
    held_out = sr.prompt_rows(prompts)
    assert len(held_out) == 5 * 6 and len(frame) == 4 * len(held_out) and set(frame.prompt_id) == set(held_out.prompt_id)
    assert frame.oracle.between(0, 5).all() and frame.oracle.nunique() >= 4  # mixed quality
    assert study.reference_stage(store, prompts, samples=4).key == stage.key  # independent of any seed
    only_perfect = study.reference_stage(store, prompts, samples=2, quality_weights={5: 1.0})
    assert (pd.read_parquet(only_perfect / "responses.parquet").oracle == 5).all()


def test_verdict_summary_groups_claims_in_words():
    claims = pd.DataFrame({"claim": ["M2 beats SFT", "Judging improves", "Responses grow"],
                           "verdict": ["reproduced", "not reproduced at this scale", "reproduced"]})
    text = study.verdict_summary(claims)
    assert text.startswith("**reproduced** (2): M2 beats SFT; Responses grow")
    assert "**not reproduced at this scale** (1): Judging improves" in text and "opposite" not in text


def test_findings_turn_known_runs_into_the_expected_verdicts():
    from types import SimpleNamespace

    spec = study.StudySpec(iterations=2, ablations=True)
    low, high = responses({"p1": [1], "p2": [2]}, words=3), responses({"p1": [5], "p2": [4]}, words=9)
    frames = {"SFT": low, "M1": low, "M2": high, "M3": high, study.NO_EFT: low, study.TOP_SCORED_SFT: low}

    def rm(acc, seed):
        return SimpleNamespace(results={"pairwise_accuracy": acc + 0.01 * seed, "five_best": 0.1, "exact_match": 0.1,
                                        "spearman": 0.1, "kendall_tau": 0.1, "parse": {"ok": 9, "total": 10}})

    def aift(pairs):
        return SimpleNamespace(results={"candidates": 8, "pairs": pairs, "ties": 0, "unscored": 0,
                                        "parse": {"ok": 4, "total": 8}, "judge_oracle_correlation": 0.1,
                                        "pairs_oracle_agree": 0.5, "pairs_oracle_equal": 0.2})

    runs = []
    for seed in (0, 1, 2):
        run = FakeRun(seed, spec, frames)
        run.reward_modelling = {"SFT": rm(0.5, seed), "M1": rm(0.7, seed), "M2": rm(0.7, seed), "M3": rm(0.72, seed),
                                study.NO_EFT: rm(0.5, seed)}
        prompts = SimpleNamespace(results={"candidates": 10, "accepted": 4})
        run.prompts = {1: prompts, 2: prompts}
        run.aift = {"M1": aift(4 + seed), "M2": aift(4), "SFT": aift(seed % 2)}
        runs.append(run)
    claims = study.findings(runs, responses({"p1": [3], "p2": [3]})).set_index("claim")
    verdicts = claims.verdict.to_dict()
    assert verdicts["M1 is on par with the SFT baseline (win rate, ties half)"] == "reproduced"  # always ties
    assert verdicts["M2 beats SFT head to head (win rate, ties half)"] == "reproduced"
    assert verdicts["M3 beats M2 head to head (win rate, ties half)"] == "not reproduced at this scale"
    assert verdicts["M3 beats M1 head to head (win rate, ties half)"] == "reproduced"
    assert len([c for c in verdicts if "head to head" in c or "on par" in c]) == 6
    assert verdicts["The win rate against a fixed reference rises from M1 to M3"] == "reproduced"
    assert verdicts["EFT makes a better judge: pairwise accuracy of M1 above the SFT baseline's"] == "reproduced"
    assert verdicts["Responses grow longer from M1 to M3 (words)"] == "reproduced"
    assert verdicts["Without EFT, self-judging yields fewer preference pairs (AIFT(SFT) vs AIFT(M1))"] == "reproduced"
    assert claims.loc["M2 beats SFT head to head (win rate, ties half)", "ours"] == 1.0
    assert (claims.seeds == 3).all() and "62.5% win" in claims.loc["M3 beats SFT head to head (win rate, ties half)", "paper"]


#: `params_hash` of the aift and evaluation stages' payloads at the tiny default, computed by the code at
#: commit 4100521, before `judge_template` (the stores made then must keep their keys).
AIFT_DEFAULT_PAYLOAD = "aeb435fd27a9e937"
EVAL_DEFAULT_PAYLOAD = "0e3ef082bce6bbcd"


def _stage_params(make_stage) -> dict:
    """The parameters a stage function gives the store (its key's payload), without computing anything."""
    class Recorder:
        def run(self, name, params, compute, **_):
            return params

    return make_stage(Recorder())


def test_the_judge_template_enters_stage_keys_only_when_it_is_not_the_default():
    """Stores made before `judge_template` existed keep their keys at the tiny default, and a judge asked
    for the plain-English rubric gets stages of its own."""
    import pytest

    from repro.runs.store import params_hash
    from repro.studies.self_rewarding import stages as sr

    from repro.generation import Engine

    # generate's draw, the only one when the payloads below were pinned (the default engine now names its sampler)
    drawn_by_generate = Engine.of("transformers", sampler="generate")
    aift = lambda spec, engine=drawn_by_generate: _stage_params(  # noqa: E731
        lambda store: sr.aift_stage(store, None, None, spec, 1, engine=engine))
    evaluate = lambda spec, engine=drawn_by_generate: _stage_params(  # noqa: E731
        lambda store: sr.evaluate_stage(store, None, None, spec, engine=engine))
    # the payloads of the tiny default, hashed as the code before the field did (at commit 4100521)
    assert params_hash(aift(sr.IterationSpec())) == AIFT_DEFAULT_PAYLOAD
    assert params_hash(evaluate(sr.EvalSpec())) == EVAL_DEFAULT_PAYLOAD
    # the studies' default engine draws with the nucleus sampler, and its stages are other stages
    assert aift(sr.IterationSpec(), None)["engine"] == {"backend": "transformers", "sampler": "nucleus"}
    assert params_hash(evaluate(sr.EvalSpec(), None)) != EVAL_DEFAULT_PAYLOAD
    assert aift(sr.IterationSpec(judge_template="full"))["judge_template"] == "full"
    assert evaluate(sr.EvalSpec(judge_template="full", judge_max_new_tokens=160))["judge_max_new_tokens"] == 160
    with pytest.raises(ValueError, match="unknown judge template"):
        sr.IterationSpec(judge_template="verbose")
