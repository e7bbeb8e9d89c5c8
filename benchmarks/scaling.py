"""Scaling of one self-rewarding iteration: time and peak memory at 1x, 2x, 4x, 8x the prompts.

One iteration of `repro.studies.self_rewarding` is: new prompts written by the fixed prompt generator
(self-instruct), N candidate responses per prompt from the current model, K self-judgments per
candidate (LLM-as-a-judge), preference pairs, and DPO from M1 to M2. This module runs exactly those
stages (`self_instruct_stage`, `aift_stage`, `preference_stage`) at a multiple of a profile's
``new_prompts``, in a *fresh, temporary* run store so that nothing is reused, and measures them from
inside the process:

- wall time of each stage, and inside the AI-feedback stage the seconds of candidate generation,
  judging and pair building (the stage's own ``seconds`` result);
- peak resident memory of the process (``getrusage(RUSAGE_SELF).ru_maxrss`` at the end), once after
  the setup (imports, loading the cached upstream stages) and once after the iteration.

The start model M1 and everything before it (corpus, M0, EFT) come from a *shared* run store, built
there once if missing with the very functions the notebook uses (same stage keys), and only read by
the measured runs. Each scale runs in its own process (``python -m benchmarks.scaling --scale K``),
so that each peak is that of one iteration at one scale; `run_benchmark` starts them one after the
other and `scaling_table` / `linear_fit` turn their measurements into the report.

The study's parameters are the notebook's own (``notebooks/10_self_rewarding.ipynb``'s parameters
cell) under a profile: ``tiny`` (the defaults) or any other (``smoke`` for a quick check).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from benchmarks import module_env
from benchmarks.harness import machine_info as bench_machine
from repro.runs import RunStore, notebooks
from repro.runs.store import package_versions
from repro.runs.timings import maxrss_mib
from repro.studies.self_rewarding import data as sd
from repro.studies.self_rewarding import stages as sr
from repro.studies.self_rewarding import study

NOTEBOOK = "10_self_rewarding"
#: Columns of the scaling table, in order (the book renders them).
COLUMNS = ("scale", "prompts", "time_s", "time_per_prompt_s", "time_ratio", "peak_rss_mib", "memory_ratio",
           "self_instruct_s", "generation_s", "judging_s", "training_s")


# -- pure logic: memory units, the fit, the table ----------------------------------------------------
def peak_rss_mib() -> float:
    """The peak resident set size of this process so far, in MiB."""
    return maxrss_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def linear_fit(x: list[float], y: list[float]) -> dict[str, float | None]:
    """Least-squares fit ``y = a + b * x``: intercept ``a``, slope ``b`` and the coefficient of
    determination ``r2`` (1 when the points lie on a line; None when y does not vary, or fewer than two
    distinct x)."""
    if len(x) != len(y):
        raise ValueError(f"linear_fit needs as many x as y values, got {len(x)} and {len(y)}")
    n = len(x)
    if n < 2 or len(set(x)) < 2:
        return {"a": None, "b": None, "r2": None, "points": n}
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((v - mx) ** 2 for v in x)
    sxy = sum((u - mx) * (v - my) for u, v in zip(x, y))
    b = sxy / sxx
    a = my - b * mx
    ss_tot = sum((v - my) ** 2 for v in y)
    ss_res = sum((v - (a + b * u)) ** 2 for u, v in zip(x, y))
    return {"a": a, "b": b, "r2": 1 - ss_res / ss_tot if ss_tot > 0 else None, "points": n}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def scaling_table(measurements: list[dict]) -> list[dict]:
    """One row per scale from the child processes' measurements (several per scale with repeats).

    Per scale: the median over repeats of the iteration's time and of its sub-steps, the largest peak
    RSS, the prompts actually used (accepted by self-instruct), time per prompt, and the ratios of
    time and peak memory to the smallest scale's (``time_ratio`` is to be read against ``scale``:
    linear scaling gives ``time_ratio`` close to ``scale`` once the fixed cost is small)."""
    by_scale: dict[int, list[dict]] = {}
    for m in measurements:
        by_scale.setdefault(m["scale"], []).append(m)
    rows = []
    for scale in sorted(by_scale):
        runs = by_scale[scale]
        row: dict[str, Any] = {"scale": scale, "prompts": int(_median([r["prompts"] for r in runs])),
                               "prompts_requested": runs[0]["prompts_requested"],
                               "time_s": _median([r["time_s"] for r in runs])}
        row["time_per_prompt_s"] = row["time_s"] / row["prompts"] if row["prompts"] else None
        row["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        row["setup_rss_mib"] = max(r["setup_rss_mib"] for r in runs)
        for step in ("self_instruct_s", "generation_s", "judging_s", "pairs_s", "training_s"):
            row[step] = _median([r[step] for r in runs])
        for count in ("candidates", "pairs", "training_steps"):
            row[count] = int(_median([r[count] for r in runs]))
        row["repeats"] = len(runs)
        row["time_s_all"] = [r["time_s"] for r in runs]
        rows.append(row)
    if rows:
        first = rows[0]
        for row in rows:
            row["time_ratio"] = _ratio(row["time_s"], first["time_s"])
            row["memory_ratio"] = _ratio(row["peak_rss_mib"], first["peak_rss_mib"])
    return [{**{c: row.get(c) for c in COLUMNS}, **{k: v for k, v in row.items() if k not in COLUMNS}}
            for row in rows]


def fit_table(rows: list[dict]) -> list[dict]:
    """Least-squares lines ``time = a + b * prompts`` for the iteration and each sub-step, and
    ``peak RSS = a + b * prompts`` (b in MiB per prompt): one row each, with R^2."""
    prompts = [r["prompts"] for r in rows]
    out = []
    for quantity in ("time_s", "self_instruct_s", "generation_s", "judging_s", "training_s", "peak_rss_mib"):
        fit = linear_fit(prompts, [r[quantity] for r in rows])
        out.append({"quantity": quantity, "fixed_a": fit["a"], "per_prompt_b": fit["b"], "r2": fit["r2"],
                    "points": fit["points"]})
    return out


def summary_notes(rows: list[dict], fits: list[dict], *, profile: str, base_prompts: int, repeats: int,
                  machine: dict, profile_prompts: int | None = None) -> str:
    """The report's notes in words, every number from the measurements."""
    if not rows:
        return "No scale was measured."
    time_fit = next(f for f in fits if f["quantity"] == "time_s")
    mem_fit = next(f for f in fits if f["quantity"] == "peak_rss_mib")
    last = rows[-1]
    parts = [f"One self-rewarding iteration (self-instruct prompts, {last['candidates'] // max(last['prompts'], 1)} "
             f"candidates per prompt, self-judging, pairs, DPO M1 -> M2) on the {profile} profile, "
             f"{base_prompts} new prompts at 1x, scales {', '.join(str(r['scale']) for r in rows)}, "
             f"{repeats} repeat(s) per scale, each scale in its own process on a fresh run store "
             f"({machine['cpu_count']} CPUs, {machine['torch_threads']} torch threads)."]
    if profile_prompts and profile_prompts != base_prompts:
        parts.append(f"The 1x base is {base_prompts} prompts instead of the profile's {profile_prompts} (to keep the "
                     "whole run short); every other parameter is the profile's.")
    if machine.get("load_average"):
        before, after = machine["load_average"]
        parts.append(f"The machine was shared: its 1-minute load average was {before:.1f} at the start and "
                     f"{after:.1f} at the end, so the times carry that noise.")
    if time_fit["r2"] is not None:
        parts.append(f"Time = {time_fit['fixed_a']:.1f} s + {time_fit['per_prompt_b']:.3f} s x prompts "
                     f"(least squares over {time_fit['points']} scales, R^2 = {time_fit['r2']:.4f}); "
                     f"the fixed cost is {time_fit['fixed_a'] / rows[0]['time_s']:.0%} of the 1x time.")
    parts.append(f"At {last['scale']}x the iteration took {last['time_ratio']:.2f} times the 1x time "
                 f"({last['prompts']} vs {rows[0]['prompts']} prompts) and peaked at {last['peak_rss_mib']:.0f} MiB, "
                 f"{last['memory_ratio']:.2f} times the 1x peak ({rows[0]['peak_rss_mib']:.0f} MiB).")
    if mem_fit["per_prompt_b"] is not None:
        parts.append(f"Peak memory changes by {mem_fit['per_prompt_b'] * 1024:+.1f} KiB per prompt (least squares, "
                     f"R^2 = {'n/a' if mem_fit['r2'] is None else format(mem_fit['r2'], '.2f')}); "
                     f"{rows[0]['setup_rss_mib']:.0f} MiB of the peak is the process before the iteration "
                     "(Python, torch, transformers, trl and the cached upstream stages).")
    short = [r for r in rows if r["prompts"] < r["prompts_requested"]]
    if short:
        parts.append("Self-instruct accepted fewer prompts than requested at "
                     + ", ".join(f"{r['scale']}x ({r['prompts']} of {r['prompts_requested']})" for r in short)
                     + "; the table uses the prompts actually accepted.")
    return " ".join(parts)


# -- the study's parameters ---------------------------------------------------------------------------
def notebook_parameters(profile: str | None = None, overrides: dict | None = None) -> dict[str, Any]:
    """The self-rewarding notebook's parameters under ``profile`` (None: tiny, the notebook's own defaults)."""
    path = notebooks.resolve_notebook(NOTEBOOK)
    declared = notebooks.notebook_parameters(path)
    chosen = notebooks.resolve_parameters(path, notebooks.load_profile(profile), overrides or {})
    return {**{name: p.default for name, p in declared.items()}, **chosen}


def study_spec(p: dict[str, Any]):
    """The `StudySpec` the notebook builds from its parameters."""
    return study.StudySpec.from_parameters(p)


def scaled_spec(spec, base_prompts: int, scale: int):
    """``spec`` with ``base_prompts * scale`` new prompts per iteration (nothing else changes)."""
    if scale < 1 or base_prompts < 1:
        raise ValueError(f"scale and base prompts must be at least 1, got {scale} and {base_prompts}")
    return replace(spec, iteration=replace(spec.iteration, prompts=base_prompts * scale))


# -- the measured run -----------------------------------------------------------------------------------
def start_point(store, spec, seed: int = 0, *, progress: bool | None = False) -> dict:
    """Everything an iteration starts from, from (or built into) ``store`` with the notebook's own
    functions and parameters, so the stage keys are those of the study's seed ``seed``: M1, the prompt
    generator (M0), the seed prompts (the IFT prompts) and the held-out prompts to keep out."""
    inputs = study.prepare_inputs(store, spec, progress=progress)
    spec = spec.seeded(seed)
    held_out = sr.prompt_rows(inputs.eval_prompts)
    ift, ift_key, frames = study.instruction_data(spec, inputs.eval_prompts, inputs.real_data)
    writer = (sr.finetune_stage(store, "sr-sft", inputs.m0, ift, spec.tune, ift_key, progress=progress)
              if spec.eft_writer == "SFT" else inputs.m0)
    eft = sr.eft_stage(store, spec.seed_data, writer, spec.judge, source=spec.eft_source,
                       exclude={r["uid"] for r in ift} | set(held_out.prompt_id), frames=frames,
                       engine=inputs.engine, progress=progress)
    eft_train = sd.eft_records(pd.read_parquet(eft / "eft_train.parquet"))
    m1 = sr.finetune_stage(store, "sr-m1", inputs.m0, ift + eft_train, spec.tune, {**ift_key, "eft": eft.key},
                           upstream=[eft], progress=progress)
    return {"m1": m1, "generator": inputs.prompt_generator, "seed_prompts": [r["prompt"][0]["content"] for r in ift],
            "exclude": set(held_out.prompt), "data_key": ift_key, "spec": spec}


def measure_iteration(shared_store: str | Path, scale: int, *, profile: str | None = None,
                      base_prompts: int | None = None, overrides: dict | None = None, seed: int = 0,
                      threads: int | None = None, work_dir: str | Path | None = None) -> dict:
    """One self-rewarding iteration at ``scale`` times the profile's new prompts, in THIS process:
    the start point from ``shared_store`` (built there if missing), the iteration's stages in a fresh
    temporary store. Returns the measurements (times in seconds, peak RSS in MiB)."""
    if threads:
        torch.set_num_threads(threads)
    params = notebook_parameters(profile, overrides)
    spec = study_spec(params)
    base_prompts = base_prompts or spec.iteration.prompts
    start = start_point(RunStore(shared_store), spec, seed)
    spec = scaled_spec(start["spec"], base_prompts, scale)
    setup_rss = peak_rss_mib()

    with tempfile.TemporaryDirectory(prefix=f"scaling-{scale}x-", dir=work_dir) as tmp:
        store = RunStore(tmp)
        began = time.perf_counter()
        prompts = sr.self_instruct_stage(store, start["generator"], start["seed_prompts"], spec.iteration, 1,
                                         exclude_prompts=start["exclude"], data_key=start["data_key"], progress=False)
        after_prompts = time.perf_counter()
        aift = sr.aift_stage(store, start["m1"], prompts, spec.iteration, 1, progress=False)
        after_aift = time.perf_counter()
        m2 = sr.preference_stage(store, start["m1"], aift, spec.iteration, 1, progress=False)
        ended = time.perf_counter()
        computed = [s.name for s in (prompts, aift, m2) if s.path.is_relative_to(store.root)]
        seconds = aift.results.get("seconds") or {}
        result = {
            "scale": scale, "prompts_requested": spec.iteration.prompts, "prompts": prompts.results["accepted"],
            "self_instruct_rounds": prompts.results["rounds"], "candidates": aift.results["candidates"],
            "judgments": aift.results["parse"]["total"], "pairs": aift.results["pairs"],
            "training_steps": m2.results.get("steps", 0), "time_s": ended - began,
            "self_instruct_s": after_prompts - began, "aift_s": after_aift - after_prompts,
            "generation_s": seconds.get("generation"), "judging_s": seconds.get("judging"),
            "pairs_s": seconds.get("pairs"), "training_s": ended - after_aift,
            "setup_rss_mib": setup_rss, "peak_rss_mib": peak_rss_mib(), "computed": computed,
            "torch_threads": torch.get_num_threads(), "pid": os.getpid(),
        }
    return result


# -- the parent: one process per scale ----------------------------------------------------------------
def machine_info() -> dict:
    """`benchmarks.harness.machine_info` (CPU count, torch threads, versions, platform, commit) with every
    package version of the run store's manifests."""
    return {**bench_machine(), "versions": package_versions()}


def run_child(shared_store: Path, scale: int, *, profile: str | None, base_prompts: int | None,
              overrides: dict | None, seed: int, threads: int | None, work_dir: Path | None) -> dict:
    """``measure_iteration`` in a new Python process (``python -m benchmarks.scaling``); its result."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, "-m", "benchmarks.scaling", "--shared-store", str(shared_store), "--scale", str(scale),
               "--seed", str(seed), "--result", str(out)]
    if profile:
        command += ["--profile", profile]
    if base_prompts:
        command += ["--base-prompts", str(base_prompts)]
    if threads:
        command += ["--threads", str(threads)]
    if work_dir:
        command += ["--work-dir", str(work_dir)]
    if overrides:
        command += ["--overrides", json.dumps(overrides)]
    try:
        subprocess.run(command, check=True, env=module_env())
        result = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    # The same peak as the kernel saw it from outside (largest child so far; a check on the child's own).
    result["children_maxrss_mib"] = maxrss_mib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return result


def prepare_shared(shared_store: Path, *, profile: str | None, overrides: dict | None, seed: int) -> float:
    """Build the start point (M0, EFT, M1) in ``shared_store`` once, in a process of its own, before the
    measured runs (so none of them pays for it); the seconds it took (near 0 when already there)."""
    began = time.perf_counter()
    command = [sys.executable, "-m", "benchmarks.scaling", "--shared-store", str(shared_store), "--prepare-only",
               "--seed", str(seed)]
    if profile:
        command += ["--profile", profile]
    if overrides:
        command += ["--overrides", json.dumps(overrides)]
    subprocess.run(command, check=True, env=module_env())
    return time.perf_counter() - began


def run_benchmark(scales: list[int], *, shared_store: Path, profile: str | None = None,
                  base_prompts: int | None = None, overrides: dict | None = None, repeats: int = 1, seed: int = 0,
                  threads: int | None = None, work_dir: Path | None = None, log=print) -> dict:
    """Every scale, ``repeats`` times, each in its own process; the report (a results document as in
    `repro.book.bench_schema`, its rows the raw measurements rather than comparisons)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if not scales or any(s < 1 for s in scales):
        raise ValueError(f"scales must be positive integers, got {scales}")
    scales = sorted(set(scales))
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    prep = prepare_shared(shared_store, profile=profile, overrides=overrides, seed=seed)
    log(f"start point ready in {shared_store} ({prep:.0f} s)")
    measurements = []
    for repeat in range(repeats):
        for scale in scales:
            m = run_child(shared_store, scale, profile=profile, base_prompts=base_prompts, overrides=overrides,
                          seed=seed, threads=threads, work_dir=work_dir)
            m["repeat"] = repeat
            measurements.append(m)
            log(f"{scale}x (repeat {repeat + 1}/{repeats}): {m['prompts']} prompts, {m['time_s']:.1f} s "
                f"(self-instruct {m['self_instruct_s']:.1f}, generation {m['generation_s']:.1f}, "
                f"judging {m['judging_s']:.1f}, training {m['training_s']:.1f}), peak RSS {m['peak_rss_mib']:.0f} MiB")
    rows = scaling_table(measurements)
    fits = fit_table(rows)
    machine = machine_info()
    if threads:
        machine["torch_threads"] = threads
    if load_before is not None:
        machine["load_average"] = [load_before, os.getloadavg()[0]]
    profile_prompts = study_spec(notebook_parameters(profile, overrides)).iteration.prompts
    base = base_prompts or profile_prompts
    return {
        "bench": "scaling",
        "title": "Scaling of one self-rewarding iteration with the number of prompts",
        "machine": machine,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": measurements,
        "tables": {"scaling": rows, "fit": fits},
        "notes": summary_notes(rows, fits, profile=profile or "tiny", base_prompts=base, repeats=repeats,
                               machine=machine, profile_prompts=profile_prompts),
        "settings": {"profile": profile or "tiny", "base_prompts": base, "scales": scales, "repeats": repeats,
                     "seed": seed, "overrides": overrides or {}, "shared_store": str(shared_store),
                     "start_point_s": prep},
    }


def main(argv: list[str] | None = None) -> int:
    """The child process: measure one scale (or only prepare the start point) and write JSON."""
    parser = argparse.ArgumentParser(description="One measured self-rewarding iteration (a child of "
                                                 "benchmarks/bench_scaling.py).")
    parser.add_argument("--shared-store", required=True)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--profile")
    parser.add_argument("--base-prompts", type=int)
    parser.add_argument("--overrides", help="notebook parameters as a JSON object")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--work-dir")
    parser.add_argument("--result", help="write the measurements here (JSON)")
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args(argv)
    overrides = json.loads(args.overrides) if args.overrides else None
    if args.prepare_only:
        start_point(RunStore(args.shared_store), study_spec(notebook_parameters(args.profile, overrides)), args.seed)
        return 0
    result = measure_iteration(args.shared_store, args.scale, profile=args.profile, base_prompts=args.base_prompts,
                               overrides=overrides, seed=args.seed, threads=args.threads, work_dir=args.work_dir)
    text = json.dumps(result, indent=1)
    if args.result:
        Path(args.result).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
