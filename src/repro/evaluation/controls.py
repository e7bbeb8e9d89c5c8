"""Positive and negative controls: the chapters' pipelines with the oracle's feedback, and with feedback
that carries no information, judged by a rule fixed before they ran (``controls:`` and
``control_rule:`` in ``reported.yaml``).

A control's number is the held-out oracle win rate of the policy it trains against the policy it starts
from, one value per seed, with the claims' 95% Student-t interval over seeds (`repro.evaluation.stats.seed_ci`).
A *positive* control passes when the interval lies above the null (50%): with correct preferences the
learner improves, so the instrument can see an effect. A *negative* control passes when it does not: no
gain appears from feedback without information. The front page shows every control above the claims;
a claim of a chapter whose positive control failed is *not testable here: precondition unmet*
(`repro.evaluation.gates.unmet_preconditions` reads gates and controls alike).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from repro.errors import ReproError
from repro.evaluation import reported
from repro.evaluation.stats import seed_ci

KINDS = ("positive", "negative")


class ControlError(ReproError):
    """The controls of ``reported.yaml`` are inconsistent, or a chapter records one it does not own."""


@dataclass(frozen=True)
class Control:
    """One control: what it runs, why, the policy it trains and the one it starts from, the chapter that
    measures it and the chapters whose claims rest on it."""

    id: str
    kind: str
    statement: str
    why: str
    policy: str
    start: str
    measured_in: str
    applies_to: tuple[str, ...]


def controls() -> list[Control]:
    """Every control of ``reported.yaml``, in its order."""
    out = reported.records("controls", Control, ControlError, applies_to=tuple)
    for c in out:
        if c.kind not in KINDS:
            raise ControlError(f"control {c.id!r}: kind must be one of {KINDS}, got {c.kind!r}")
    return out


def control(control_id: str) -> Control:
    for c in controls():
        if c.id == control_id:
            return c
    raise ControlError(f"no control {control_id!r} in reported.yaml; controls: {', '.join(c.id for c in controls())}")


def judge(control_id: str, win_rates: Sequence[float] | np.ndarray) -> dict:
    """One control's result from its per-seed held-out win rates (the trained policy against its start):
    the mean, the interval, and whether it passed its kind's rule (None when fewer than two seeds
    give an interval)."""
    c, rule = control(control_id), reported.control_rule()
    est = seed_ci(win_rates, level=rule["level"], bounds=(0.0, 1.0))
    null = rule["chance"]
    if est.n < 2:
        passed, measured = None, f"not measured: an interval needs two seeds or more, the run has {est.n}"
    else:
        above = bool(est.low > null)
        passed = above if c.kind == "positive" else not above
        side = "above" if above else "not above"
        measured = (f"win rate of {c.policy} against {c.start}: {est.value:.1%} [{est.low:.1%}, {est.high:.1%}] "
                    f"over {est.n} seeds; {side} {null:.0%}")
    return {"id": c.id, "kind": c.kind, "policy": c.policy, "start": c.start, "value": est.value, "low": est.low,
            "high": est.high, "n": est.n, "passed": passed, "measured": measured}


def measure(notebook: str, rates: Callable[[Control], Sequence[float]]) -> list[dict]:
    """Every control of ``notebook``, judged (`judge`) on ``rates(control)``: the held-out win rates of
    its policy against its start, one per seed that ran both (each chapter knows how to read them)."""
    return [judge(c.id, rates(c)) for c in controls() if c.measured_in == notebook]


def controls_table(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Control results as the chapters and the front page show them."""
    verdict = {True: "passed", False: "FAILED", None: "not measured"}
    return pd.DataFrame([{"control": r["id"], "kind": r["kind"], "measured": r["measured"],
                          "result": verdict[r["passed"]]} for r in results],
                        columns=["control", "kind", "measured", "result"])


def failed_positive(notebook: str, recorded: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The recorded positive controls that failed and on which the claims of ``notebook`` rest."""
    applies = {c.id: c.applies_to for c in controls() if c.kind == "positive"}
    return [r for r in recorded if r.get("passed") is False and notebook in applies.get(r["id"], ())]
