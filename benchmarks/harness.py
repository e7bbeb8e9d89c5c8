"""A small harness for benchmarks that compare two ways of doing the same work, side by side.

The machines this study runs on are shared and noisy, so a benchmark never reports one absolute
number: `compare` runs the baseline A and the candidate B *interleaved* (A, B, A, B, ...), so that
whatever slows the machine down hits both, and reports for each side the rate (work per second) of
every repeat and the ratio B-rate / A-rate of every repeat pair, as min / median / max.

A benchmark's results are one JSON file, ``bench-results/<bench>.json`` (`write_results`), in the
schema that the book reads: `repro.book.bench_schema` (its keys, `check_results`, `target_met`).
`repro.book.benchmarks` renders every such file as a page of the book.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from repro.book.bench_schema import check_results, target_met
from repro.runs.store import git_commit

Work = float | Callable[[Any], float]


def spread(values: Sequence[float]) -> dict[str, float]:
    """``{"min", "median", "max"}`` of a non-empty list of numbers."""
    if not values:
        raise ValueError("spread of no values")
    return {"min": float(min(values)), "median": float(statistics.median(values)), "max": float(max(values))}


def _amount(work: Work, result: Any) -> float:
    amount = work(result) if callable(work) else work
    amount = float(amount)
    if amount <= 0:
        raise ValueError(f"the work done by a call must be positive, got {amount}")
    return amount


def compare(
    name: str,
    a: Callable[[], Any],
    b: Callable[[], Any],
    *,
    repeats: int,
    work_a: Work,
    work_b: Work,
    unit: str,
    baseline: str = "A",
    candidate: str = "B",
    target: float | None = None,
    notes: str = "",
    warmup: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Time ``a`` (the baseline) and ``b`` (the candidate) interleaved, ``repeats`` times each.

    Args:
        name: what is compared (the row's ``comparison``).
        a, b: calls without arguments that each do one unit of the benchmark's work.
        repeats: timed calls of each (after one untimed warm-up call of each when ``warmup``).
        work_a, work_b: the work one call does (tokens, comparisons, ...), either a number or a function
            of the call's return value (to count what was really produced).
        unit: the rate's unit, e.g. ``"tokens/s"``.
        baseline, candidate: names of A and B.
        target: the ratio the candidate should reach (e.g. 20 for "at least 20x"), or None.
        notes: anything a reader needs to interpret the row.
        clock: the timer (`time.perf_counter`; tests pass a fake one).
        log: where to print one line per repeat pair (None: silent).

    Returns:
        One result row (`repro.book.bench_schema`): each side's rate and the per-pair ratio
        B-rate / A-rate, as min / median / max over the repeats.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if warmup:
        a()
        b()
    rates_a: list[float] = []
    rates_b: list[float] = []
    for index in range(repeats):
        for fn, work, rates in ((a, work_a, rates_a), (b, work_b, rates_b)):
            start = clock()
            result = fn()
            elapsed = clock() - start
            if elapsed <= 0:
                raise ValueError(f"{name}: a call took no measurable time ({elapsed} s)")
            rates.append(_amount(work, result) / elapsed)
        if log is not None:
            log(f"  {name} [{index + 1}/{repeats}]: {baseline} {rates_a[-1]:.4g} {unit}, {candidate} "
                f"{rates_b[-1]:.4g} {unit}, ratio {rates_b[-1] / rates_a[-1]:.3g}")
    ratios = [rb / ra for ra, rb in zip(rates_a, rates_b)]
    return {"comparison": name, "baseline": baseline, "candidate": candidate, "unit": unit,
            "baseline_rate": spread(rates_a), "candidate_rate": spread(rates_b), "ratio": spread(ratios),
            "repeats": repeats, "target": None if target is None else float(target), "notes": notes}


def machine_info() -> dict:
    """What the numbers were measured on: CPU count, torch threads, versions, platform, git commit."""
    import torch
    import transformers

    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "git_commit": git_commit()}


def results_document(bench: str, title: str, rows: Sequence[Mapping[str, Any]], *,
                     tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                     machine: Mapping[str, Any] | None = None, when: str | None = None) -> dict:
    """A benchmark's results in the schema of `repro.book.bench_schema` (checked with `check_results`)."""
    doc = {"bench": bench, "title": title, "machine": dict(machine if machine is not None else machine_info()),
           "when": when or datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "rows": [dict(r) for r in rows]}
    if tables:
        doc["tables"] = {name: [dict(r) for r in table] for name, table in tables.items()}
    check_results(doc)
    return doc


def write_results(path: str | os.PathLike, bench: str, title: str, rows: Sequence[Mapping[str, Any]], *,
                  tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                  machine: Mapping[str, Any] | None = None) -> dict:
    """Write a benchmark's results to ``path`` (folders created) and return them."""
    doc = results_document(bench, title, rows, tables=tables, machine=machine)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return doc


def read_results(results_dir: str | os.PathLike) -> list[dict]:
    """Every benchmark's results in a folder (``*.json``), sorted by bench name."""
    folder = Path(results_dir)
    docs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = json.loads(path.read_text())
        check_results(doc)
        docs.append(doc)
    return sorted(docs, key=lambda d: d["bench"])


def format_row(row: Mapping[str, Any]) -> str:
    """One line for a terminal: the comparison, its ratio and target."""
    r = row["ratio"]
    met = target_met(row)
    goal = "" if met is None else f" (target {row['target']:g}x: {'met' if met else 'not met'})"
    return (f"{row['comparison']}: {row['candidate']} / {row['baseline']} = {r['median']:.3g}x "
            f"[{r['min']:.3g} - {r['max']:.3g}]{goal}")


def script_arguments(description: str, default_out: str, argv: Sequence[str] | None = None, *,
                     extra: Callable[[Any], None] | None = None):
    """The options every benchmark script takes: ``--quick`` (a seconds-long smoke run), ``--out``,
    ``--repeats`` and ``--threads`` (torch threads, default 2: the study's machine); parsed."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (seconds), not a measurement")
    parser.add_argument("--out", default=default_out, help=f"results JSON (default {default_out})")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats of each side")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    return args


def finish(args, bench: str, title: str, rows: Sequence[Mapping[str, Any]], *,
           tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> dict:
    """Write a script's results to ``args.out`` and print one line per comparison."""
    doc = write_results(args.out, bench, title + (" (quick smoke run)" if args.quick else ""), rows, tables=tables)
    for row in doc["rows"]:
        print(format_row(row))
    print(f"wrote {args.out}")
    return doc
