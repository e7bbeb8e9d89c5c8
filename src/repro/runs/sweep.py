"""Sweeps: papermill batch runs of one parameterized notebook over parameter sets and seeds.

A sweep file (``configs/sweeps/NAME.yaml``)::

    notebook: 30_eva                 # name, number prefix or path (a path may be relative to this file)
    description: one line shown in the summary
    seeds: [0, 1, 2]                 # required: every parameter set runs once per seed
    seed_parameter: seeds            # default "seeds"; a list parameter gets [seed], an int one gets seed
    parameters: {steps: 40}          # common overrides for every run (on top of the profile)
    grid:                            # EITHER the cartesian product of these lists (keys in file order) ...
      method: [dpo, simpo]
    runs:                            # ... OR a list of parameter sets, each with an optional name
      - {name: greedy, selection: greedy}
      - {name: uniform, selection: uniform}

Neither ``grid`` nor ``runs``: one parameter set, the common parameters. Every run's parameters are
checked against the notebook and the profile before the first kernel starts, so a typo fails fast.

A *run* is one (parameter set, seed); its id is a short hash of the notebook, its resolved parameters
(seed included) and the profile's name. The notebook must declare ``results_path: str = ""`` and
write a long-format metrics table (parquet) there. The sweep folder (default
``<store>/sweeps/<file stem>-<profile>``)::

    runs/<run id>/NOTEBOOK.ipynb      the executed notebook (kept, also when it failed)
    runs/<run id>/NOTEBOOK.run.json   the papermill record: parameters, status, duration
    runs/<run id>/metrics.parquet     what the notebook wrote
    runs/<run id>/run.log             the kernel's stderr and papermill's messages
    results.parquet                   the metrics of every finished run, with run_id, label, seed, one
                                      column per swept parameter (and name), run_seconds, status
    failures.json                     the runs whose last attempt failed, with their error
    sweep.json                        the summary of the last invocation

Runs execute in ``jobs`` worker processes (spawned; each caps its kernel's BLAS/torch threads at its
share of the cores). A rerun skips the runs already in ``results.parquet`` and retries the failed and
missing ones. ``results.parquet`` is only written by the main process, atomically.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from repro import paths
from repro.errors import ReproError
from repro.progress import input_event
from repro.runs.notebooks import (
    ParameterError,
    execute,
    load_profile,
    notebook_parameters,
    one_line,
    resolve_notebook,
    resolve_parameters,
)
from repro.runs.parallel import capped_threads, share_of_cores
from repro.runs.store import SWEEP_RUN_ENV, params_hash

if TYPE_CHECKING:
    import pandas as pd

RESULTS = "results.parquet"
FAILURES = "failures.json"
SUMMARY = "sweep.json"
METRICS = "metrics.parquet"
LOG = "run.log"
RESULTS_PARAMETER = "results_path"
_KEYS = ("notebook", "description", "seeds", "seed_parameter", "parameters", "grid", "runs")
_RESERVED_COLUMNS = ("run_id", "label", "seed", "run_seconds", "status")
_WORKER_DIED = "worker process died (killed, out of memory or crashed) while running this run"


class SweepError(ReproError):
    """A malformed sweep file, a bad option, or an unusable sweep folder."""


@dataclass(frozen=True)
class Run:
    """One (parameter set, seed) of a sweep."""

    id: str
    label: str
    seed: int
    parameters: dict[str, Any]  # injected into the notebook: resolved, seed included, results_path not
    swept: dict[str, Any]  # the columns this run adds to the results: name (if any), swept parameters
    name: str | None = None


@dataclass
class Sweep:
    """A loaded and validated sweep file: its runs, in file order (parameter set, then seed)."""

    path: Path
    notebook: Path
    description: str
    profile: dict
    seeds: list[int]
    seed_parameter: str
    parameters: dict[str, Any]
    columns: list[str]  # the swept columns: "name" if any run is named, then the swept parameters
    runs: list[Run]

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass
class SweepResult:
    """What :func:`run_sweep` did. ``results`` holds the rows of this sweep's runs (resumed included)."""

    file: Path
    notebook: str
    description: str
    profile: str
    directory: Path
    jobs: int
    total: int
    ran: int  # executed in this call, failed ones included
    resumed: int  # already in results.parquet, skipped
    failed: int
    wall_seconds: float
    mean_run_seconds: float | None  # over the runs that succeeded in this call
    min_run_seconds: float | None
    max_run_seconds: float | None
    started: str
    finished: str
    results: pd.DataFrame = field(repr=False)
    failures: list[dict] = field(default_factory=list)
    status: str = "complete"

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def results_path(self) -> Path:
        return self.directory / RESULTS

    def to_dict(self) -> dict:
        return {
            "file": str(self.file), "notebook": self.notebook, "description": self.description,
            "profile": self.profile, "directory": str(self.directory), "jobs": self.jobs,
            "total": self.total, "ran": self.ran, "resumed": self.resumed, "failed": self.failed,
            "wall_seconds": self.wall_seconds,
            "run_seconds": {"mean": self.mean_run_seconds, "min": self.min_run_seconds,
                            "max": self.max_run_seconds},
            "started": self.started, "finished": self.finished, "status": self.status,
            "failed_runs": [f["label"] for f in self.failures],
        }

    def summary(self) -> str:
        head = f"sweep {self.file.stem}: {self.notebook} [profile {self.profile}]"
        lines = [head + (f" - {self.description}" if self.description else "")]
        lines.append(f"runs: {self.total}  ran: {self.ran}  resumed: {self.resumed}  failed: {self.failed}"
                     + (f"  ({self.status})" if self.status != "complete" else ""))
        for failure in self.failures:
            lines.append(f"  FAILED {failure['label']} ({failure['run_id']}): {failure['error']}")
        timing = f"wall time: {_seconds(self.wall_seconds)} with -j {self.jobs}"
        if self.mean_run_seconds is not None:
            timing += (f"; per run: mean {_seconds(self.mean_run_seconds)} (min {_seconds(self.min_run_seconds)}, "
                       f"max {_seconds(self.max_run_seconds)})")
        lines.append(timing)
        lines.append(f"results: {self.results_path} ({len(self.results)} rows)")
        if self.failures:
            lines.append(f"failures: {self.directory / FAILURES} (rerun to retry them)")
        return "\n".join(lines)


# -- loading ---------------------------------------------------------------------------------------
def sweeps_dir() -> Path:
    return paths.project_root() / "configs" / "sweeps"


def resolve_sweep_file(name: str | os.PathLike) -> Path:
    """A sweep file by path, or by name in ``configs/sweeps/`` (``ablation`` -> ``configs/sweeps/ablation.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (sweeps_dir() / f"{path.name}.yaml", sweeps_dir() / f"{path.name}.yml"):
        if path.suffix not in (".yaml", ".yml") and candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in sweeps_dir().glob("*.y*ml"))) or "(none)"
    raise SweepError(f"no sweep file {str(name)!r}; shipped sweeps: {shipped}")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` (or ``"[0, 1, 2]"``) -> ``[0, 1, 2]``."""
    parts = [p.strip() for p in text.strip().strip("[]").split(",") if p.strip()]
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        seeds = []
    if not seeds:
        raise SweepError(f"--seeds must be comma-separated integers such as 0,1,2; got {text!r}")
    return seeds


def load_sweep(path: str | os.PathLike, *, profile: str | os.PathLike | dict | None = None,
               seeds: list[int] | None = None) -> Sweep:
    """Read, expand and validate a sweep file for a profile; ``seeds`` overrides the file's seeds.

    Raises :class:`SweepError` (exit code 2) naming the file and the key, before anything runs.
    """
    path = resolve_sweep_file(path)
    where = f"sweep {path}"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SweepError(f"{where} is not valid YAML: {one_line(exc)}") from None
    except OSError as exc:
        raise SweepError(f"{where} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{where} must be a mapping with keys {', '.join(_KEYS)}")
    unknown = [str(k) for k in data if k not in _KEYS]
    if unknown:
        raise SweepError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(_KEYS)}")
    if not isinstance(data.get("notebook"), str) or not data["notebook"].strip():
        raise SweepError(f"{where}: 'notebook' is required (a notebook name, number prefix or path)")
    try:
        notebook = _find_notebook(data["notebook"], path.parent)
    except ParameterError as exc:
        raise SweepError(f"{where}: 'notebook': {exc}") from None
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise SweepError(f"{where}: 'description' must be a string")
    seeds = _check_seeds(data.get("seeds") if seeds is None else seeds,
                         f"{where}: 'seeds'" if seeds is None else "the seeds override")
    seed_parameter = data.get("seed_parameter", "seeds")
    if not isinstance(seed_parameter, str) or not seed_parameter:
        raise SweepError(f"{where}: 'seed_parameter' must be a parameter name")
    common = data.get("parameters") or {}
    if not isinstance(common, dict):
        raise SweepError(f"{where}: 'parameters' must be a mapping of parameter: value")
    sets, swept_keys = _parameter_sets(data, where)

    for key in [*common, *swept_keys]:
        section = "parameters" if key in common else ("grid" if "grid" in data else "runs")
        if key == seed_parameter:
            raise SweepError(f"{where}: '{section}' sets {key!r}, the seed parameter; give the seeds in 'seeds'")
        if key == RESULTS_PARAMETER:
            raise SweepError(f"{where}: '{section}' sets {key!r}; the sweep sets it for every run")
    for key in swept_keys:
        if key in _RESERVED_COLUMNS:
            raise SweepError(f"{where}: cannot sweep {key!r}: it is a column of the results table "
                             f"({', '.join(_RESERVED_COLUMNS)})")

    profile = profile if isinstance(profile, dict) else load_profile(profile)
    try:
        declared = notebook_parameters(notebook)
    except ParameterError as exc:
        raise SweepError(f"{where}: {exc}") from None
    if RESULTS_PARAMETER not in declared or declared[RESULTS_PARAMETER].type != "str":
        raise SweepError(f"{where}: notebook {notebook.stem} must declare `{RESULTS_PARAMETER}: str = \"\"` "
                         "in its parameters cell and write its metrics table (parquet) there")
    if seed_parameter not in declared:
        raise SweepError(f"{where}: notebook {notebook.stem} has no parameter {seed_parameter!r} for the seeds "
                         f"(set 'seed_parameter'); valid: {', '.join(declared)}")
    seed_type = declared[seed_parameter].type
    if seed_type not in ("int", "list"):
        raise SweepError(f"{where}: seed parameter {seed_parameter!r} of {notebook.stem} is {seed_type}; "
                         "it must be int or list")

    def seed_value(seed: int) -> Any:
        return [seed] if seed_type == "list" else seed

    try:
        resolve_parameters(notebook, profile, common)
    except ParameterError as exc:
        raise SweepError(f"{where}: 'parameters': {exc}") from None
    runs: list[Run] = []
    named = any(name is not None for name, _ in sets)
    for index, (name, overrides) in enumerate(sets):
        base = name if name is not None else ",".join(f"{k}={_show(v)}" for k, v in overrides.items())
        context = (f"'runs' entry {index + 1}" + (f" ({base})" if base else "") if "runs" in data
                   else f"'grid' point {base}" if "grid" in data else "'parameters'")
        try:
            resolved = resolve_parameters(notebook, profile,
                                          {**common, **overrides, seed_parameter: seed_value(seeds[0])})
        except ParameterError as exc:
            raise SweepError(f"{where}: {context}: {exc}") from None
        swept = {"name": name} if named else {}
        # a key this set leaves alone: its effective value (unknown keys fail on their own set)
        swept.update({k: resolved.get(k, declared[k].default if k in declared else None) for k in swept_keys})
        for seed in seeds:
            params = {**resolved, seed_parameter: seed_value(seed)}
            run_id = params_hash({"notebook": notebook.stem, "parameters": params, "profile": profile["name"]})[:12]
            label = f"{base} seed={seed}" if base else f"seed={seed}"
            runs.append(Run(run_id, label, seed, params, swept, name))
    seen: dict[str, Run] = {}
    for run in runs:
        if run.id in seen:
            raise SweepError(f"{where}: runs {seen[run.id].label!r} and {run.label!r} have the same parameters")
        seen[run.id] = run
    columns = (["name"] if named else []) + swept_keys
    return Sweep(path, notebook, description, profile, seeds, seed_parameter, common, columns, runs)


def _find_notebook(name: str, folder: Path) -> Path:
    beside = (folder / name).expanduser()
    if beside.suffix == ".ipynb" and beside.is_file():
        return beside.resolve()
    return resolve_notebook(name)


def _check_seeds(seeds: Any, what: str) -> list[int]:
    if (not isinstance(seeds, (list, tuple)) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise SweepError(f"{what} must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"{what} has a seed twice: {list(seeds)!r}")
    return list(seeds)


def _parameter_sets(data: dict, where: str) -> tuple[list[tuple[str | None, dict]], list[str]]:
    """``[(name, overrides), ...]`` and the swept keys (file order)."""
    if "grid" in data and "runs" in data:
        raise SweepError(f"{where}: give either 'grid' or 'runs', not both")
    if "grid" in data:
        grid = data["grid"]
        if not isinstance(grid, dict) or not grid:
            raise SweepError(f"{where}: 'grid' must be a mapping of parameter: [values, ...]")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise SweepError(f"{where}: 'grid'.{key} must be a non-empty list of values, got {values!r}")
        keys = [str(k) for k in grid]
        return [(None, dict(zip(keys, combo))) for combo in itertools.product(*grid.values())], keys
    if "runs" in data:
        entries = data["runs"]
        if not isinstance(entries, list) or not entries:
            raise SweepError(f"{where}: 'runs' must be a non-empty list of parameter sets (mappings)")
        sets, keys, names = [], [], set()
        for index, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                raise SweepError(f"{where}: 'runs' entry {index} must be a mapping of parameter: value, "
                                 f"got {entry!r}")
            entry = {str(k): v for k, v in entry.items()}
            name = entry.pop("name", None)
            if name is not None:
                if not isinstance(name, (str, int)) or isinstance(name, bool) or not str(name):
                    raise SweepError(f"{where}: 'runs' entry {index}: 'name' must be a string, got {name!r}")
                name = str(name)
                if name in names:
                    raise SweepError(f"{where}: 'runs' entry {index}: name {name!r} is used twice")
                names.add(name)
            keys.extend(k for k in entry if k not in keys)
            sets.append((name, entry))
        return sets, keys
    return [(None, {})], []


# -- where things go -------------------------------------------------------------------------------
def sweep_dir(path: str | os.PathLike, *, profile: str | os.PathLike | dict | None = None,
              out: str | os.PathLike | None = None, store: str | os.PathLike | None = None) -> Path:
    """``out`` if given, else ``<store root>/sweeps/<sweep file stem>-<profile name>``."""
    if out is not None:
        return Path(out).expanduser().resolve()
    name = profile["name"] if isinstance(profile, dict) else load_profile(profile)["name"]
    root = Path(store).expanduser().resolve() if store is not None else paths.store_root()
    return root / "sweeps" / f"{Path(path).stem}-{name}"


def read_results(directory: str | os.PathLike) -> pd.DataFrame:
    """Every row of a sweep folder's ``results.parquet`` (all the runs ever finished there)."""
    import pandas as pd

    path = Path(directory) / RESULTS
    if not path.is_file():
        raise SweepError(f"no results table in {directory} (run `repro sweep FILE` first)")
    return pd.read_parquet(path)


def read_failures(directory: str | os.PathLike) -> list[dict]:
    """The runs whose last attempt failed (``failures.json``)."""
    return list(_load_failures(Path(directory)).values())


@dataclass(frozen=True)
class RunState:
    run: Run
    status: str  # done | failed | pending
    error: str = ""


def sweep_status(path: str | os.PathLike, *, profile: str | os.PathLike | dict | None = None,
                 seeds: list[int] | None = None, out: str | os.PathLike | None = None,
                 store: str | os.PathLike | None = None) -> tuple[Sweep, Path, list[RunState]]:
    """What a sweep would do, without running anything: each run done, failed or pending."""
    sweep = load_sweep(path, profile=profile, seeds=seeds)
    directory = sweep_dir(sweep.path, profile=sweep.profile, out=out, store=store)
    done = _done_ids(_load_results(directory))
    failures = _load_failures(directory)
    states = []
    for run in sweep.runs:
        if run.id in done:
            states.append(RunState(run, "done"))
        elif run.id in failures:
            states.append(RunState(run, "failed", failures[run.id].get("error", "")))
        else:
            states.append(RunState(run, "pending"))
    return sweep, directory, states


# -- running ---------------------------------------------------------------------------------------
def run_sweep(path: str | os.PathLike, *, profile: str | os.PathLike | dict | None = None, jobs: int = 1,
              out: str | os.PathLike | None = None, store: str | os.PathLike | None = None,
              seeds: list[int] | None = None, progress: bool = False) -> SweepResult:
    """Run every run of a sweep not already finished, in ``jobs`` worker processes.

    A failing run (a cell raising, the kernel or the worker process dying, no metrics written) is
    recorded in ``failures.json`` and the others go on. Returns the summary with the results of all the
    sweep's runs; ``result.ok`` is False if any run failed.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise SweepError(f"jobs (-j) must be a positive integer, got {jobs!r}")
    sweep = load_sweep(path, profile=profile, seeds=seeds)
    directory = sweep_dir(sweep.path, profile=sweep.profile, out=out, store=store)
    try:
        (directory / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot create the sweep folder {directory}: {exc}") from None
    state = _State(sweep, directory, progress)
    todo = [run for run in sweep.runs if run.id not in _done_ids(state.results)]
    state.total_todo = len(todo)
    resumed = len(sweep.runs) - len(todo)
    started = _now()
    start = time.perf_counter()
    status = "interrupted"
    if progress:
        print(f"repro sweep: {sweep.name}: {len(sweep.runs)} runs of {sweep.notebook.stem} [profile "
              f"{sweep.profile['name']}], {resumed} already done, {len(todo)} to run with -j {jobs} -> {directory}",
              file=sys.stderr, flush=True)
    try:
        if todo:
            _execute_all(todo, sweep, directory, jobs, store, state.finish)
        status = "complete"
    finally:
        result = state.result(jobs=jobs, resumed=resumed, started=started,
                              wall=time.perf_counter() - start, status=status)
        _write_json(directory / SUMMARY, result.to_dict())
        input_event(directory / RESULTS)  # what a notebook running this sweep read (`repro.runs.kept`)
    return result


class _State:
    """The main process's bookkeeping: the results table and failures, written after every run."""

    def __init__(self, sweep: Sweep, directory: Path, progress: bool):
        self.sweep, self.directory, self.progress = sweep, directory, progress
        self.results = _load_results(directory)
        self.failures = _load_failures(directory)
        self.seconds_ok: list[float] = []
        self.ran = 0
        self.total_todo = 0

    def finish(self, run: Run, outcome: dict) -> None:
        self.ran += 1
        seconds = round(float(outcome.get("seconds", 0.0)), 2)
        error = outcome.get("error")
        if outcome["status"] == "ok":
            try:
                error = self._append(run, seconds)
            except Exception as exc:  # a metrics file we cannot read or append is the run's failure
                error = _error_line(exc)
        if error is None:
            self.seconds_ok.append(seconds)
            if self.failures.pop(run.id, None) is not None:
                _write_json(self.directory / FAILURES, list(self.failures.values()))
        else:
            self.failures[run.id] = {"run_id": run.id, "label": run.label, "seed": run.seed,
                                     "parameters": run.parameters, "error": error, "duration_s": seconds,
                                     "finished": _now(), "run_dir": str(self.directory / "runs" / run.id)}
            _write_json(self.directory / FAILURES, list(self.failures.values()))
        if self.progress:
            shown = "ok" if error is None else f"FAILED: {error}"
            print(f"repro sweep: [{self.ran}/{self.total_todo}] {run.label}: {shown} ({_seconds(seconds)})",
                  file=sys.stderr, flush=True)

    def _append(self, run: Run, seconds: float) -> str | None:
        """Add a finished run's metrics to results.parquet; an error message if there is nothing to add."""
        import pandas as pd

        metrics = self.directory / "runs" / run.id / METRICS
        if not metrics.is_file():
            return f"the notebook finished but wrote no metrics table at {RESULTS_PARAMETER} ({metrics})"
        frame = pd.read_parquet(metrics).reset_index(drop=True)
        if frame.empty:
            return f"the notebook wrote an empty metrics table ({metrics})"
        added = {"run_id": run.id, "label": run.label, "seed": run.seed,
                 **{k: _cell(v) for k, v in run.swept.items()}}
        for position, (column, value) in enumerate(added.items()):
            if column in frame.columns:
                if not (frame[column] == value).all():
                    return (f"the metrics table has a column {column!r} whose values differ from the sweep's "
                            f"{column} ({value!r}); rename it in the notebook")
                frame = frame.drop(columns=column)
            frame.insert(position, column, value)
        frame["run_seconds"] = seconds
        frame["status"] = "ok"
        if self.results is None:
            table = frame
        else:
            kept = self.results[self.results["run_id"] != run.id]
            table = pd.concat([kept, frame], ignore_index=True) if len(kept) else frame
        table = _harmonize(table)
        _write_parquet(self.directory / RESULTS, table)
        self.results = table
        return None

    def result(self, *, jobs: int, resumed: int, started: str, wall: float, status: str) -> SweepResult:
        import pandas as pd

        sweep = self.sweep
        ids = [run.id for run in sweep.runs]
        if self.results is None:
            results = pd.DataFrame()
        else:  # in the sweep's order (parameter set, then seed), not the order the runs finished in
            order = self.results["run_id"].map({run_id: i for i, run_id in enumerate(ids)})
            results = (self.results[order.notna()].assign(_order=order).sort_values("_order", kind="stable")
                       .drop(columns="_order").reset_index(drop=True))
        failures = [self.failures[i] for i in ids if i in self.failures]
        secs = self.seconds_ok
        return SweepResult(
            file=sweep.path, notebook=sweep.notebook.stem, description=sweep.description,
            profile=sweep.profile["name"], directory=self.directory, jobs=jobs, total=len(sweep.runs),
            ran=self.ran, resumed=resumed, failed=len(failures), wall_seconds=round(wall, 2),
            mean_run_seconds=round(sum(secs) / len(secs), 2) if secs else None,
            min_run_seconds=min(secs) if secs else None, max_run_seconds=max(secs) if secs else None,
            started=started, finished=_now(), results=results, failures=failures, status=status,
        )


def _execute_all(todo: list[Run], sweep: Sweep, directory: Path, jobs: int,
                 store: str | os.PathLike | None, finish: Callable[[Run, dict], None]) -> None:
    """Run ``todo`` in a pool of spawned workers, calling ``finish(run, outcome)`` in this process.

    A worker that dies breaks the whole pool and every run in flight with it: a run alone in flight
    when that happens is the culprit and fails; when several were, each is retried alone once.
    """
    workers = min(jobs, len(todo))
    threads = share_of_cores(workers)
    context = multiprocessing.get_context("spawn")
    store_arg = str(Path(store).expanduser().resolve()) if store is not None else None
    pending: deque[Run] = deque(todo)
    suspects: deque[Run] = deque()
    in_flight: dict[Any, tuple[Run, float, bool]] = {}
    pool: ProcessPoolExecutor | None = None

    def submit(run: Run, alone: bool) -> None:
        run_dir = directory / "runs" / run.id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / METRICS).unlink(missing_ok=True)  # never read a previous attempt's metrics
        future = pool.submit(_run_one, str(sweep.notebook), run.parameters, str(run_dir), sweep.profile, store_arg)
        in_flight[future] = (run, time.perf_counter(), alone)

    try:
        while pending or suspects or in_flight:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                           initializer=_init_worker, initargs=(threads,))
            if suspects:
                if not in_flight:
                    submit(suspects.popleft(), alone=True)
            else:
                while pending and len(in_flight) < workers:
                    submit(pending.popleft(), alone=len(in_flight) == 0 and not pending)
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            broken: list[tuple[Run, float, bool]] = []
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                wait(list(in_flight))  # a broken pool fails every future still in flight at once
                done = set(in_flight)
            for future in [f for f in in_flight if f in done]:
                run, started, alone = in_flight.pop(future)
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool):
                    broken.append((run, started, alone))
                elif exc is not None:  # e.g. the arguments could not be sent to the worker
                    finish(run, {"status": "failed", "error": _error_line(exc),
                                 "seconds": time.perf_counter() - started})
                else:
                    finish(run, future.result())
            if broken:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
                if len(broken) == 1 or all(alone for _, _, alone in broken):
                    for run, started, _ in broken:
                        finish(run, {"status": "failed", "error": _WORKER_DIED,
                                     "seconds": time.perf_counter() - started})
                else:  # which one killed the pool is unknown: retry each alone
                    suspects.extendleft(run for run, _, _ in reversed(broken))
    finally:
        if pool is not None:
            if in_flight:  # interrupted: stop the workers (their kernels exit with their parent)
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(threads: int) -> None:
    """Cap the BLAS/OpenMP/torch threads of this worker's kernels at its share of the cores."""
    os.environ.update(capped_threads(threads, os.environ))


def _run_one(notebook: str, parameters: dict, run_dir: str, profile: dict, store: str | None) -> dict:
    """Execute one run in a worker process; never raises (the outcome says what happened)."""
    start = time.perf_counter()
    # The run's claims record names the sweep run it belongs to (the kernel inherits this worker's environment).
    os.environ[SWEEP_RUN_ENV] = f"{Path(run_dir).parent.parent.name}/{Path(run_dir).name}"
    injected = {**parameters, RESULTS_PARAMETER: str(Path(run_dir) / METRICS)}
    # The kernel inherits this process's stderr: send it (and papermill's messages) to the run's log,
    # so that N kernels do not interleave on the terminal and a crash's last words stay with the run.
    sys.stderr.flush()
    saved = os.dup(2)
    with open(Path(run_dir) / LOG, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        execute(Path(notebook), injected, profile=profile, output_dir=Path(run_dir),
                store=Path(store) if store else None, progress=False)
    except Exception as exc:  # NotebookFailed, a dead kernel (DeadKernelError), a timeout, ...
        return {"status": "failed", "error": _error_line(exc), "seconds": time.perf_counter() - start}
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    return {"status": "ok", "seconds": time.perf_counter() - start}


# -- files -----------------------------------------------------------------------------------------
def _load_results(directory: Path) -> pd.DataFrame | None:
    import pandas as pd

    path = directory / RESULTS
    if not path.is_file():
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise SweepError(f"cannot read {path}: {one_line(exc)} (move it away to start the sweep afresh)") from None
    if "run_id" not in frame.columns or "status" not in frame.columns:
        raise SweepError(f"{path} is not a sweep results table (no run_id/status columns)")
    return frame


def _done_ids(results: pd.DataFrame | None) -> set[str]:
    if results is None:
        return set()
    return set(results.loc[results["status"] == "ok", "run_id"].astype(str))


def _load_failures(directory: Path) -> dict[str, dict]:
    path = directory / FAILURES
    if not path.is_file():
        return {}
    try:
        records = json.loads(path.read_text())
        return {str(r["run_id"]): r for r in records}
    except (ValueError, TypeError, KeyError) as exc:
        raise SweepError(f"{path} is not a list of failure records: {one_line(exc)}") from None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _harmonize(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns that mix types (a parameter that is 1 in one run and "a" in another) become strings,
    so that the table can be written as parquet."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        kinds = {type(v) for v in frame[column] if not _missing(v)}
        if len(kinds) > 1:
            frame[column] = frame[column].map(lambda v: v if _missing(v) else str(v))
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any) -> Any:
    """A parameter value as a results cell: scalars as they are, lists and mappings as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, default=str)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _error_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
