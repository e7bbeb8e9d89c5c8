"""The gates on the base: their rules come from reported.yaml, they are measured on a policy's held-out
responses, and a claim that rests on a failed gate is shown as not testable here."""


import pandas as pd
import pytest

from repro.book import ledger
from repro.evaluation import claims as ledger_claims
from repro.evaluation import gates, reported


def responses(scores_by_prompt: dict[str, list[int]], family_of=lambda p: p.split("-")[0]) -> pd.DataFrame:
    return pd.DataFrame([{"prompt_id": p, "family": family_of(p), "sample": i, "oracle": float(s)}
                         for p, scores in scores_by_prompt.items() for i, s in enumerate(scores)])


def test_the_gates_are_read_from_reported_yaml_with_their_reasons():
    found = {g.id: g for g in gates.gates()}
    assert set(found) == {"capability", "diversity", "summariser"}
    entries = {e["id"]: e for e in reported.gate_entries()}
    for gate_id, keys in (("capability", {"solved_score", "low", "high", "family_above"}),
                          ("diversity", {"samples", "distinct_scores", "share_at_least"}),
                          ("summariser", {"quality_above", "coverage_low", "coverage_high"})):
        assert set(found[gate_id].rule) == keys and found[gate_id].rule == entries[gate_id]["rule"]
    for g in found.values():
        assert g.why and g.statement
    for gate_id in ("capability", "diversity"):
        assert found[gate_id].measured_in == "10_self_rewarding"
        assert set(found[gate_id].applies_to) == {"10_self_rewarding", "30_eva", "31_eva_ablations"}
    assert found["summariser"].measured_in == "21_rlaif_rl" and found["summariser"].applies_to == ("21_rlaif_rl",)


def summaries(quality: list[float], coverage: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"p{i}" for i in range(len(quality))], "quality": quality, "coverage": coverage})


def test_the_summariser_needs_summaries_better_than_none_that_cover_some_but_not_all_main_facts():
    result = gates.summariser(summaries([0.33, 0.67, -0.17], [1 / 3, 2 / 3, 2 / 3]), policy="SFT")
    assert result["passed"] is True and result["value"] == pytest.approx(0.83 / 3)
    assert result["coverage"] == pytest.approx(5 / 9) and "55.6% of the main facts" in result["measured"]
    # covers facts but invents more than it covers: worse than an empty summary
    assert gates.summariser(summaries([-1.0, 0.5], [2 / 3, 1.0]), policy="SFT")["passed"] is False
    assert gates.summariser(summaries([0.0, 0.0], [0.0, 0.0]), policy="SFT")["passed"] is False  # says nothing
    assert gates.summariser(summaries([1.0, 0.9], [1.0, 1.0]), policy="SFT")["passed"] is False  # nothing left to gain
    unread = gates.summariser(pd.DataFrame({"id": ["p0"], "summary": ["a"]}), policy="SFT")
    assert unread["passed"] is None and "not measured" in unread["measured"]


def test_capability_needs_the_overall_share_in_range_and_every_family_above_its_floor():
    half = responses({"sort-1": [5, 5, 1, 1], "count-1": [5, 1, 5, 1]})
    assert gates.capability(half, policy="p")["passed"] is True
    assert gates.capability(half, policy="p")["value"] == pytest.approx(0.5)
    never_sorts = responses({"sort-1": [1, 1, 1, 1], "count-1": [5, 5, 5, 5], "count-2": [5, 1, 1, 1]})
    result = gates.capability(never_sorts, policy="p")
    assert result["value"] == pytest.approx(5 / 12) and result["passed"] is False
    assert result["by_family"]["sort"] == 0.0 and "weakest family sort: 0.0%" in result["measured"]
    assert gates.capability(responses({"sort-1": [5, 5, 5, 5]}), policy="p")["passed"] is False  # above 75%
    assert gates.capability(responses({"sort-1": [1, 2, 3, 0]}), policy="p")["passed"] is False  # below 25%


def test_diversity_counts_prompts_with_different_scores_among_the_first_four_samples():
    frame = responses({"a-1": [5, 5, 5, 5, 1], "a-2": [5, 4, 5, 5], "a-3": [2, 2, 2, 2]})
    result = gates.diversity(frame, policy="p")
    assert result["value"] == pytest.approx(1 / 3) and result["passed"] is False  # a-1's fifth sample is not read
    assert gates.diversity(responses({"a-1": [5, 4, 5, 5], "a-2": [1, 1, 1, 2]}), policy="p")["passed"] is True
    too_few = gates.diversity(responses({"a-1": [5, 4]}), policy="p")
    assert too_few["passed"] is None and "needs 4 samples" in too_few["measured"]


def test_without_gold_scores_a_gate_is_not_measured():
    frame = responses({"a-1": [1, 2, 3, 4]}).assign(oracle=float("nan"))
    assert [r["passed"] for r in gates.measure(frame, policy="p")] == [None, None]


def test_a_failed_gate_makes_the_claims_resting_on_it_not_testable(chapter_run):
    failed = gates.capability(responses({"sort-1": [1, 1, 1, 1], "count-1": [1, 1, 1, 5]}), policy="SFT baseline")
    chapter_run("10_self_rewarding", gates=[failed])
    chapter_run("30_eva")
    chapter_run("21_rlaif_rl")
    rows = {r["id"]: r for r in ledger.ledger_rows(chapter_run.generated)}
    by_notebook = {}
    for c in ledger_claims.claims():
        by_notebook.setdefault(c.notebook, []).append(rows[c.id])
    for notebook in ("10_self_rewarding", "30_eva"):
        for row in by_notebook[notebook]:
            assert row["verdict"] == ledger_claims.PRECONDITION_UNMET
            assert "gate capability failed" in row["note"] and "the measurement alone: reproduced" in row["note"]
    assert all(r["verdict"] == "reproduced" for r in by_notebook["21_rlaif_rl"])  # RLAIF does not rest on it
    page = ledger.ledger_page(chapter_run.generated)
    assert "**Gates on the base**" in page and "**FAILED**" in page and ledger_claims.PRECONDITION_UNMET in page


def test_only_the_measuring_chapter_records_a_gate(tmp_path):
    result = gates.capability(responses({"a-1": [5, 1, 1, 1]}), policy="p")
    with pytest.raises(ledger_claims.LedgerError, match="gates that reported.yaml does not give it: capability"):
        ledger_claims.record_claims("21_rlaif_rl", [], params={}, gates=[result], store=tmp_path)


def test_a_failed_summariser_gate_makes_only_the_rl_chapters_claims_not_testable(chapter_run):
    failed = gates.summariser(summaries([-1.3, -1.4], [0.1, 0.0]), policy="SFT")
    chapter_run("21_rlaif_rl", gates=[failed])
    chapter_run("20_rlaif_labeling")
    chapter_run("10_self_rewarding")
    rows = ledger.ledger_rows(chapter_run.generated)
    notebook_of = {c.id: c.notebook for c in ledger_claims.claims()}
    for row in rows:
        if notebook_of[row["id"]] == "21_rlaif_rl":
            assert row["verdict"] == ledger_claims.PRECONDITION_UNMET and "gate summariser failed" in row["note"]
        elif notebook_of[row["id"]] in ("20_rlaif_labeling", "10_self_rewarding"):
            assert row["verdict"] == "reproduced", row["id"]
