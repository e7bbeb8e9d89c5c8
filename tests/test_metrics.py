import math

import numpy as np
import pandas as pd
import pytest

from repro.evaluation.metrics import (
    WinTieLoss,
    best_pick_accuracy,
    exact_match_pct,
    five_best_pct,
    kendall_tau,
    pairwise_accuracy,
    reward_model_report,
    spearman,
    win_rate,
    win_rate_ci,
    win_tie_loss,
    win_tie_loss_both_orders,
)

# --- head-to-head ---------------------------------------------------------------------------------


def test_win_tie_loss_from_gold_scores():
    result = win_tie_loss([3, 2, 1, 4], [1, 2, 3, 0])
    assert result.outcomes == (1, 0, -1, 1)
    assert (result.wins, result.ties, result.losses, result.n) == (2, 1, 1, 4)
    assert (result.win, result.tie, result.loss) == (0.5, 0.25, 0.25)
    assert result.as_dict()["wins"] == 2
    assert str(result) == "50.0 / 25.0 / 25.0 (n=4)"


def test_win_tie_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="3 scores for A but 2"):
        win_tie_loss([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="prompt index 1"):
        win_tie_loss([1, None, 3], [1, 2, 3])
    empty = win_tie_loss([], [])
    assert empty.n == 0 and math.isnan(empty.win)


def test_both_orders_counts_any_disagreement_as_tie():
    # A-first verdicts and B-first verdicts, both from A's point of view.
    pref_ab = [1, 1, -1, 1, 0, -1]
    pref_ba = [1, -1, -1, 0, 0, 1]
    result = win_tie_loss_both_orders(pref_ab, pref_ba)
    assert result.outcomes == (1, 0, -1, 0, 0, 0)
    assert (result.wins, result.ties, result.losses) == (1, 4, 1)


def test_both_orders_rejects_bad_verdicts():
    with pytest.raises(ValueError, match=r"pref_ba\[0\] = 2"):
        win_tie_loss_both_orders([1], [2])
    with pytest.raises(ValueError, match="pref_ab"):
        win_tie_loss_both_orders([True], [1])
    with pytest.raises(ValueError, match="2 verdicts"):
        win_tie_loss_both_orders([1, 0], [1])


def test_win_rate_and_interval():
    outcomes = [1, 0, -1, 1]
    assert win_rate(outcomes) == pytest.approx(0.625)
    assert win_rate(outcomes, tie_value=0.0) == 0.5
    assert win_rate(WinTieLoss((1, 1, 0))) == pytest.approx(2.5 / 3)
    assert math.isnan(win_rate([]))
    with pytest.raises(ValueError, match="tie_value"):
        win_rate(outcomes, tie_value=2)
    estimate = win_rate_ci([1, 0, -1, 1, 1, -1, 0, 1], n_resamples=500)
    assert estimate.value == pytest.approx(win_rate([1, 0, -1, 1, 1, -1, 0, 1]))
    assert estimate.low <= estimate.value <= estimate.high and estimate.n == 8
    constant = win_rate_ci([1, 1, 1])
    assert (constant.low, constant.value, constant.high) == (1.0, 1.0, 1.0)


# --- reward modelling -----------------------------------------------------------------------------
# p1: gold 3 > 2 > 1, judge 5 > 4 = 4  (one judge tie on a gold-ordered pair)
# p2: gold 1 < 2,     judge 5 > 3      (reversed; the perfect 5 goes to the worse response)
# p3: gold 2 > 1 > 0, judge 4 > 3 > 2  (perfect agreement, no perfect score)
# p4: one response                     (skipped)
# p5: gold 2 = 2                       (constant gold: skipped)
ROWS = [
    ("p1", "a", 3, 5), ("p1", "b", 2, 4), ("p1", "c", 1, 4),
    ("p2", "d", 1, 5), ("p2", "e", 2, 3),
    ("p3", "f", 2, 4), ("p3", "g", 1, 3), ("p3", "h", 0, 2),
    ("p4", "i", 5, 5),
    ("p5", "j", 2, 1), ("p5", "k", 2, 3),
]
FRAME = pd.DataFrame(ROWS, columns=["prompt_id", "response_id", "gold", "judge"])
ARGS = (FRAME.gold.tolist(), FRAME.judge.tolist(), FRAME.prompt_id.tolist())

RHO_P1 = 1.5 / math.sqrt(3)  # ranks (3, 2, 1) vs (3, 1.5, 1.5)
TAU_P1 = 2 / math.sqrt(6)  # tau-b: 2 concordant, 1 judge tie


def test_pairwise_accuracy_hand_computed():
    # pairs: p1 (ab agree, ac agree, bc judge tie), p2 (disagree), p3 (3 agree) -> 7 pairs
    result = pairwise_accuracy(*ARGS)
    assert result.value == pytest.approx(5.5 / 7) and result.n == 7 and result.skipped == 0
    assert pairwise_accuracy(*ARGS, tie_credit=0.0).value == pytest.approx(5 / 7)
    excluded = pairwise_accuracy(*ARGS, tie_credit=None)
    assert excluded.value == pytest.approx(5 / 6) and excluded.n == 6 and excluded.skipped == 1
    with pytest.raises(ValueError, match="tie_credit"):
        pairwise_accuracy(*ARGS, tie_credit=1.5)


def test_five_best_is_the_precision_of_a_perfect_score():
    # perfect scores in scored prompts: a (gold best of p1) and d (not best of p2); p4 is skipped
    result = five_best_pct(*ARGS)
    assert result.value == 0.5 and result.n == 2 and result.skipped == 2
    # with a lower bar, f (gold best of p3, judge 4) and b, c (judge 4, not best) also count
    assert five_best_pct(*ARGS, top_score=4).value == pytest.approx(2 / 5)
    nobody_perfect = five_best_pct([1, 2], [3, 4], ["q", "q"])
    assert math.isnan(nobody_perfect.value) and nobody_perfect.n == 0


def test_best_pick_exact_match_and_correlations():
    best = best_pick_accuracy(*ARGS)
    assert best.value == pytest.approx(2 / 3) and best.n == 3 and best.skipped == 2
    exact = exact_match_pct(*ARGS)
    assert exact.value == pytest.approx(1 / 3) and exact.n == 3
    rho = spearman(*ARGS)
    assert rho.value == pytest.approx((RHO_P1 - 1 + 1) / 3) and rho.n == 3 and rho.skipped == 2
    tau = kendall_tau(*ARGS)
    assert tau.value == pytest.approx((TAU_P1 - 1 + 1) / 3) and tau.n == 3


def test_exact_match_requires_the_same_ties():
    assert exact_match_pct([3, 2, 2], [9, 1, 1], ["q"] * 3).value == 1.0
    assert exact_match_pct([3, 2, 1], [9, 1, 1], ["q"] * 3).value == 0.0
    assert exact_match_pct([3, 2, 2], [9, 2, 1], ["q"] * 3).value == 0.0


def test_all_ties_and_single_response():
    gold, judge, ids = [1, 2, 3], [2, 2, 2], ["q"] * 3
    assert pairwise_accuracy(gold, judge, ids).value == 0.5
    assert pairwise_accuracy(gold, judge, ids, tie_credit=0).value == 0.0
    assert math.isnan(pairwise_accuracy(gold, judge, ids, tie_credit=None).value)
    skipped = spearman(gold, judge, ids)
    assert math.isnan(skipped.value) and skipped.n == 0 and skipped.skipped == 1
    assert spearman(gold, judge, ids, constant_judge="zero").value == 0.0
    assert kendall_tau(gold, judge, ids, constant_judge="zero").value == 0.0
    assert best_pick_accuracy(gold, judge, ids).value == pytest.approx(1 / 3)
    assert exact_match_pct(gold, judge, ids).value == 0.0
    single = spearman([4], [5], ["q"])
    assert math.isnan(single.value) and single.skipped == 1
    assert math.isnan(pairwise_accuracy([4], [5], ["q"]).value)


def test_missing_judge_scores_rank_lowest_or_are_excluded():
    gold, judge, ids = [3, 2, 1], [float("nan"), 4, 2], ["q"] * 3
    # lowest: judge acts as (-inf, 4, 2): only the (b, c) pair agrees
    assert pairwise_accuracy(gold, judge, ids).value == pytest.approx(1 / 3)
    assert spearman(gold, judge, ids).value == pytest.approx(-0.5)
    assert exact_match_pct(gold, judge, ids).value == 0.0
    assert best_pick_accuracy(gold, judge, ids).value == 0.0
    # exclude: only b and c remain, and the judge orders them right
    assert pairwise_accuracy(gold, judge, ids, missing="exclude").value == 1.0
    assert spearman(gold, judge, ids, missing="exclude").value == pytest.approx(1.0)
    assert exact_match_pct(gold, judge, ids, missing="exclude").value == 1.0
    # two missing scores tie with each other, below the parsed one
    assert pairwise_accuracy(gold, [None, None, 1], ids).value == pytest.approx(0.5 / 3)
    # a missing score is never a perfect score
    assert five_best_pct([2, 1], [None, 5], ["q", "q"]).value == 0.0
    # everything missing + exclude: nothing left to score
    gone = exact_match_pct(gold, [None] * 3, ids, missing="exclude")
    assert math.isnan(gone.value) and gone.skipped == 1
    with pytest.raises(ValueError, match="missing must be"):
        spearman(gold, judge, ids, missing="zero")


def test_gold_scores_must_be_complete_and_aligned():
    with pytest.raises(ValueError, match="gold score missing for prompt 'q'"):
        spearman([1, None], [1, 2], ["q", "q"])
    with pytest.raises(ValueError, match="differ in length"):
        spearman([1, 2], [1], ["q", "q"])
    with pytest.raises(ValueError, match="judge must be a flat sequence"):
        spearman([1, 2], ["x", 2], ["q", "q"])


def test_rank_correlations_match_direct_formulas_on_random_prompts():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(3, 7))
        gold = rng.permutation(n).astype(float)  # no ties: plain formulas apply
        judge = rng.integers(0, 6, n).astype(float)
        if len(set(judge)) < 2:
            continue
        ids = ["q"] * n
        ranks = pd.Series(judge).rank().to_numpy()
        expected_rho = np.corrcoef(pd.Series(gold).rank().to_numpy(), ranks)[0, 1]
        assert spearman(gold, judge, ids).value == pytest.approx(expected_rho)
        i, j = np.triu_indices(n, 1)
        s_gold, s_judge = np.sign(gold[i] - gold[j]), np.sign(judge[i] - judge[j])
        expected_tau = np.sum(s_gold * s_judge) / math.sqrt(len(i) * np.sum(s_judge != 0))
        assert kendall_tau(gold, judge, ids).value == pytest.approx(expected_tau)


def test_reward_model_report_collects_everything():
    report = reward_model_report(FRAME)
    assert report.pairwise_accuracy.value == pytest.approx(5.5 / 7)
    assert report.five_best.value == 0.5
    assert report.best_pick.value == pytest.approx(2 / 3)
    assert report.exact_match.value == pytest.approx(1 / 3)
    assert report.spearman.value == pytest.approx(RHO_P1 / 3)
    assert report.kendall_tau.value == pytest.approx(TAU_P1 / 3)
    assert (report.n_prompts, report.n_responses, report.n_missing_judge) == (5, 11, 0)
    flat = report.as_dict()
    assert flat["pairwise_accuracy_n"] == 7 and flat["spearman_skipped"] == 2 and flat["missing"] == "lowest"


def test_reward_model_report_counts_missing_and_checks_the_frame():
    frame = FRAME.astype({"judge": object})
    frame.loc[0, "judge"] = None
    report = reward_model_report(frame)
    assert report.n_missing_judge == 1
    # a (gold best of p1) now ranks last: (a,b) and (a,c) flip, (b,c) is still a judge tie
    assert report.pairwise_accuracy.value == pytest.approx(3.5 / 7)
    assert report.five_best.value == 0.0
    with pytest.raises(ValueError, match="lacks column"):
        reward_model_report(FRAME.drop(columns="gold"))
    with pytest.raises(ValueError, match="'a' of prompt 'p1' appears more than once"):
        reward_model_report(pd.concat([FRAME, FRAME.iloc[:1]]))
