"""Run several notebooks at once, each after the notebooks it needs (``repro run-all -j N``).

A notebook names the notebooks whose stages it reuses in its metadata, ``{"repro": {"needs": [...]}}``
(10_self_rewarding needs 00_world's M0; 21_rlaif_rl needs 20_rlaif_labeling's labellers). Those form
chains that share no stages, and the chains run side by side: on a small CPU, a tiny model's generation
is bound by Python overhead on one core, so two notebooks with one thread each finish sooner than one
after the other with two threads each. Starting a notebook before the ones it needs would not be
wrong (the run store computes a missing stage either way) but would compute the shared stages twice.
When a slot frees, the ready notebook at the head of the longest remaining chain of work takes it
(`critical_first`, by each notebook's time in the store's last cold run of the profile, else by the
number of notebooks in the chain).

Each notebook runs in its own ``repro run`` process, with its share of the cores for its BLAS and torch
threads (``cores // jobs``, at least 1), its output (a plain line per stage) in ``<store>/logs/<notebook>.log``.
A notebook that fails does not stop the others; the notebooks that need it are skipped, and the failures
are listed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from repro.errors import ReproError

#: What a process caps at its share of the cores (torch reads OMP_NUM_THREADS when it is imported).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class RunAllFailed(ReproError):
    """Some notebooks of a parallel run failed or were skipped; the message lists them."""

    exit_code = 1


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_of_cores(processes: int) -> int:
    """The cores each of ``processes`` processes running side by side may use: ``cores // processes``, at least 1."""
    return max(1, cores() // processes)


def capped_threads(threads: int, environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """The thread variables for a process with ``threads`` cores; a smaller cap already set is kept."""
    capped = {}
    for variable in THREAD_VARIABLES:
        current = environ.get(variable, "")
        capped[variable] = str(min(threads, int(current)) if current.isdigit() and int(current) > 0 else threads)
    return capped


def notebook_needs(notebook: Path) -> list[str]:
    """The notebooks (by stem) that ``notebook``'s metadata says it needs."""
    import nbformat

    meta = nbformat.read(notebook, as_version=4).metadata.get("repro", {})
    needs = meta.get("needs", [])
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise ReproError(f"{notebook}: metadata repro.needs must be a list of notebook names, got {needs!r}")
    return needs


def schedule(needs: dict[str, list[str]]) -> dict[str, list[str]]:
    """``needs`` restricted to the notebooks being run, checked for cycles; keeps the given order.

    Raises:
        ReproError: the needs form a cycle.
    """
    plan = {name: [n for n in wanted if n in needs] for name, wanted in needs.items()}
    done: set[str] = set()
    remaining = dict(plan)
    while remaining:
        ready = [name for name, wanted in remaining.items() if set(wanted) <= done]
        if not ready:
            raise ReproError("the notebooks' repro.needs form a cycle: " + ", ".join(sorted(remaining)))
        for name in ready:
            done.add(name)
            del remaining[name]
    return plan


def critical_first(plan: dict[str, list[str]], seconds: dict[str, float] | None = None) -> list[str]:
    """The notebooks of ``plan`` (from `schedule`), the longest chain of work first: a notebook's chain is its
    own time plus the longest chain among the notebooks that need it. A free slot takes the first ready
    notebook of this order, so the chain that ends last starts first (critical path first): on the smoke
    profile with 2 jobs, 10_self_rewarding's dependents 30_eva -> 31_eva_ablations go before 11_dev_settings.

    ``seconds``: each notebook's time in a cold run (`repro.runs.timings.cold_seconds`); where it lacks one
    of them, each notebook counts 1, so the chain with the most notebooks goes first. Ties keep the given order.
    """
    weights = seconds if seconds and all(seconds.get(name, 0) > 0 for name in plan) else dict.fromkeys(plan, 1.0)
    needed_by = {name: [other for other, wanted in plan.items() if name in wanted] for name in plan}
    chains: dict[str, float] = {}

    def chain(name: str) -> float:
        if name not in chains:
            chains[name] = weights[name] + max((chain(other) for other in needed_by[name]), default=0.0)
        return chains[name]

    return sorted(plan, key=lambda name: -chain(name))


@dataclass
class Outcome:
    """What became of one notebook of a parallel run."""

    notebook: str
    status: str  # "complete", "failed" or "skipped"
    seconds: float = 0.0
    log: Path | None = None
    detail: str = ""


def _last_error(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("repro: error:")]
    return lines[-1].removeprefix("repro: error: ") if lines else f"see {log}"


def run_parallel(notebooks: list[Path], jobs: int, *, logs: Path, profile: str | None = None,
                 output_dir: Path | None = None, store: Path | None = None, rerun: bool = False,
                 seconds: dict[str, float] | None = None, echo=print) -> list[Outcome]:
    """Execute ``notebooks`` with up to ``jobs`` at once, each after the ones it needs (each kept instead
    when nothing it reads has changed, unless ``rerun``: `repro.runs.kept`), the longest chain first
    (`critical_first`, with ``seconds``: each notebook's time in a cold run, where known).

    Returns one `Outcome` per notebook, in the given order.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ReproError(f"jobs (-j) must be a positive integer, got {jobs!r}")
    paths = {nb.stem: nb for nb in notebooks}
    plan = schedule({stem: notebook_needs(nb) for stem, nb in paths.items()})
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **capped_threads(share_of_cores(jobs), os.environ)}
    outcomes: dict[str, Outcome] = {}
    running: dict[str, tuple[subprocess.Popen, float, Path]] = {}
    waiting = critical_first(plan, seconds)
    try:
        while waiting or running:
            for name in list(waiting):
                blocked = [n for n in plan[name] if n in outcomes and outcomes[n].status != "complete"]
                if blocked:
                    waiting.remove(name)
                    outcomes[name] = Outcome(name, "skipped", detail=f"needs {', '.join(blocked)}, which did not finish")
                    echo(f"repro: skipped {name}: {outcomes[name].detail}")
                elif len(running) < jobs and all(outcomes.get(n, Outcome(n, "")).status == "complete" for n in plan[name]):
                    waiting.remove(name)
                    command = [sys.executable, "-m", "repro.cli", "run", str(paths[name])] + (["--rerun"] if rerun else [])
                    for flag, value in (("--profile", profile), ("--output-dir", output_dir), ("--store", store)):
                        if value is not None:
                            command += [flag, str(value)]
                    log = logs / f"{name}.log"
                    with open(log, "w") as out:
                        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
                    running[name] = (process, time.perf_counter(), log)
                    echo(f"repro: started {name} ({env['OMP_NUM_THREADS']} thread(s); log: {log})")
            time.sleep(0.2)
            for name, (process, start, log) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                seconds = time.perf_counter() - start
                if process.returncode == 0:
                    outcomes[name] = Outcome(name, "complete", seconds, log)
                    echo(f"repro: finished {name} in {seconds:.0f} s")
                else:
                    outcomes[name] = Outcome(name, "failed", seconds, log, _last_error(log))
                    echo(f"repro: {name} failed after {seconds:.0f} s: {outcomes[name].detail}")
    finally:
        for process, _, _ in running.values():  # interrupted: stop the notebooks still running
            process.terminate()
        for process, _, _ in running.values():
            process.wait()
    return [outcomes[stem] for stem in paths]


def check(outcomes: list[Outcome]) -> None:
    """Raise `RunAllFailed` listing the notebooks that failed or were skipped."""
    bad = [o for o in outcomes if o.status != "complete"]
    if bad:
        raise RunAllFailed(f"{len(bad)} of {len(outcomes)} notebooks did not finish\n"
                           + "\n".join(f"  {o.notebook}: {o.status}: {o.detail}" for o in bad))
