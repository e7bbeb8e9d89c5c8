"""`make book` cold against warm, from the timing records of ``repro run-all``
(`repro.runs.timings`): the latest complete cold run (no finished stage before it) and the latest
complete warm run (every stage already there: none computed), their wall times, ratio, peak memory
and the speed issue's targets (cold <= 30 minutes, warm <= 30 seconds on the 2-core machine).

A warm run keeps each executed notebook whose inputs and stages are unchanged (`repro.runs.kept`);
the latest warm run that executed every notebook again (``make book RERUN=1``) is shown beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from repro.runs.timings import latest_cold

COLD_TARGET_S = 30 * 60
WARM_TARGET_S = 30


def is_warm(record: dict) -> bool:
    """A run that found stages and computed none."""
    return not record.get("cold") and record.get("stages_computed") == 0 and record.get("stages_existing", 0) > 0


def latest(records: Sequence[dict], profile: str) -> tuple[dict | None, dict | None]:
    """The latest complete cold run and the latest complete warm run of ``profile``."""
    warm = [r for r in records if r.get("status") == "complete" and r.get("profile") == profile and is_warm(r)]
    return latest_cold(records, profile), (warm[-1] if warm else None)


def kept_count(record: dict) -> int:
    """How many of a run's notebooks were kept rather than executed (unknown counts as executed)."""
    return sum(1 for n in record.get("notebooks", []) if n.get("kept"))


def latest_executed_warm(records: Sequence[dict], profile: str) -> dict | None:
    """The latest complete warm run of ``profile`` that executed every notebook (kept none)."""
    found = [r for r in records if r.get("status") == "complete" and r.get("profile") == profile and is_warm(r)
             and kept_count(r) == 0]
    return found[-1] if found else None


def _point(value: float) -> dict[str, float]:
    return {"min": value, "median": value, "max": value}


def report(records: Sequence[dict], profile: str = "tiny") -> tuple[list[dict], dict[str, list[dict]]]:
    """Rows (warm against cold, when both exist) and tables (targets, the two runs, their notebooks)."""
    cold, warm = latest(records, profile)
    runs = {"cold": (cold, COLD_TARGET_S), "warm": (warm, WARM_TARGET_S)}
    executed = latest_executed_warm(records, profile)
    if executed is not None and executed is not warm:
        runs["warm, every notebook executed again"] = (executed, WARM_TARGET_S)
    targets, notebooks = [], []
    for kind, (record, target) in runs.items():
        row = {"run": kind, "target (s)": target}
        if record is None:
            row.update({"wall (s)": None, "met": None, "note": f"no complete {kind} run of profile {profile} recorded"})
        else:
            row.update({"wall (s)": record["wall_s"], "met": record["wall_s"] <= target, "-j": record.get("jobs", 1),
                        "started": record["started"], "stages computed": record["stages_computed"],
                        "stages existing": record["stages_existing"], "notebooks kept": kept_count(record),
                        "peak RSS of one process (MiB)": record["peak_rss_mb"]["largest"]})
            notebooks += [{"run": kind, **n} for n in record["notebooks"]]
        targets.append(row)
    rows = []
    if cold is not None and warm is not None:
        rows.append({
            "comparison": f"make book ({profile} profile), warm against cold", "baseline": "cold (empty store)",
            "candidate": "warm (every stage present)", "unit": "runs/hour",
            "baseline_rate": _point(3600 / cold["wall_s"]), "candidate_rate": _point(3600 / warm["wall_s"]),
            "ratio": _point(cold["wall_s"] / warm["wall_s"]), "repeats": 1, "target": None,
            "notes": (f"the latest complete runs of `repro run-all --profile {profile}` recorded in the store "
                      f"(timings/run-all.jsonl): one run each, so min = median = max. Targets are absolute wall "
                      f"times (see the targets table): cold <= {COLD_TARGET_S // 60} min, warm <= "
                      f"{WARM_TARGET_S} s.")})
    tables = {"targets": targets}
    if notebooks:
        tables["notebooks"] = notebooks
    return rows, tables
