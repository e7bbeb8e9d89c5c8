"""Gates on the base: preconditions of the claims, fixed before any claim is read.

A method that learns from preferences between answers can show an effect only when its starting policy
solves some prompts and not others, and when its answers to one prompt differ in quality. The gates
say how much of each a study needs (``gates:`` in ``reported.yaml``, each with its reason). A chapter
measures them on its starting policy's held-out responses scored by the gold judge (`measure`) and
records them with its claims (`repro.evaluation.claims.record_claims`); the book's ledger shows a claim
that rests on a failed gate as *not testable here: precondition unmet*, naming the gate
(`unmet_preconditions`). The gates concern the base alone: no claim's result is read to set them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from repro.errors import ReproError
from repro.evaluation import reported


class GateError(ReproError):
    """The gates of ``reported.yaml`` are inconsistent, or a chapter cannot measure one."""


@dataclass(frozen=True)
class Gate:
    """One precondition: what it asks, why, its rule, the chapter that measures it and the chapters whose
    claims rest on it."""

    id: str
    statement: str
    why: str
    rule: Mapping[str, Any]
    measured_in: str
    applies_to: tuple[str, ...]


def gates() -> list[Gate]:
    """Every gate of ``reported.yaml``, in its order."""
    out = reported.records("gates", Gate, GateError, rule=dict, applies_to=tuple)
    if unknown := sorted({g.id for g in out} - {"capability", "diversity", "summariser"}):
        raise GateError(f"reported.yaml names gates this study cannot measure: {', '.join(unknown)}")
    return out


def gate(gate_id: str) -> Gate:
    for g in gates():
        if g.id == gate_id:
            return g
    raise GateError(f"no gate {gate_id!r} in reported.yaml; gates: {', '.join(g.id for g in gates())}")


def _result(g: Gate, policy: str, value: float | None, passed: bool | None, measured: str, **detail) -> dict:
    return {"id": g.id, "policy": policy, "value": value, "passed": passed, "measured": measured, **detail}


def capability(responses: pd.DataFrame, *, policy: str) -> dict:
    """The capability gate on one policy's held-out responses (columns ``family`` and ``oracle``, one row
    per sampled response): the share of responses that solve their prompt, overall and per family."""
    g = gate("capability")
    rule = g.rule
    scored = responses.dropna(subset=["oracle"])
    if scored.empty:
        return _result(g, policy, None, None, "not measured: no response has a gold score")
    solved = scored.oracle.to_numpy() >= rule["solved_score"]
    by_family = pd.Series(solved, index=scored.family.to_numpy()).groupby(level=0, sort=False).mean()
    value = float(solved.mean())
    weakest = by_family.idxmin()
    passed = bool(rule["low"] <= value <= rule["high"] and (by_family > rule["family_above"]).all())
    measured = (f"{value:.1%} of {len(scored)} responses solve their prompt (needs {rule['low']:.0%}-{rule['high']:.0%}); "
                f"weakest family {weakest}: {by_family[weakest]:.1%} (needs above {rule['family_above']:.0%})")
    return _result(g, policy, value, passed, measured, by_family={str(k): float(v) for k, v in by_family.items()})


def diversity(responses: pd.DataFrame, *, policy: str, prompt: str = "prompt_id", sample: str = "sample") -> dict:
    """The diversity gate: the share of held-out prompts whose first ``samples`` responses (the rule's N)
    get at least ``distinct_scores`` different gold scores. Not measured when the run sampled fewer."""
    g = gate("diversity")
    rule = g.rule
    scored = responses.dropna(subset=["oracle"])
    if scored.empty:
        return _result(g, policy, None, None, "not measured: no response has a gold score")
    counts = scored.groupby(prompt)[sample].nunique()
    if counts.min() < rule["samples"]:
        return _result(g, policy, None, None, f"not measured: it needs {rule['samples']} samples per prompt, "
                       f"the run has {int(counts.min())}")
    first = scored[scored[sample] < rule["samples"]]
    distinct = first.groupby(prompt).oracle.nunique()
    value = float((distinct >= rule["distinct_scores"]).mean())
    passed = bool(value >= rule["share_at_least"])
    measured = (f"{value:.1%} of {len(distinct)} prompts get {rule['distinct_scores']} or more different scores among "
                f"{rule['samples']} samples (needs {rule['share_at_least']:.0%})")
    return _result(g, policy, value, passed, measured)


def summariser(summaries: pd.DataFrame, *, policy: str) -> dict:
    """The summariser gate on one policy's held-out summaries (columns ``quality`` and ``coverage``, the
    world oracle's reading of each summary, `repro.world.summaries.summary_details`): their mean
    quality, and the mean share of the posts' main facts they cover."""
    g = gate("summariser")
    rule = g.rule
    scored = summaries.dropna(subset=["quality", "coverage"]) if {"quality", "coverage"} <= set(summaries) else summaries.iloc[:0]
    if scored.empty:
        return _result(g, policy, None, None, "not measured: no summary has an oracle reading")
    quality, coverage = float(scored.quality.mean()), float(scored.coverage.mean())
    passed = bool(quality > rule["quality_above"] and rule["coverage_low"] <= coverage <= rule["coverage_high"])
    measured = (f"mean quality {quality:+.2f} over {len(scored)} summaries (needs above {rule['quality_above']:+.2f}); "
                f"they cover {coverage:.1%} of the main facts (needs {rule['coverage_low']:.0%}-{rule['coverage_high']:.0%})")
    return _result(g, policy, quality, passed, measured, coverage=coverage)


def measure(responses: pd.DataFrame, *, policy: str) -> list[dict]:
    """Every gate on one policy's held-out responses scored by the gold judge."""
    return [capability(responses, policy=policy), diversity(responses, policy=policy)]


def gates_table(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Gate results as the chapters and the front page show them."""
    verdict = {True: "passed", False: "FAILED", None: "not measured"}
    return pd.DataFrame([{"gate": r["id"], "policy": r["policy"], "measured": r["measured"],
                          "result": verdict[r["passed"]]} for r in results],
                        columns=["gate", "policy", "measured", "result"])


def unmet_preconditions(notebook: str, recorded: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The recorded gate results that failed and on which the claims of ``notebook`` rest."""
    applies = {g.id: g.applies_to for g in gates()}
    return [r for r in recorded if r.get("passed") is False and notebook in applies.get(r["id"], ())]

