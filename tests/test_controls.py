"""The controls: their rules come from reported.yaml, a positive control passes only when its interval
over seeds lies above 50% and a negative one only when it does not, the self-rewarding study builds
its control pairs from the oracle's scores or by shuffling, and a claim of a chapter whose positive
control failed is shown as not testable here."""


import numpy as np
import pandas as pd
import pytest

from repro.book import ledger
from repro.evaluation import claims as ledger_claims
from repro.evaluation import controls, reported
from repro.studies.self_rewarding import stages as sr
from repro.studies.self_rewarding import study


def test_the_controls_are_read_from_reported_yaml_each_with_a_kind_and_a_reason():
    found = controls.controls()
    assert {c.kind for c in found} == {"positive", "negative"}
    assert set(reported.control_rule()) == {"level", "chance"}
    for c in found:
        assert c.statement and c.why and c.start and c.applies_to
    # the self-rewarding controls name the models the study trains for them
    mine = {c.policy for c in found if c.measured_in == "10_self_rewarding"}
    assert mine == {study.oracle_name(1), study.oracle_name(2), study.SHUFFLED}


def test_a_positive_control_passes_only_when_its_interval_lies_above_half():
    assert controls.judge("sr-oracle-m2", [0.62, 0.65, 0.60])["passed"] is True
    wide = controls.judge("sr-oracle-m2", [0.70, 0.45, 0.62])  # mean above 50%, interval not
    assert wide["passed"] is False and wide["low"] < 0.5 < wide["value"] and "not above 50%" in wide["measured"]
    assert controls.judge("sr-oracle-m2", [0.40, 0.42, 0.38])["passed"] is False


def test_a_negative_control_passes_unless_its_interval_lies_above_half():
    assert controls.judge("sr-shuffled", [0.50, 0.47, 0.53])["passed"] is True
    assert controls.judge("sr-shuffled", [0.30, 0.32, 0.28])["passed"] is True  # worse is no false gain
    assert controls.judge("sr-shuffled", [0.62, 0.65, 0.60])["passed"] is False


def test_a_control_with_fewer_than_two_seeds_is_not_measured():
    for rates in ([], [0.9]):
        result = controls.judge("sr-oracle-m2", rates)
        assert result["passed"] is None and "needs two seeds" in result["measured"]
    assert list(controls.controls_table([result]).result) == ["not measured"]
    with pytest.raises(controls.ControlError, match="no control 'nope'"):
        controls.judge("nope", [0.5, 0.5])


def candidates() -> pd.DataFrame:
    """Two prompts, three candidates each: the self-judge prefers what the oracle scores worst."""
    rows = []
    for p in ("p1", "p2"):
        for i, (judge, oracle) in enumerate(((5.0, 1), (3.0, 3), (1.0, 5))):
            rows.append({"prompt_id": p, "prompt": f"prompt {p}", "response": f"{p} answer {i}", "judge": judge,
                         "oracle": oracle})
    return pd.DataFrame(rows)


def test_oracle_pairs_are_the_oracles_best_against_its_worst_among_the_same_candidates(tmp_path):
    frame = candidates()
    own, _ = sr.preference_pairs(frame)
    by_oracle, counts = sr.preference_pairs(frame, by="oracle")
    assert list(own.chosen) == ["p1 answer 0", "p2 answer 0"] and list(by_oracle.chosen) == ["p1 answer 2", "p2 answer 2"]
    assert (by_oracle.chosen_oracle > by_oracle.rejected_oracle).all() and counts["pairs"] == 2
    frame.to_parquet(tmp_path / "candidates.parquet")
    own.to_parquet(tmp_path / "pairs.parquet")
    pd.testing.assert_frame_equal(sr.feedback_pairs(tmp_path, "oracle", seed=0), by_oracle)
    pd.testing.assert_frame_equal(sr.feedback_pairs(tmp_path, "self", seed=0), own)
    with pytest.raises(ValueError, match="feedback must be one of"):
        sr.feedback_pairs(tmp_path, "human", seed=0)


def test_shuffled_pairs_swap_chosen_and_rejected_by_a_seeded_fair_coin():
    n = 400
    pairs = pd.DataFrame({"prompt_id": range(n), "prompt": "p", "chosen": [f"good {i}" for i in range(n)],
                          "rejected": [f"bad {i}" for i in range(n)], "chosen_judge": 5.0, "rejected_judge": 1.0,
                          "chosen_oracle": 4.0, "rejected_oracle": 2.0})
    out = sr.shuffled_pairs(pairs, seed=3)
    swapped = out.chosen.str.startswith("bad")
    assert 0.4 < swapped.mean() < 0.6
    assert (out[swapped].chosen_judge == 1.0).all() and (out[swapped].rejected_oracle == 4.0).all()
    assert (out[~swapped].chosen == pairs[~swapped].chosen).all()
    assert set(out.chosen) | set(out.rejected) == set(pairs.chosen) | set(pairs.rejected)
    pd.testing.assert_frame_equal(out, sr.shuffled_pairs(pairs, seed=3))
    assert not out.equals(sr.shuffled_pairs(pairs, seed=4))
    assert pairs.chosen.str.startswith("good").all()  # the input is left alone


def test_the_methods_own_feedback_keeps_the_stage_keys_it_had():
    assert sr._feedback_key("self") == {}
    assert sr._feedback_key("oracle") == {"feedback": "oracle"}
    with pytest.raises(ValueError):
        sr._feedback_key("random")


def test_a_failed_positive_control_makes_the_chapters_claims_not_testable(chapter_run):
    failed = controls.judge("sr-oracle-m2", [0.48, 0.51, 0.50])
    false_gain = controls.judge("sr-shuffled", [0.62, 0.65, 0.60])  # a failed negative control is reported only
    chapter_run("10_self_rewarding", controls=[failed, false_gain])
    chapter_run("21_rlaif_rl")
    rows = ledger.ledger_rows(chapter_run.generated)
    for row in rows:
        if row["notebook"] == "10_self_rewarding":
            assert row["verdict"] == ledger_claims.PRECONDITION_UNMET
            assert row["note"].startswith("positive control sr-oracle-m2 failed;") and "sr-shuffled" not in row["note"]
        elif row["notebook"] == "21_rlaif_rl":
            assert row["verdict"] == "reproduced"
    page = ledger.ledger_page(chapter_run.generated)
    assert "**Controls**" in page and page.count("**FAILED**") == 2
    assert page.index("**Controls**") < page.index("| # | Claim")


def test_only_the_measuring_chapter_records_a_control(tmp_path):
    result = controls.judge("sr-oracle-m2", [0.6, 0.7])
    with pytest.raises(ledger_claims.LedgerError, match="controls that reported.yaml does not give it: sr-oracle-m2"):
        ledger_claims.record_claims("21_rlaif_rl", [], params={}, controls=[result], store=tmp_path)


def test_the_study_judges_each_control_from_the_seeds_that_ran_it():
    class Run:
        def __init__(self, rates):
            self.evaluations = {"M1": 0, study.oracle_name(1): 0}
            self.rates = rates

        def responses(self, name):
            # one prompt; the control's policy scores by the seed's rate, M1 a fixed 3
            return pd.DataFrame({"prompt_id": ["a"], "oracle": [self.rates if name != "M1" else 3.0]})

    runs = [Run(5.0), Run(5.0), Run(1.0)]
    results = {r["id"]: r for r in study.control_results(runs)}
    assert results["sr-oracle-m2"]["n"] == 3 and results["sr-oracle-m2"]["value"] == pytest.approx(2 / 3)
    assert results["sr-oracle-m3"]["n"] == 0 and results["sr-oracle-m3"]["passed"] is None
    assert np.isnan(results["sr-shuffled"]["value"])


# -- the controls' feedback in RLAIF and eva ---------------------------------------------------------
def test_every_control_names_models_its_chapter_trains():
    from repro.studies.eva import study as eva_study
    from repro.studies.rlaif import study as rlaif_study

    for c in controls.controls():
        if c.measured_in == "21_rlaif_rl":
            assert c.policy in (rlaif_study.ORACLE_RM, rlaif_study.ORACLE_REWARD, rlaif_study.RANDOM_REWARD)
            assert c.start == "SFT"
        elif c.measured_in == "30_eva":
            assert c.policy in eva_study.CONTROL_POLICIES and c.start in eva_study.CONTROL_POLICIES
        else:
            assert c.measured_in == "10_self_rewarding"


def test_rlaif_controls_reward_the_oracles_quality_or_nothing():
    import random

    from repro.studies.rlaif import stages as rl
    from repro.world import summaries as ws

    rng = random.Random(0)
    posts = [ws.make_post(rng, i) for i in range(20)]
    tldr = pd.DataFrame(ws.tldr_records(posts))
    data = rl.SummaryData(pd.DataFrame(), tldr, tldr, {}, {p.id: p for p in posts})
    prompts = rl.policy_prompts(tldr)
    good = [" " + ws.reference_summary(p) for p in posts]
    bad = [" " + ws.write_summary(p, ws.SummarySpec(covered=1, hallucinated=1), rng) for p in posts]
    reward = rl.oracle_reward(data)
    assert reward(prompts, good) == [ws.summary_quality(p, g.strip()) for p, g in zip(posts, good)]
    assert all(g > b for g, b in zip(reward(prompts, good), reward(prompts, bad)))
    noise = rl.random_reward(seed=1)
    first = noise(prompts, good)
    assert all(0 <= r < 1 for r in first) and first != noise(prompts, good)  # fresh draws every call
    assert rl.random_reward(seed=1)(prompts, good) == first  # the same stream for the same seed
    comparisons = pd.DataFrame({"id": [p.id for p in posts], "summary_0": [b.strip() for b in bad],
                                "summary_1": [g.strip() for g in good]})
    assert (rl.oracle_choice(comparisons, data) == 1).all()
    labelled = tldr.assign(summary_0=comparisons.summary_0, summary_1=comparisons.summary_1,
                           oracle_choice=rl.oracle_choice(comparisons, data))
    records = rl.reward_records(labelled, "oracle")
    assert all(r["chosen"].endswith(g.strip()) for r, g in zip(records, good))
    real = rl.SummaryData(pd.DataFrame(), tldr, tldr, {})
    with pytest.raises(ValueError, match="only in the world"):
        rl.oracle_reward(real)


def test_an_rl_stage_needs_a_reward_stage_exactly_when_its_reward_is_a_model(tmp_path):
    from repro.runs.store import RunStore
    from repro.studies.rlaif import stages as rl
    from repro.training.rl import RLSpec

    store = RunStore(tmp_path)
    data = rl.SummaryData(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {})
    with pytest.raises(ValueError, match="takes no reward stage"):
        rl.rl_stage(store, None, object(), "oracle", data, RLSpec())
    with pytest.raises(ValueError, match="needs a reward stage"):
        rl.rl_stage(store, None, None, "rm", data, RLSpec())
    with pytest.raises(ValueError, match="unknown reward kind"):
        rl.rl_stage(store, None, None, "human", data, RLSpec())


def test_evas_random_reward_is_uniform_fixed_per_text_and_blind_to_quality(tmp_path):
    from repro.runs.store import RunStore
    from repro.studies.eva import stages as eva

    assert eva.parse_reward("random") == ("random", None)
    with pytest.raises(ValueError):
        eva.parse_reward("random@3")
    rewarder = eva.Rewarder("random", "random")
    prompts, responses = [f"p{i}" for i in range(2000)], [f"r{i}" for i in range(2000)]
    scores = rewarder.score(prompts, responses)
    assert ((0 <= scores) & (scores < 1)).all() and abs(scores.mean() - 0.5) < 0.03
    assert np.array_equal(scores, rewarder.score(prompts, responses))
    stage = eva.reward_stage(RunStore(tmp_path), "random", base=None, evaluation_pairs=400)
    assert 0.4 < stage.results["accuracy"] < 0.6  # no better than a coin on world pairs
    assert eva.load_rewarder(stage).kind == "random"


def test_the_self_judges_accuracy_counts_only_the_pairs_the_oracle_tells_apart():
    assert study.right_where_oracle_differs({"pairs_oracle_agree": 0.15, "pairs_oracle_equal": 0.7}) == pytest.approx(0.5)
    assert study.right_where_oracle_differs({"pairs_oracle_agree": 0.3, "pairs_oracle_equal": 0.4}) == pytest.approx(0.5)
    assert study.right_where_oracle_differs({"pairs_oracle_agree": 0.6, "pairs_oracle_equal": 0.4}) == pytest.approx(1.0)
    assert np.isnan(study.right_where_oracle_differs({"pairs_oracle_agree": 0.0, "pairs_oracle_equal": 1.0}))
    assert np.isnan(study.right_where_oracle_differs({"pairs_oracle_agree": None, "pairs_oracle_equal": None}))
