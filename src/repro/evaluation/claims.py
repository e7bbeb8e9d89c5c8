"""The claims the study tests and how a chapter measures them; the verdicts, computed.

* The claims live in ``repro/evaluation/data/reported.yaml`` (``claims:``), beside the papers' numbers:
  a claim names the reported entries it rests on, says how this study tests it and which notebook
  measures it. No paper number is written anywhere else.
* A study notebook measures each of its claims as one or more *parts* (a claim about every solver
  has one part per solver), each an estimate with a 95% interval, and calls `record_claims`: the parts, with
  the notebook's parameters, profile and commit, go to ``<run store>/claims/<run id>.json``.
* `claim_verdict` turns the parts into the claim's verdict by the book's written rule; the book's front
  page (`repro.book.ledger`) is written from the records of the executed chapters.

The rule, per part (`repro.evaluation.stats.verdict`): *reproduced* when the 95% interval lies
entirely on the paper's side of "no effect", *opposite* when entirely on the other side, otherwise
*not reproduced at this scale* (the seeds cannot tell it from no effect); fewer than two seeds or an
undefined value: *not testable*. Per claim (`claim_verdict`): *reproduced* when every part is,
*partly* when some are, *not reproduced* when none is (noting any part in the opposite direction),
and *not testable at this scale* when no part could be tested.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro import paths
from repro.errors import ReproError
from repro.evaluation import reported
from repro.evaluation.controls import controls as all_controls
from repro.evaluation.gates import gates as all_gates
from repro.evaluation.stats import verdict
from repro.runs.store import SWEEP_RUN_ENV, canonical, git_commit, package_versions

VERDICTS = ("reproduced", "partly", "not reproduced", "not testable at this scale")
#: The verdict of a claim that rests on a gate on the base that failed (`repro.evaluation.gates`).
PRECONDITION_UNMET = "not testable here: precondition unmet"
INTERVALS = {
    "t": "mean over seeds, 95% Student-t interval",
    "bootstrap": "95% percentile bootstrap over the evaluation comparisons",
}
NOT_IN_RUN = "not measured in this run"
_INTERNAL = ("id", "part", "value", "low", "high", "n", "null", "expect", "interval")


class LedgerError(ReproError):
    """The claims ledger is inconsistent (unknown claim id, a claim measured by the wrong notebook)."""


@dataclass(frozen=True)
class Claim:
    """One claim of a paper that the study tests."""

    id: str
    paper: str
    statement: str
    test: str
    notebook: str
    reported: tuple[dict, ...] = ()
    where: str = ""
    extra: dict = field(default_factory=dict)


def claims() -> list[Claim]:
    """Every claim of the ledger, in its order, validated."""
    out, seen = [], set()
    for entry in reported.claim_entries():
        entry = dict(entry)
        cid = entry.pop("id")
        if cid in seen:
            raise LedgerError(f"claim id {cid!r} is listed twice in reported.yaml")
        seen.add(cid)
        refs = tuple(dict(r) for r in entry.pop("reported", ()))
        known = {k: entry.pop(k) for k in ("paper", "statement", "test", "notebook", "where")
                 if k in entry}
        out.append(Claim(id=cid, reported=refs, extra=entry, **known))
    return out


def claim(claim_id: str) -> Claim:
    for c in claims():
        if c.id == claim_id:
            return c
    raise LedgerError(f"no claim {claim_id!r} in the ledger (reported.yaml); claims: "
                      + ", ".join(c.id for c in claims()))


def paper_numbers(c: Claim) -> str:
    """What the paper reported for a claim, from the entries it names (``reported:``)."""
    texts = []
    for ref in c.reported:
        entries = reported.entries(c.paper, ref["metric"])
        keys, label = ref.get("keys"), (ref["label"] + " " if "label" in ref else "")
        for entry in entries:
            unit = entry.get("unit", "")
            suffix = unit if unit == "%" else f" {unit}" if unit else ""
            if "pair" in entry:
                if keys is None or entry["pair"] in keys:
                    texts.append(f"{label}{entry['pair']}: {entry['win']}% win, {entry['loss']}% loss")
            elif "values" in entry:
                for key in keys or entry["values"]:
                    texts.append(f"{label}{key}: {entry['values'][key]}{suffix}")
            elif "model" in entry:
                if keys is None or entry["model"] in keys:
                    texts.append(f"{label}{entry['model']}: {entry['value']}{suffix}")
            elif "low" in entry:
                texts.append(f"{label}{entry['low']}-{entry['high']}{suffix}")
            elif "value" in entry:
                texts.append(f"{label}{entry['value']}{suffix}")
    return "; ".join(texts) or str(c.extra.get("finding", "stated without a number"))


# -- measuring ------------------------------------------------------------------------------------------
def part(claim_id: str, estimate, null: float, expect: str, *, label: str = "", measured: str = "",
         interval: str = "t") -> dict:
    """One measured part of a claim: the estimate, what "no effect" is, the direction the paper
    found, and the part's verdict by the book's rule. ``measured`` is the estimate as the chapter
    shows it (with its unit); ``interval`` says how the interval was computed (`INTERVALS`)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {sorted(INTERVALS)}, got {interval!r}")
    return {"id": claim_id, "part": label, "value": float(estimate.value), "low": float(estimate.low),
            "high": float(estimate.high), "n": int(estimate.n), "null": float(null), "expect": expect,
            "interval": interval, "measured": measured or str(estimate),
            "verdict": verdict(estimate, null, expect=expect)}


def claim_verdict(part_verdicts: Sequence[str]) -> tuple[str, str]:
    """The claim's verdict from its parts' verdicts, and a note (the parts' tally)."""
    tested = [v for v in part_verdicts if v != "not testable"]
    if not tested:
        return "not testable at this scale", "no part could be tested (fewer than two seeds or no value)"
    held = sum(v == "reproduced" for v in tested)
    opposite = sum(v == "opposite" for v in tested)
    note = (f"{held} of {len(part_verdicts)} parts reproduced" if len(part_verdicts) > 1 else "")
    if opposite:
        note = "; ".join(filter(None, [note, f"{opposite} in the opposite direction"]))
    if held == len(part_verdicts):
        return "reproduced", note
    return ("partly" if held else "not reproduced"), note


def _clean(value: Any) -> Any:
    """JSON has no NaN: undefined numbers are written as null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def record_claims(notebook: str, parts: Iterable[Mapping[str, Any]] | Any, *, params: Mapping[str, Any],
                  skipped: Mapping[str, str] | None = None, gates: Sequence[Mapping[str, Any]] = (),
                  controls: Sequence[Mapping[str, Any]] = (), store: Path | None = None) -> Path:
    """Write a notebook's measured claims into the run store (``claims/<run id>.json``).

    ``parts``: rows made by `part` (a list of dicts or a DataFrame with their columns; other columns
    are ignored). Every claim of the ledger that belongs to ``notebook`` must be among them or in ``skipped`` (claim id -> why this run's parameters leave it out), and no other
    claim may be: a chapter cannot silently drop or steal a claim. ``gates``: the gates on the base that
    this chapter measured (`repro.evaluation.gates.measure`), kept beside the claims; ``controls``: its
    controls (`repro.evaluation.controls.judge`), likewise. The front page applies both to the claims
    that rest on them.

    A run that a sweep executed says so (``sweep_run``: the sweep's folder and the run's id), so that its
    record is never taken for the chapter's own.
    """
    for what, rows_, home in (("gates", gates, {g.id: g.measured_in for g in all_gates()}),
                              ("controls", controls, {c.id: c.measured_in for c in all_controls()})):
        if stray := sorted(r["id"] for r in rows_ if home.get(r["id"]) != notebook):
            raise LedgerError(f"{notebook} recorded {what} that reported.yaml does not give it: {', '.join(stray)}")
    rows = parts.to_dict("records") if hasattr(parts, "to_dict") else [dict(p) for p in parts]
    rows = [r for r in rows if isinstance(r.get("id"), str) and r["id"]]  # a DataFrame has NaN for no id
    mine = [c.id for c in claims() if c.notebook == notebook]
    measured, skipped = {r["id"] for r in rows}, dict(skipped or {})
    if stray := sorted((measured | set(skipped)) - set(mine)):
        raise LedgerError(f"{notebook} measured claims that the ledger does not give it: {', '.join(stray)}")
    if missing := sorted(set(mine) - measured - set(skipped)):
        raise LedgerError(f"{notebook} did not measure its claims: {', '.join(missing)}")
    keep = ("part", "value", "low", "high", "n", "null", "expect", "interval", "measured", "verdict")
    out = []
    for cid in (c for c in mine if c in measured):  # in the ledger's order
        mine_parts = [{k: _clean(r.get(k)) for k in keep} for r in rows if r["id"] == cid]
        verdict, note = claim_verdict([p["verdict"] for p in mine_parts])
        out.append({"id": cid, "verdict": verdict, "note": note, "parts": mine_parts})
    out += [{"id": cid, "verdict": NOT_IN_RUN, "note": why, "parts": []} for cid, why in skipped.items()
            if cid not in measured]
    run_id = os.environ.get("REPRO_RUN_ID") or f"{notebook}-interactive"
    params = canonical(dict(params))
    payload = {"run_id": run_id, "notebook": notebook, "profile": os.environ.get("REPRO_PROFILE", "tiny"),
               **({"sweep_run": os.environ[SWEEP_RUN_ENV]} if os.environ.get(SWEEP_RUN_ENV) else {}),
               "parameters": params, "seeds": params.get("seeds", params.get("seed")),
               "git_commit": git_commit(), "versions": package_versions(), "claims": out,
               "gates": [{k: _clean(v) for k, v in g.items()} for g in gates],
               "controls": [{k: _clean(v) for k, v in c.items()} for c in controls]}
    folder = Path(store or paths.store_root()) / "claims"
    target = folder / f"{run_id}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=str))
        os.replace(tmp, target)
    except OSError as exc:
        raise LedgerError(f"cannot write the claims of {notebook} to {target}: {exc.strerror or exc}") from exc
    return target


def claims_table(frame):
    """A chapter's claims table without the ledger's bookkeeping columns (`part`'s numbers)."""
    return frame.drop(columns=[c for c in _INTERNAL if c in frame.columns])
