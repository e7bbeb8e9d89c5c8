"""The book's benchmarks page: every ``bench-results/*.json`` (written by `make bench`; schema in
`repro.book.bench_schema`) as tables.

For each benchmark: one row per comparison with the ratio candidate / baseline (median, min, max over
the interleaved repeats), both rates, and the target with whether the median reaches it; then the
benchmark's free-form tables, whatever their columns; then the machine and time of the run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repro.book.bench_schema import REQUIRED_ROW_KEYS, target_met

EMPTY = ("No benchmark results yet. Run `make bench` in the checkout (it writes `bench-results/*.json`) "
         "and build the book again.")


def number(value: Any) -> str:
    """A number for a table: about three significant digits, millions and up with an SI prefix (M, G, T)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return cell(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M")):
        if magnitude >= scale:
            return f"{value / scale:.3g} {prefix}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 0.01 or magnitude == 0:
        return f"{value:.3g}"
    return f"{value:.2g}"


def cell(value: Any) -> str:
    """Any value as the text of one markdown table cell."""
    if isinstance(value, (int, float)) or value is None:
        return number(value)
    if isinstance(value, Mapping):
        text = ", ".join(f"{k} {number(v)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(number(v) for v in value)
    else:
        text = str(value)
    return " ".join(text.replace("|", "\\|").split())


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _spread(s: Mapping[str, float]) -> str:
    return f"{number(s['median'])} ({number(s['min'])} - {number(s['max'])})"


def comparison_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The comparisons of one benchmark as a markdown table."""
    header = ["comparison", "candidate / baseline", "ratio median", "ratio min - max", "baseline rate",
              "candidate rate", "unit", "repeats", "target", "met"]
    body = []
    for row in rows:
        r = row["ratio"]
        met = target_met(row)
        body.append([row["comparison"], f"{row['candidate']} / {row['baseline']}", f"{number(r['median'])}x",
                     f"{number(r['min'])}x - {number(r['max'])}x", _spread(row["baseline_rate"]),
                     _spread(row["candidate_rate"]), row["unit"], str(row["repeats"]),
                     "" if row.get("target") is None else f">= {number(row['target'])}x",
                     "" if met is None else ("yes" if met else "no")])
    return markdown_table(header, body)


def free_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A free-form table (list of row dicts) with the union of their keys as columns, in first-seen order."""
    if not rows:
        return "(empty)"
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return markdown_table(columns, [[row.get(c) for c in columns] for row in rows])


def machine_line(machine: Mapping[str, Any]) -> str:
    parts = [f"CPUs {machine.get('cpu_count')}", f"torch threads {machine.get('torch_threads')}",
             f"torch {machine.get('torch')}", f"transformers {machine.get('transformers')}",
             str(machine.get("platform", ""))]
    if machine.get("git_commit"):
        parts.append(f"commit `{str(machine['git_commit'])[:12]}`")
    return ", ".join(p for p in parts if p)


def is_comparison(row: Any) -> bool:
    return isinstance(row, Mapping) and all(k in row for k in REQUIRED_ROW_KEYS)


def bench_section(doc: Mapping[str, Any]) -> str:
    """One benchmark's results as markdown (a second-level heading and its tables). Rows that are not
    comparisons (a benchmark's raw measurements) are shown as a free-form table."""
    rows = list(doc.get("rows") or [])
    comparisons = [r for r in rows if is_comparison(r)]
    others = [r for r in rows if isinstance(r, Mapping) and not is_comparison(r)]
    parts = [f"## {doc.get('title') or doc['bench']}", ""]
    if isinstance(doc.get("notes"), str) and doc["notes"].strip():
        parts += [" ".join(doc["notes"].split()), ""]
    if comparisons:
        parts += [comparison_table(comparisons), ""]
        notes = [(row["comparison"], row["notes"]) for row in comparisons if row.get("notes")]
        parts += [f"- *{name}*: {' '.join(str(text).split())}" for name, text in notes]
        if notes:
            parts.append("")
    tables = dict(doc.get("tables") or {})
    if others:
        tables = {"measurements": others, **tables}
    for name, table in tables.items():
        parts += [f"**{cell(name)}**", "", free_table(table if isinstance(table, list) else [table]), ""]
    machine = doc.get("machine") if isinstance(doc.get("machine"), Mapping) else {}
    parts += [f"Measured {doc.get('when') or '(time not recorded)'} on {machine_line(machine)} "
              f"(`{doc['bench']}.json`).", ""]
    return "\n".join(parts)


def read_documents(results_dir: str | os.PathLike) -> list[dict]:
    """Every ``*.json`` of the results folder, sorted by bench name; a file that is not a JSON object is
    shown as such rather than failing the book."""
    folder = Path(results_dir)
    docs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            doc = {"title": f"{path.name}: unreadable", "notes": f"could not be read: {exc}"}
        if not isinstance(doc, dict):
            doc = {"title": f"{path.name}: unreadable", "notes": "not a JSON object"}
        docs.append({**doc, "bench": str(doc.get("bench") or path.stem)})
    return sorted(docs, key=lambda d: d["bench"])


def benchmarks_page(results_dir: str | os.PathLike) -> str:
    """The markdown of the benchmarks page (a note with the command when there are no results)."""
    docs = read_documents(results_dir)
    if not docs:
        return EMPTY + "\n"
    intro = ("Each comparison ran its baseline and candidate interleaved on the same machine in one run; "
             "ratios are candidate rate / baseline rate per repeat pair, median (min - max). Absolute rates "
             "depend on the machine and its load; the ratios are the result.\n")
    return "\n".join([intro] + [bench_section(doc) for doc in docs])


def write_benchmarks_page(results_dir: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write the benchmarks page (see `benchmarks_page`) to ``out_path``."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(benchmarks_page(results_dir))
    return out
