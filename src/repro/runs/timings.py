"""How long ``repro run-all`` (and so ``make book``) took: one JSON record per invocation, appended to
``<run store>/timings/run-all.jsonl``.

A record holds the start time, the wall seconds, the profile, each notebook's wall seconds, the
stages computed during the run (finished stage folders that were not there before it) and those that
existed before (the most it could reuse), ``cold`` (no finished stage existed before the run), the
status, and the peak resident memory of the largest single process (the notebooks' kernels are this
process's children: `resource.getrusage` ``RUSAGE_CHILDREN`` gives the largest of them).
`benchmarks/bench_book.py` turns the records into the cold and warm times of `make book`.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from repro.runs.store import MANIFEST

TIMINGS = Path("timings") / "run-all.jsonl"


def finished_stages(store_root: str | os.PathLike) -> set[str]:
    """``name/key`` of every finished stage folder in a store (one holding its manifest)."""
    stages = Path(store_root) / "stages"
    if not stages.is_dir():
        return set()
    return {f"{p.parent.parent.name}/{p.parent.name}" for p in stages.glob(f"*/*/{MANIFEST}")}


def maxrss_mib(maxrss: int, system: str | None = None) -> float:
    """``ru_maxrss`` in MiB: Linux reports kibibytes, macOS bytes."""
    system = system or platform.system()
    return maxrss / (1024 * 1024) if system == "Darwin" else maxrss / 1024


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory (MiB) of this process and of its largest finished child process."""
    own = maxrss_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    children = maxrss_mib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"self": round(own, 1), "children": round(children, 1), "largest": round(max(own, children), 1)}


@dataclass
class RunAllTiming:
    """The timing of one ``run-all`` invocation: `start` it, call `notebook_done` after each notebook,
    then `finish` (which appends the record)."""

    store_root: Path
    profile: str
    started: str = ""
    start: float = 0.0
    before: set[str] = field(default_factory=set)
    notebooks: list[dict] = field(default_factory=list)

    @classmethod
    def begin(cls, store_root: str | os.PathLike, profile: str) -> RunAllTiming:
        root = Path(store_root)
        return cls(root, profile, started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   start=time.perf_counter(), before=finished_stages(root))

    def notebook_done(self, name: str, seconds: float, *, kept: bool | None = None) -> None:
        """Record a finished notebook; ``kept``: its executed copy was kept, not executed (`repro.runs.kept`;
        None: not known, as for the notebooks of a parallel run, each in its own process)."""
        self.notebooks.append({"notebook": name, "seconds": round(float(seconds), 2), "kept": kept})

    def record(self, status: str = "complete", jobs: int = 1) -> dict:
        after = finished_stages(self.store_root)
        return {"started": self.started, "wall_s": round(time.perf_counter() - self.start, 2),
                "profile": self.profile, "status": status, "jobs": jobs, "notebooks": list(self.notebooks),
                "stages_computed": len(after - self.before), "stages_existing": len(self.before),
                "cold": not self.before, "peak_rss_mb": peak_rss_mb()}

    def finish(self, status: str = "complete", jobs: int = 1) -> dict:
        """Append this run's record to the store's ``timings/run-all.jsonl``; returns it."""
        record = self.record(status, jobs)
        append_record(self.store_root, record)
        return record

    def summary(self, record: dict) -> str:
        """One line for the terminal about a finished record."""
        jobs = f" with -j {record['jobs']}" if record.get("jobs", 1) > 1 else ""
        return (f"repro: run-all {record['status']} in {record['wall_s']:.0f}s{jobs} ({record['stages_computed']} "
                f"stages computed, {record['stages_existing']} existed before); timing appended to "
                f"{self.store_root / TIMINGS}")


def append_record(store_root: str | os.PathLike, record: dict) -> Path:
    path = Path(store_root) / TIMINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    return path


def latest_cold(records: Sequence[dict], profile: str) -> dict | None:
    """The latest complete cold run of ``profile`` among ``records`` (oldest first, as `read_records` gives them)."""
    cold = [r for r in records if r.get("cold") and r.get("status") == "complete" and r.get("profile") == profile]
    return cold[-1] if cold else None


def cold_seconds(store_root: str | os.PathLike, profile: str) -> dict[str, float]:
    """Each notebook's seconds in the latest complete cold ``run-all`` of ``profile`` in this store (empty
    when there is none): what `repro.runs.parallel.critical_first` orders a parallel run by."""
    record = latest_cold(read_records(store_root), profile)
    return {n["notebook"]: float(n["seconds"]) for n in record.get("notebooks", [])} if record else {}


def read_records(store_root: str | os.PathLike) -> list[dict]:
    """Every record of a store, oldest first (unreadable lines are skipped)."""
    path = Path(store_root) / TIMINGS
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
