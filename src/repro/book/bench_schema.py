"""The schema of benchmark results, as the book's benchmarks page (`repro.book.benchmarks`) reads them.

A benchmark's results are one JSON file, ``bench-results/<bench>.json``, written by the harness of the
scripts in ``benchmarks/`` at the project root (`make bench`)::

    {"bench": "generation", "title": "...", "machine": {...}, "when": "2025-...+00:00",
     "rows": [{"comparison", "baseline", "candidate", "unit", "baseline_rate": {min, median, max},
               "candidate_rate": {...}, "ratio": {...}, "repeats", "target", "notes"}, ...],
     "tables": {"name": [{...}, ...]}}          # optional free-form tables

Each row compares a baseline A with a candidate B run interleaved: each side's rate (work per second)
and the ratio B-rate / A-rate of every repeat pair, as min / median / max over the repeats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCHEMA_KEYS = ("bench", "title", "machine", "when", "rows")
ROW_KEYS = ("comparison", "baseline", "candidate", "unit", "baseline_rate", "candidate_rate", "ratio", "repeats",
            "target", "notes")
REQUIRED_ROW_KEYS = ROW_KEYS[:-2]  # target and notes may be left out


def target_met(row: Mapping[str, Any]) -> bool | None:
    """Whether a row's median ratio reaches its target (None when it has no target)."""
    target = row.get("target")
    return None if target is None else bool(row["ratio"]["median"] >= target)


def check_results(doc: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``doc`` follows the results schema."""
    missing = [k for k in SCHEMA_KEYS if k not in doc]
    if missing:
        raise ValueError(f"benchmark results lack {', '.join(missing)}")
    for index, row in enumerate(doc["rows"]):
        lacking = [k for k in REQUIRED_ROW_KEYS if k not in row]
        if lacking:
            raise ValueError(f"row {index} of {doc['bench']} lacks {', '.join(lacking)}")
        for key in ("baseline_rate", "candidate_rate", "ratio"):
            if set(row[key]) != {"min", "median", "max"}:
                raise ValueError(f"row {index} of {doc['bench']}: {key} must have min, median, max")
    tables = doc.get("tables", {})
    if not isinstance(tables, Mapping) or not all(isinstance(t, list) for t in tables.values()):
        raise ValueError(f"{doc['bench']}: tables must map names to lists of rows")
