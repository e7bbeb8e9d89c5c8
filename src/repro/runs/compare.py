"""Did two runs give the same numbers? A comparison of two run stores, stage by stage.

Two stores that ran the same notebooks with the same parameters and seeds hold the same stages (the
keys are hashes of the inputs). For each stage the comparison checks

* its results (the metrics kept in the manifest), exactly: floats are compared bit for bit;
* every artifact: JSON files (``.json``, ``.jsonl``) as data, other files (weights, parquet tables,
  tokenizers) byte for byte;
* each notebook's claims record (``claims/<run id>.json``, the chapter's results table), and that of
  each run of a sweep: every measured value, interval and verdict;
* and each sweep's results table (``sweeps/*/results.parquet``), row by row.

Measurements of time are not results and are left out wherever they appear: the manifests' own
timing fields, and in results and JSON artifacts any key named like a duration or a rate
(``train_runtime``, ``train_samples_per_second``, trl's ``step_time``, ``wall_time_s``, ``seconds``, ...).

Each difference says where it starts, so that a failed determinism check tells float noise from a
changed input: the first differing value of a result or a JSON artifact (its path and both values), and
for safetensors weights how many tensors differ and the largest difference.

``repro compare STORE_A STORE_B`` prints the differences and exits 1 when there are any.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from repro.runs.store import MANIFEST, RunStore

_TIME_SUFFIXES = ("_runtime", "_per_second", "seconds", "_time", "_time_s", "_wall_s", "duration_s")
_TIME_KEYS = frozenset({"wall_s", "wall_time", "runtime", "elapsed", "started", "finished", "timestamp"})


def is_timing_key(key: str) -> bool:
    """A key whose value measures time, not the study (left out of comparisons)."""
    key = key.lower()
    return key in _TIME_KEYS or key.endswith(_TIME_SUFFIXES)


def without_timings(value: Any) -> Any:
    """``value`` with every timing key removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not is_timing_key(str(k))}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def _same_value(a: Any, b: Any) -> bool:
    """Equal values of one type, floats bit for bit (NaN equals NaN: both runs found no value)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _same(a: Any, b: Any) -> bool:
    """Equal data: the same keys and lengths at every depth, and `_same_value` values."""
    return not first_difference(a, b)


def first_difference(a: Any, b: Any, where: str = "") -> str:
    """Where ``a`` and ``b`` first differ and how: ``"[1].train_loss: 4.84 != 4.85"`` ("" when the same:
    the same keys and lengths at every depth, and `_same_value` values)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{where}.{key}: only in {'the first' if key in a else 'the second'}".lstrip(".")
            found = first_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return ""
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{where}[{index}]")
            if found:
                return found
        return "" if len(a) == len(b) else f"{where or 'list'}: {len(a)} != {len(b)} items".lstrip(".")
    return "" if _same_value(a, b) else f"{where.lstrip('.') or 'value'}: {a!r} != {b!r}"


def _weights_difference(a: Path, b: Path) -> str:
    """How two safetensors files differ: the tensors that differ and the largest absolute difference."""
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        ta, tb = load_file(str(a)), load_file(str(b))
    except (SafetensorError, TypeError):  # not safetensors, or a dtype numpy lacks (bfloat16): no more is said
        return ""
    if ta.keys() != tb.keys():
        return "different tensors"
    changed = {name: float(np.max(np.abs(ta[name].astype(np.float64) - tb[name].astype(np.float64))))
               for name in ta if ta[name].shape == tb[name].shape and not np.array_equal(ta[name], tb[name])}
    reshaped = [name for name in ta if ta[name].shape != tb[name].shape]
    if reshaped:
        return f"{len(reshaped)} tensors change shape, e.g. {reshaped[0]}"
    if not changed:
        return "the same tensors; the files differ elsewhere (their metadata)"
    worst = max(changed, key=changed.get)
    return f"{len(changed)} of {len(ta)} tensors differ, at most by {changed[worst]:.3g} ({worst})"


def _read_json(path: Path) -> Any:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


def _artifact(path: Path) -> Any:
    """What is compared of one artifact: its data without timings (JSON), else its SHA-256."""
    if path.suffix in (".json", ".jsonl"):
        try:
            return without_timings(_read_json(path))
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(root: str | Path) -> dict[str, dict]:
    """``{"name/key": {"results": ..., "artifacts": {path: data or hash}}}`` of every finished stage."""
    out = {}
    for stage in RunStore(root).stages():
        artifacts = {str(p.relative_to(stage.path)): _artifact(p)
                     for p in sorted(stage.path.rglob("*")) if p.is_file() and p.name != MANIFEST}
        out[f"{stage.name}/{stage.key}"] = {"results": without_timings(stage.results), "artifacts": artifacts}
    return out


def claims(root: str | Path) -> dict[str, list]:
    """The latest claims record of each notebook in the store, and of each run of a sweep: ``{label: claims}``.

    A chapter's own record is labelled by its notebook; a sweep's run (which executes a chapter's notebook
    and so writes records under its name) by ``"NOTEBOOK in SWEEP/RUN"``. Records written before runs said
    which sweep they belong to count as the chapter's.
    """
    records: dict[str, tuple[int, list]] = {}
    for path in sorted((Path(root) / "claims").glob("*.json")):
        data = json.loads(path.read_text())
        label = data["notebook"] + (f" in {data['sweep_run']}" if data.get("sweep_run") else "")
        stamp = path.stat().st_mtime_ns
        if label not in records or records[label][0] < stamp:
            records[label] = (stamp, data["claims"])
    return {label: found for label, (_, found) in sorted(records.items())}


def sweep_tables(root: str | Path) -> dict[str, list[dict]]:
    """Each sweep's results table in the store (``sweeps/*/results.parquet``), rows in run order,
    timing columns left out."""
    import pandas as pd

    out = {}
    for path in sorted((Path(root) / "sweeps").glob("*/results.parquet")):
        frame = pd.read_parquet(path)
        frame = frame[[c for c in frame.columns if not is_timing_key(str(c))]]
        if "run_id" in frame:
            frame = frame.sort_values("run_id")
        out[path.parent.name] = frame.to_dict("records")
    return out


def differences(a: str | Path, b: str | Path, *, limit: int = 50) -> list[str]:
    """What differs between the stores ``a`` and ``b`` (empty: the same numbers), at most ``limit`` lines."""
    found: list[str] = []
    fa, fb = fingerprint(a), fingerprint(b)
    found += [f"stage {s} only in {a}" for s in sorted(fa.keys() - fb.keys())]
    found += [f"stage {s} only in {b}" for s in sorted(fb.keys() - fa.keys())]
    for stage in sorted(fa.keys() & fb.keys()):
        ra, rb = fa[stage], fb[stage]
        if not _same(ra["results"], rb["results"]):
            keys = sorted(k for k in ra["results"].keys() | rb["results"].keys()
                          if not _same(ra["results"].get(k), rb["results"].get(k)))
            found.append(f"stage {stage}: results differ in {', '.join(keys)} "
                         f"({first_difference(ra['results'], rb['results'])})")
        for name in sorted(ra["artifacts"].keys() | rb["artifacts"].keys()):
            xa, xb = ra["artifacts"].get(name), rb["artifacts"].get(name)
            if _same(xa, xb):
                continue
            if xa is None or xb is None:
                found.append(f"stage {stage}: artifact {name} only in {a if xb is None else b}")
                continue
            how = (_weights_difference(Path(a) / "stages" / stage / name, Path(b) / "stages" / stage / name)
                   if name.endswith(".safetensors") else
                   "" if isinstance(xa, str) and xa.startswith("sha256:") else first_difference(xa, xb))
            found.append(f"stage {stage}: artifact {name} differs" + (f" ({how})" if how else ""))
    ca, cb = claims(a), claims(b)
    for label in sorted(ca.keys() | cb.keys()):
        if not _same(ca.get(label), cb.get(label)):
            found.append(f"claims of {label} differ")
    sa, sb = sweep_tables(a), sweep_tables(b)
    for sweep in sorted(sa.keys() | sb.keys()):
        if not _same(sa.get(sweep), sb.get(sweep)):
            found.append(f"results table of sweep {sweep} differs")
    return found[:limit] + ([f"... and {len(found) - limit} more"] if len(found) > limit else [])
