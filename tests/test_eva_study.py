"""eva study pieces: the world's prompt sets, reward models, best-vs-worst pairs, the creator step,
win rates in both orders, and the paired comparisons the chapters' tables and claims rest on."""

import numpy as np
import pandas as pd
import pytest

from repro import world
from repro.runs.store import RunStore
from repro.studies.eva import stages as eva
from repro.studies.eva import study as study


def test_prompt_sets_are_disjoint_sized_and_shaped_as_specified():
    spec = eva.PromptSpec(chunk_size=20, chunks=3, standard_prompts=10, hard_prompts=8, two_turn_prompts=6)
    first = world.sample_tasks(5, seed=spec.world_seed + eva.PROMPT_STREAMS["standard"], difficulty=(1, 2))
    excluded = {first[0].prompt}
    sets = eva.world_prompt_sets(spec, exclude=excluded)
    chunks, std, hard, two = sets["chunks"], sets["standard"], sets["hard"], sets["two_turn"]
    assert len(chunks) == 60 and sorted(chunks.chunk.unique()) == [1, 2, 3]
    assert (len(std), len(hard), len(two)) == (10, 8, 6)
    prompts = [*chunks.prompt, *std.prompt, *hard.prompt, *two.turn_1, *two.turn_2]
    assert len(prompts) == len(set(prompts)) and not excluded & set(prompts)
    assert set(hard.difficulty) == {3} and set(chunks.difficulty) <= {1, 2} and set(std.difficulty) <= {1, 2}
    # The second turn asks a harder version of the first turn's task.
    assert (two.family == two.family_2).all() and (two.difficulty_2 == two.difficulty + 1).all()
    assert all(world.parse_prompt(p) is not None for p in prompts)
    # The same spec gives the same sets; chunk 1 does not depend on how many chunks follow it.
    again = eva.world_prompt_sets(eva.PromptSpec(chunk_size=20, chunks=1, standard_prompts=10, hard_prompts=8,
                                                 two_turn_prompts=6), exclude=excluded)
    assert again["chunks"].prompt.tolist() == chunks[chunks.chunk == 1].prompt.tolist()
    with pytest.raises(ValueError):
        eva.PromptSpec(hard_difficulty=9)


def test_development_prompts_are_hard_and_in_no_prompt_set(tmp_path):
    store = RunStore(tmp_path)
    spec = eva.PromptSpec(chunk_size=20, chunks=2, standard_prompts=10, hard_prompts=8, two_turn_prompts=6)
    sets = eva.prompt_sets_stage(store, spec)
    dev = eva.read_set(eva.dev_prompts_stage(store, spec, 12, sets), "hard")
    held = eva.world_prompt_sets(spec)
    used = {*held["chunks"].prompt, *held["standard"].prompt, *held["hard"].prompt, *held["two_turn"].turn_1,
            *held["two_turn"].turn_2}
    assert len(dev) == len(set(dev.prompt)) == 12 and not used & set(dev.prompt)
    assert set(dev.difficulty) == {spec.hard_difficulty} and eva.read_set(sets, "hard").prompt.tolist() == held["hard"].prompt.tolist()


def test_reward_model_names_parse_and_bad_ones_are_refused():
    assert eva.parse_reward("oracle") == ("oracle", None)
    assert eva.parse_reward("noisy@0.89") == ("noisy", 0.89)
    assert eva.parse_reward("trained@4000") == ("trained", 4000)
    assert eva.parse_reward("path@RLHFlow/ArmoRM-Llama3-8B-v0.1") == ("path", "RLHFlow/ArmoRM-Llama3-8B-v0.1")
    for bad in ("oracle@1", "noisy@1.2", "noisy@0.4", "trained@0", "armorm", "path@"):
        with pytest.raises(ValueError):
            eva.parse_reward(bad)
    with pytest.raises(ValueError, match="chunks"):
        study.EvaSpec(prompts=eva.PromptSpec(chunks=2), iterations=2)
    with pytest.raises(ValueError):
        study.EvaSpec(reward="noisy")


def test_noise_is_calibrated_to_the_asked_accuracy_and_fixed_per_text():
    gaps = np.array([1, 1, 2, 3, 1, 4, 2, 1] * 50, dtype=float)
    sigma = eva.noise_for_accuracy(gaps, 0.8)
    rng = np.random.default_rng(0)
    draws = 4000
    a = np.repeat(gaps, draws // 100) + sigma * rng.standard_normal(gaps.size * (draws // 100))
    b = sigma * rng.standard_normal(gaps.size * (draws // 100))
    assert abs(np.mean(a > b) - 0.8) < 0.01
    assert eva.noise_for_accuracy(gaps, 0.95) < sigma < eva.noise_for_accuracy(gaps, 0.6)
    with pytest.raises(ValueError):
        eva.noise_for_accuracy(np.zeros(3), 0.8)

    task = world.make_task("sort", __import__("random").Random(0), difficulty=1)
    noisy = eva.Rewarder("noisy@0.8", "noisy", sigma=sigma)
    once = noisy.score([task.prompt] * 2, [task.answer, "wrong words ."])
    assert np.array_equal(once, noisy.score([task.prompt] * 2, [task.answer, "wrong words ."]))
    exact = eva.Rewarder("oracle", "oracle").score([task.prompt], [task.answer])
    assert exact[0] == 5 and once[0] != 5


def test_noisy_and_oracle_reward_stages_measure_their_accuracy(tmp_path):
    store = RunStore(tmp_path)
    oracle = eva.reward_stage(store, "oracle", base=None, evaluation_pairs=60)
    noisy = eva.reward_stage(store, "noisy@0.75", base=None, evaluation_pairs=300, calibration_pairs=300)
    assert oracle.results["accuracy"] == 1.0
    assert 0.65 < noisy.results["accuracy"] < 0.85 and noisy.results["sigma"] > 0
    loaded = eva.load_rewarder(noisy)
    assert loaded.kind == "noisy" and loaded.sigma == noisy.results["sigma"]
    with pytest.raises(ValueError, match="base model"):
        eva.reward_stage(store, "trained@10", base=None, evaluation_pairs=10)


def responses_frame(rewards, oracle=None):
    rows = []
    for i, row in enumerate(rewards):
        for j, r in enumerate(row):
            rows.append({"uid": f"p{i}", "family": "sort", "difficulty": 1, "prompt": f"prompt {i}", "sample": j,
                         "response": f"answer {i}.{j}", "words": 2, "reward": float(r),
                         "oracle": float(oracle[i][j]) if oracle is not None else np.nan})
    return pd.DataFrame(rows)


def test_pairs_are_best_against_worst_and_ties_give_none():
    frame = responses_frame([[1, 3, 2], [2, 2, 2], [0.5, -1, 0.5]], oracle=[[1, 4, 2], [3, 3, 3], [2, 1, 0]])
    pairs = eva.preference_pairs(frame)
    assert pairs.uid.tolist() == ["p0", "p2"]
    assert pairs.chosen.tolist() == ["answer 0.1", "answer 2.0"]  # first of equals
    assert pairs.rejected.tolist() == ["answer 0.0", "answer 2.1"]
    assert pairs.chosen_oracle.tolist() == [4, 2]
    uids, matrix = eva.reward_matrix(frame)
    assert uids == ["p0", "p1", "p2"] and matrix.shape == (3, 3)


def world_responses(n_prompts: int, seed: int = 0):
    tasks = world.sample_tasks(n_prompts, seed=seed, difficulty=(1, 2))
    rng = np.random.default_rng(seed)
    rows = []
    for t in tasks:
        for j in range(4):
            rows.append({"uid": t.uid, "family": t.family, "difficulty": t.difficulty, "prompt": t.prompt, "sample": j,
                         "response": "x", "words": 1, "reward": float(rng.normal()), "oracle": 0.0})
    return pd.DataFrame(rows), tasks


def test_the_creator_keeps_evolves_and_mixes_as_the_paper_says():
    frame, tasks = world_responses(40)
    spec = eva.CreatorSpec()
    new, scores, report = eva.create(frame, spec, seed=3)
    assert scores.selected.sum() == 10 == report["selected"]
    kept = set(scores.uid[scores.selected])
    evolved = new[new.origin == "evolved"]
    assert set(evolved.parent) <= kept and evolved.groupby("parent").size().max() <= spec.evolutions
    # Lineage names the parent by the prompt set's uid, also when reading the prompt back spells it otherwise.
    renamed = frame.assign(uid=frame.uid.map(lambda u: f"set-{u}"))
    relabelled = eva.create(renamed, spec, seed=3)[0]
    assert set(relabelled[relabelled.origin == "evolved"].parent) <= set(renamed.uid)
    assert len(evolved) == report["evolved"] >= 30
    old = new[new.origin == "old"]
    assert len(old) == round(len(evolved) * 0.2 / 0.8) and set(old.uid) <= {t.uid for t in tasks}
    assert new.prompt.is_unique and not set(evolved.prompt) & {t.prompt for t in tasks}
    assert all(world.parse_prompt(p) is not None for p in evolved.prompt)
    # An evolved prompt that is a held-out prompt is dropped and counted.
    held_out = set(evolved.prompt[:3])
    kept_out, _, dropped = eva.create(frame, spec, seed=3, exclude=held_out)
    assert dropped["dropped_held_out"] == 3 and not held_out & set(kept_out.prompt)
    # The same seed gives the same prompt set; another seed another one.
    assert eva.create(frame, spec, seed=3)[0].prompt.tolist() == new.prompt.tolist()
    assert eva.create(frame, spec, seed=4)[0].prompt.tolist() != new.prompt.tolist()
    # Greedy keeps the largest reward gaps; without evolving, the kept prompts are the new set.
    greedy, gscores, _ = eva.create(frame, eva.CreatorSpec(selection="greedy", evolve=False), seed=3)
    assert set(greedy.origin) == {"selected"} and len(greedy) == 10
    assert gscores[gscores.selected].reward_gap.min() >= gscores[~gscores.selected].reward_gap.max()
    with pytest.raises(ValueError):
        eva.CreatorSpec(metric="variance")


def test_the_creator_takes_any_evolver_with_the_same_interface():
    class Suffix:
        def key(self):
            return {"evolver": "suffix"}

        def evolve(self, parents, *, evolutions, operators, seed):
            rows = [{"uid": f"{u}-{k}", "family": None, "difficulty": None, "prompt": f"{p} (variant {k})",
                     "parent": u, "operator": "in_depth", "step": k}
                    for u, p in zip(parents.uid, parents.prompt) for k in range(1, evolutions + 1)]
            return pd.DataFrame(rows), {"evolved": len(rows)}

    frame = responses_frame(np.arange(24).reshape(8, 3) % 5)
    new, _, report = eva.create(frame, eva.CreatorSpec(evolutions=2), seed=0, evolver=Suffix())
    assert report["evolved"] == 4 and (new.origin == "evolved").sum() == 4 and (new.origin == "old").sum() == 1


def test_win_rates_read_both_orders_and_count_ties_half():
    model = pd.DataFrame({"set": "hard", "uid": ["a", "a", "b", "b", "c", "c"], "oracle": [5, 3, 1, 1, 0, 2],
                          "words": 1})
    reference = pd.DataFrame({"set": "hard", "uid": ["a", "b", "c"], "oracle": [3, 1, 4]})
    table = eva.win_rates(model, reference).iloc[0]
    assert table.win_rate == pytest.approx((1 + 0.5 + 0) / 3)
    assert table.order_disagreement == 0 and table.prompts == 3
    assert table.mean_score == pytest.approx(2.0) and table.accuracy == pytest.approx(1 / 6)


def results_table():
    """A results table of two configurations x three seeds with known win rates."""
    rows = []
    for config, base in (("a", 0.50), ("b", 0.40)):
        for seed in range(3):
            jitter = 0.01 * seed
            for arm, it, value in (("theta_1", 1, base + jitter), ("eva", 1, base + 0.10 + jitter),
                                   ("human", 1, base + 0.02 + jitter), ("eva", 2, base + 0.15 + jitter)):
                rows.append({"config": config, "seed": seed, "arm": arm, "iteration": it, "set": "hard",
                             "metric": "win_rate", "value": value})
    return pd.DataFrame(rows)


def test_paired_gains_levels_and_differences_between_configurations():
    results = results_table()
    gain = study.gain_estimate(results, {"config": "a"})
    assert gain.value == pytest.approx(0.10) and gain.n == 3 and gain.high - gain.low == pytest.approx(0, abs=1e-9)
    assert study.gain_estimate(results, {"config": "b"}, against="human").value == pytest.approx(0.08)
    assert study.level_estimate(results, {"config": "b"}).value == pytest.approx(0.51)
    diff = study.config_difference(results, "config", "a", "b")
    assert diff.value == pytest.approx(0.10)
    table = study.eva_gains(results, ["config"])
    assert table.config.tolist() == ["a", "b"] and table.gain.tolist() == pytest.approx([0.10, 0.10])
    claims = study.findings(results.assign(set="hard"))
    first = claims.iloc[0]
    assert first.verdict == "reproduced" and "+10.0%" in first.measured
    assert claims.claim.str.contains("iteration 2 beats iteration 1").any()


def test_paper_scale_inputs_need_what_real_prompts_need(tmp_path):
    store = RunStore(tmp_path)
    assert study.paper_scale_inputs(store) == {}
    with pytest.raises(ValueError, match="evolver_path"):
        study.paper_scale_inputs(store, prompts_path="HuggingFaceH4/ultrafeedback_binarized")
    with pytest.raises(ValueError, match="prompts_path"):
        study.paper_scale_inputs(store, hard="arena.jsonl")
    out = study.paper_scale_inputs(store, prompts_path="HuggingFaceH4/ultrafeedback_binarized", evolver_path="google/gemma-2-9b-it",
                                   gold_judge_path="meta-llama/Meta-Llama-3.1-70B-Instruct")
    assert isinstance(out["evolver"], eva.LLMEvolver) and out["file_sets"]["chunks"] == 6
    assert out["evolver"].key()["evolver"] == "llm" and out["gold"].key()["gold"] == "judge"


def test_file_prompt_sets_read_the_shipped_samples_in_the_real_schemas(tmp_path):
    from repro.data import alpaca_eval, mt_bench, ultrafeedback

    store = RunStore(tmp_path)
    stage = eva.file_prompt_sets_stage(store, train=str(ultrafeedback.sample_path()), chunk_size=3, chunks=2,
                                       standard=str(alpaca_eval.sample_path()), hard=str(mt_bench.arena_hard_sample_path()),
                                       two_turn=str(mt_bench.mt_bench_sample_path()))
    chunks = eva.read_set(stage, "chunks")
    assert len(chunks) == 6 and sorted(chunks.chunk.unique()) == [1, 2] and chunks.uid.is_unique
    assert list(eva.read_set(stage, "hard").columns) == eva.PROMPT_COLUMNS
    two = eva.read_set(stage, "two_turn")
    assert len(two) and two.turn_1.str.len().min() > 0 and two.turn_2.str.len().min() > 0
    assert len(eva.read_set(stage, "standard"))
