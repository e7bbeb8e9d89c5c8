"""The book's front page: the claims ledger, from the claims that the executed chapters recorded
(`repro.evaluation.claims`): the gates on the base and the controls, then every claim, what each paper
reported, what we measured, and the verdict. A claim that rests on a gate that failed
(`repro.evaluation.gates`) or on a positive control that failed (`repro.evaluation.controls`) is shown
as not testable here, with the gate or control named and the measurement's own verdict in the note."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repro.evaluation import reported
from repro.evaluation.claims import NOT_IN_RUN, PRECONDITION_UNMET, VERDICTS, claims, paper_numbers
from repro.evaluation.controls import controls_table, failed_positive
from repro.evaluation.gates import gates_table, unmet_preconditions

NOT_RUN = "not measured yet"


def executed_records(generated: Path) -> dict[str, dict]:
    """For each executed chapter in ``generated`` (its ``NAME.run.json``), the claims record its run
    wrote into the run store, by notebook name (chapters whose run wrote none are left out)."""
    found = {}
    for run_file in sorted(Path(generated).glob("*.run.json")):
        run = json.loads(run_file.read_text())
        if run.get("status") != "complete" or not run.get("run_id") or not run.get("store"):
            continue
        path = Path(run["store"]) / "claims" / f"{run['run_id']}.json"
        if path.is_file():
            found[run["notebook"]] = json.loads(path.read_text())
    return found


def recorded_gates(records: Mapping[str, dict]) -> list[dict]:
    """The gate results that the executed chapters recorded, in chapter order."""
    return [g for _, record in sorted(records.items()) for g in record.get("gates", [])]


def recorded_controls(records: Mapping[str, dict]) -> list[dict]:
    """The control results that the executed chapters recorded, in chapter order."""
    return [c for _, record in sorted(records.items()) for c in record.get("controls", [])]


def ledger_rows(generated: Path) -> list[dict]:
    """One row per claim of the ledger: the claim, the paper's numbers, ours and the verdict."""
    return claim_rows(executed_records(generated))


def claim_rows(records: Mapping[str, dict]) -> list[dict]:
    """`ledger_rows` of the chapters' claims records (`executed_records`)."""
    gate_results, control_results = recorded_gates(records), recorded_controls(records)
    rows = []
    for c in claims():
        measured = {m["id"]: m for m in records.get(c.notebook, {}).get("claims", [])}
        info = reported.paper(c.paper)
        row = {"id": c.id, "paper": f"{info['authors']} {info['year']}", "paper_key": c.paper,
               "statement": c.statement, "reported": paper_numbers(c), "where": c.where, "test": c.test,
               "notebook": c.notebook, "parts": [], "profile": records.get(c.notebook, {}).get("profile")}
        if c.id in measured:
            row.update(verdict=measured[c.id]["verdict"], note=measured[c.id]["note"], parts=measured[c.id]["parts"])
            unmet = [f"gate {g['id']}" for g in unmet_preconditions(c.notebook, gate_results)]
            unmet += [f"positive control {r['id']}" for r in failed_positive(c.notebook, control_results)]
            if row["parts"] and unmet:
                own = row["verdict"] + (f" ({row['note']})" if row["note"] else "")
                row.update(verdict=PRECONDITION_UNMET, note=f"{', '.join(unmet)} failed; the measurement alone: {own}")
        else:
            row.update(verdict=NOT_RUN, note=f"run `repro run {c.notebook}`")
        rows.append(row)
    return rows


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def ours_text(parts: Sequence[Mapping[str, Any]]) -> str:
    """A claim's measured parts in words, each with how its interval was computed and on how much."""
    if not parts:
        return "-"

    def one(p):
        text = str(p["measured"])
        if p.get("interval") == "bootstrap":
            text += f" (bootstrap over {p['n']} comparisons)"
        elif "seeds" not in text:
            text += f" ({p['n']} seeds)"
        return f"{p['part']}: {text}" if p.get("part") else text

    return "; ".join(one(p) for p in parts)


def ledger_page(generated: Path, chapters: Path = Path("/book/generated")) -> str:
    """The ledger as MyST Markdown: the gates on the base, a tally of verdicts and one table, each claim
    linking to the chapter that measured it and to the executed notebook. ``chapters``: where the
    executed notebooks are, as a path from the book's source root."""
    records = executed_records(generated)
    rows = claim_rows(records)
    tally = {v: sum(r["verdict"] == v for r in rows) for v in (*VERDICTS, PRECONDITION_UNMET, NOT_IN_RUN, NOT_RUN)}
    profiles = sorted({r["profile"] for r in rows if r["profile"]})
    lines = [*gates_section(recorded_gates(records)), *controls_section(recorded_controls(records)),
             f"Of the **{len(rows)} claims** this study tests, "
             + ", ".join(f"**{n}** {v}" for v, n in tally.items() if n) + "."
             + (f" Profile of the executed chapters: {', '.join(f'`{p}`' for p in profiles)}." if profiles else ""),
             "",
             "| # | Claim | The paper | Ours (95% CI) | Verdict | Measured in |",
             "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        where = f", {_cell(r['where'])}" if r["where"] else ""
        chapter = f"{{doc}}`chapter <{chapters}/{r['notebook']}>`"
        download = f"{{download}}`notebook <{chapters}/{r['notebook']}.ipynb>`"
        verdict = f"**{r['verdict']}**" + (f"<br>{_cell(r['note'])}" if r["note"] else "")
        lines.append(
            f"| {i} | {_cell(r['statement'])}<br>*{_cell(r['paper'])}{where}* "
            f"| {_cell(r['reported'])} | {_cell(ours_text(r['parts']))} | {verdict} "
            f"| {chapter} · {download} |"
        )
    return "\n".join(lines) + "\n"


def gates_section(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The gates on the base as Markdown lines (a table), or a line saying they were not measured yet."""
    if not results:
        return ["**Gates on the base**: not measured yet (run `repro run 10_self_rewarding`).", ""]
    table = gates_table(results)
    lines = ["**Gates on the base** (preconditions of the claims; `reported.yaml` gives each its reason):", "",
             "| Gate | Policy | Measured | Result |", "|---|---|---|---|"]
    lines += [f"| {_cell(r.gate)} | {_cell(r.policy)} | {_cell(r.measured)} | **{r.result}** |" for r in table.itertuples()]
    return lines + [""]


def controls_section(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The controls as Markdown lines (a table), or a line saying none was measured yet."""
    if not results:
        return ["**Controls**: not measured yet (run the study chapters: `repro run-all`).", ""]
    table = controls_table(results)
    lines = ["**Controls** (the pipelines with the oracle's feedback, and with feedback that carries no "
             "information; `reported.yaml` gives each its reason and the rule):", "",
             "| Control | Kind | Measured | Result |", "|---|---|---|---|"]
    lines += [f"| {_cell(r.control)} | {r.kind} | {_cell(r.measured)} | **{r.result}** |" for r in table.itertuples()]
    return lines + [""]


def write_ledger_page(root: Path) -> Path:
    """Write ``book/generated/ledger.md`` (included by the front page) from the executed chapters."""
    generated = root / "book" / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    target = generated / "ledger.md"
    target.write_text(ledger_page(generated))
    return target
