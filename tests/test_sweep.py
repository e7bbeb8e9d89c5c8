"""Sweeps: expansion and validation of sweep files, and papermill batch runs of a throwaway notebook
(failures recorded, reruns resume, worker processes, a kernel or a worker that dies)."""

import json
import os

import pandas as pd
import pytest
from test_runner import make_notebook as make_demo_notebook

from repro.cli import main
from repro.errors import ReproError
from repro.runs.sweep import (
    SweepError,
    _init_worker,
    load_sweep,
    read_results,
    run_sweep,
    sweep_dir,
    sweep_status,
)

PARAMS = """\
x: int = 1
method: str = "dpo"
seed: int = 0
seeds: list = [0]
results_path: str = ""
mode: str = "ok"  # ok, fail, flaky, die, kill_worker, no_metrics
"""

# `flaky` fails while a file FAIL lies in the sweep folder (results_path = <sweep>/runs/<id>/metrics.parquet).
BODY = """\
import os
import signal
from pathlib import Path

import pandas as pd

if mode == "fail" or (mode == "flaky" and (Path(results_path).parents[2] / "FAIL").exists()):
    raise ValueError(f"no good with x={x}")
if mode == "die":
    os._exit(1)
if mode == "kill_worker":
    assert b"spawn_main" in Path(f"/proc/{os.getppid()}/cmdline").read_bytes()  # never the test process
    os.kill(os.getppid(), signal.SIGKILL)
    os._exit(1)
Path(results_path).with_name("sweep_run.txt").write_text(os.environ.get("REPRO_SWEEP_RUN", ""))
if mode != "no_metrics":
    pd.DataFrame({"metric": ["score", "omp_threads"],
                  "value": [10.0 * x + seeds[0], float(os.environ.get("OMP_NUM_THREADS", -1))]}
                 ).to_parquet(results_path)
"""


def make_notebook(folder, stem="demo", params=PARAMS):
    return make_demo_notebook(folder, stem, body=BODY, params=params)


@pytest.fixture()
def folder(tmp_path):
    make_notebook(tmp_path)
    return tmp_path


def write(folder, text, name="sw"):
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


TINY = {"name": "tiny", "defaults": {}, "notebooks": {}}


# -- loading and validation (no kernel) ------------------------------------------------------------
def test_grid_is_the_cartesian_product_in_file_order_times_the_seeds(folder):
    path = write(folder, "notebook: demo.ipynb\nseeds: [0, 1]\nparameters: {mode: ok}\n"
                         "grid: {method: [dpo, simpo], x: [1, 2]}\n")
    sweep = load_sweep(path)
    assert sweep.columns == ["method", "x"] and sweep.seeds == [0, 1]
    assert [r.label for r in sweep.runs] == [
        "method=dpo,x=1 seed=0", "method=dpo,x=1 seed=1", "method=dpo,x=2 seed=0", "method=dpo,x=2 seed=1",
        "method=simpo,x=1 seed=0", "method=simpo,x=1 seed=1", "method=simpo,x=2 seed=0", "method=simpo,x=2 seed=1"]
    run = sweep.runs[3]
    assert run.parameters == {"mode": "ok", "method": "dpo", "x": 2, "seeds": [1]}  # a list parameter: [seed]
    assert run.swept == {"method": "dpo", "x": 2} and run.seed == 1
    ids = [r.id for r in sweep.runs]
    assert len(set(ids)) == 8 and all(len(i) == 12 for i in ids)
    assert ids == [r.id for r in load_sweep(path).runs]  # stable
    other = load_sweep(path, profile={**TINY, "name": "other"})
    assert not set(ids) & {r.id for r in other.runs}  # the profile is part of the id


def test_runs_entries_with_names_and_a_seeds_override(folder):
    path = write(folder, "notebook: demo.ipynb\nseeds: [0, 1]\n"
                         "runs:\n  - {name: big, x: 5}\n  - {method: simpo}\n")
    sweep = load_sweep(path, seeds=[7])
    assert [r.label for r in sweep.runs] == ["big seed=7", "method=simpo seed=7"]
    assert sweep.columns == ["name", "x", "method"]
    # unset swept parameters show their effective value (here the notebook's default)
    assert sweep.runs[0].swept == {"name": "big", "x": 5, "method": "dpo"}
    assert sweep.runs[1].swept == {"name": None, "x": 1, "method": "simpo"}
    assert sweep.runs[1].parameters == {"method": "simpo", "seeds": [7]}


def test_an_int_seed_parameter_and_a_single_parameter_set(folder):
    path = write(folder, "notebook: demo.ipynb\nseeds: [3, 4]\nseed_parameter: seed\nparameters: {x: 2}\n")
    sweep = load_sweep(path)
    assert [r.label for r in sweep.runs] == ["seed=3", "seed=4"] and sweep.columns == []
    assert sweep.runs[0].parameters == {"x": 2, "seed": 3}


@pytest.mark.parametrize("text,message", [
    ("[1, 2]\n", "must be a mapping with keys notebook, description, seeds"),
    ("notebook: [unclosed\n", "is not valid YAML"),
    ("notebook: demo.ipynb\nseeds: [0]\nsteps: 3\n", "unknown key 'steps'; valid: notebook, "),
    ("seeds: [0]\n", "'notebook' is required"),
    ("notebook: nope\nseeds: [0]\n", "'notebook': unknown notebook 'nope'"),
    ("notebook: demo.ipynb\n", "'seeds' must be a non-empty list of integers, got None"),
    ("notebook: demo.ipynb\nseeds: []\n", "'seeds' must be a non-empty list of integers"),
    ("notebook: demo.ipynb\nseeds: [0, a]\n", "'seeds' must be a non-empty list of integers"),
    ("notebook: demo.ipynb\nseeds: [0]\nruns: {x: 1}\n", "'runs' must be a non-empty list"),
    ("notebook: demo.ipynb\nseeds: [0]\nruns: [x]\n", "'runs' entry 1 must be a mapping"),
    ("notebook: demo.ipynb\nseeds: [0]\nruns: [{x: 1}]\ngrid: {x: [1]}\n", "either 'grid' or 'runs', not both"),
    ("notebook: demo.ipynb\nseeds: [0]\ngrid: {x: 1}\n", "'grid'.x must be a non-empty list"),
    ("notebook: demo.ipynb\nseeds: [0]\ngrid: {xx: [1]}\n",
     "'grid' point xx=1: demo has no parameter 'xx'; valid: x, method"),
    ("notebook: demo.ipynb\nseeds: [0]\nruns: [{x: 1}, {name: b, x: two}]\n",
     "'runs' entry 2 (b): demo: parameter 'x' (-p) must be int, got str"),
    ("notebook: demo.ipynb\nseeds: [0]\nparameters: {xx: 1}\n", "'parameters': demo has no parameter 'xx'"),
    ("notebook: demo.ipynb\nseeds: [0]\ngrid: {seeds: [[0]]}\n", "'grid' sets 'seeds', the seed parameter"),
    ("notebook: demo.ipynb\nseeds: [0]\nparameters: {results_path: a}\n", "'parameters' sets 'results_path'"),
    ("notebook: demo.ipynb\nseeds: [0]\nseed_parameter: sed\n", "has no parameter 'sed' for the seeds"),
    ("notebook: demo.ipynb\nseeds: [0]\nruns: [{x: 1}, {x: 1}]\n", "have the same parameters"),
    ("notebook: demo.ipynb\nseeds: [0]\nruns: [{name: a}, {name: a, x: 2}]\n", "name 'a' is used twice"),
    ("notebook: demo.ipynb\nseeds: [0]\ngrid: {seed: [1, 2]}\n", "cannot sweep 'seed'"),
])
def test_bad_sweep_files_name_the_file_and_the_key(folder, text, message):
    path = write(folder, text)
    with pytest.raises(ReproError, match="^sweep .*sw.yaml") as info:
        load_sweep(path)
    assert message in str(info.value) and info.value.exit_code == 2


def test_the_notebook_must_declare_results_path(tmp_path):
    make_notebook(tmp_path, params=PARAMS.replace('results_path: str = ""\n', ""))
    path = write(tmp_path, "notebook: demo.ipynb\nseeds: [0]\n")
    with pytest.raises(SweepError, match='must declare `results_path: str = ""`'):
        load_sweep(path)


def test_a_typo_in_any_run_fails_before_anything_runs(folder):
    path = write(folder, "notebook: demo.ipynb\nseeds: [0]\nruns: [{x: 1}, {x: 2}, {name: typo, mthod: dpo}]\n")
    with pytest.raises(SweepError, match="'runs' entry 3 \\(typo\\): demo has no parameter 'mthod'"):
        run_sweep(path, store=folder / "store")
    assert not (folder / "store").exists()


def test_sweep_dir_defaults_to_the_store_and_the_profile(folder, monkeypatch):
    monkeypatch.setenv("REPRO_STORE", str(folder / "env-store"))
    assert sweep_dir("configs/sweeps/abc.yaml") == folder / "env-store" / "sweeps" / "abc-tiny"
    assert sweep_dir("abc.yaml", profile=TINY, store=folder / "s") == folder / "s" / "sweeps" / "abc-tiny"
    assert sweep_dir("abc.yaml", out=folder / "here") == folder / "here"


def test_workers_cap_their_threads_at_their_share_of_the_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    _init_worker(4)
    assert os.environ["OMP_NUM_THREADS"] == "1"  # a smaller setting is kept
    assert os.environ["MKL_NUM_THREADS"] == os.environ["OPENBLAS_NUM_THREADS"] == "4"


@pytest.mark.parametrize("argv,message", [
    (["--seeds", "a,b"], "--seeds must be comma-separated integers"),
    (["-j", "0"], "jobs (-j) must be a positive integer"),
    (["--profile", "nope"], "unknown profile 'nope'"),
])
def test_cli_bad_input_is_one_line_and_exit_code_2(folder, capsys, argv, message):
    path = write(folder, "notebook: demo.ipynb\nseeds: [0]\n")
    assert main(["sweep", str(path), "--store", str(folder / "store"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("repro: error: ") and message in err and "\n" not in err
    assert main(["sweep", str(folder / "missing.yaml")]) == 2
    assert "no sweep file" in capsys.readouterr().err


# -- running (papermill) ---------------------------------------------------------------------------
@pytest.mark.slow
def test_failures_are_recorded_the_others_finish_and_a_rerun_retries_only_them(folder, monkeypatch):
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    path = write(folder, "notebook: demo.ipynb\ndescription: flaky demo\nseeds: [0, 1]\n"
                         "runs:\n  - {name: good, x: 2}\n  - {name: flaky, mode: flaky}\n")
    out = folder / "out"
    out.mkdir()
    (out / "FAIL").touch()

    first = run_sweep(path, jobs=2, out=out)
    assert (first.total, first.ran, first.resumed, first.failed, first.ok) == (4, 4, 0, 2, False), first.failures
    failures = json.loads((out / "failures.json").read_text())
    assert sorted((f["label"], f["seed"]) for f in failures) == [("flaky seed=0", 0), ("flaky seed=1", 1)]
    assert all(f["error"].startswith("NotebookFailed: demo failed in cell") and "ValueError: no good with x=1"
               in f["error"] and f["duration_s"] > 0 and f["parameters"]["mode"] == "flaky" for f in failures)
    results = read_results(out)
    assert list(results.columns[:6]) == ["run_id", "label", "seed", "name", "x", "mode"]
    assert {"metric", "value", "run_seconds", "status"} <= set(results.columns)
    scores = results[results.metric == "score"]
    assert sorted(zip(scores.seed, scores.value)) == [(0, 20.0), (1, 21.0)] and set(scores.name) == {"good"}
    threads = results[results.metric == "omp_threads"].value
    assert set(threads) == {float(max(1, os.cpu_count() // 2))}  # each of 2 workers: its share of the cores
    summary = json.loads((out / "sweep.json").read_text())
    assert (summary["total"], summary["ran"], summary["failed"], summary["jobs"]) == (4, 4, 2, 2)
    assert summary["run_seconds"]["min"] > 0 and summary["finished"]
    assert (out / "runs" / failures[0]["run_id"] / "demo.ipynb").exists()  # the failed notebook is kept
    for run_id in set(results.run_id):  # each kernel knew its run, for the claims record it may write
        assert (out / "runs" / run_id / "sweep_run.txt").read_text() == f"out/{run_id}"
    good_notebooks = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/demo.ipynb")
                      if p.parent.name in set(results.run_id)}

    (out / "FAIL").unlink()
    second = run_sweep(path, jobs=1, out=out)
    assert (second.total, second.ran, second.resumed, second.failed) == (4, 2, 2, 0)
    assert json.loads((out / "failures.json").read_text()) == []  # the failures that succeeded are gone
    assert all(p.stat().st_mtime_ns == t for p, t in good_notebooks.items())  # not run again
    assert list(second.results.drop_duplicates("run_id").label) == [
        "good seed=0", "good seed=1", "flaky seed=0", "flaky seed=1"]  # in the sweep's order
    assert second.results["name"].tolist().count("flaky") == 4 and len(read_results(out)) == 8

    third = run_sweep(path, out=out)
    assert (third.ran, third.resumed, third.failed, third.mean_run_seconds) == (0, 4, 0, None)
    assert "runs: 4  ran: 0  resumed: 4  failed: 0" in third.summary()
    _, _, states = sweep_status(path, out=out, seeds=[1, 2])
    assert [(s.run.label, s.status) for s in states] == [
        ("good seed=1", "done"), ("good seed=2", "pending"), ("flaky seed=1", "done"), ("flaky seed=2", "pending")]


def test_cli_sweep_records_a_dead_kernel_and_a_missing_table_as_failures_and_exits_1(folder, capsys):
    path = write(folder, "notebook: demo.ipynb\ndescription: broken demo\nseeds: [0, 1]\n"
                         "runs:\n  - {name: dies, mode: die}\n  - {name: silent, mode: no_metrics}\n")
    store = folder / "store"
    assert main(["sweep", str(path), "--store", str(store), "--seeds", "0"]) == 1
    captured = capsys.readouterr()
    assert "sweep sw: demo [profile tiny] - broken demo" in captured.out
    assert "runs: 2  ran: 2  resumed: 0  failed: 2" in captured.out
    assert "FAILED dies seed=0" in captured.out and "the kernel died" in captured.out
    assert "FAILED silent seed=0" in captured.out and "wrote no metrics table" in captured.out
    assert f"results: {store / 'sweeps' / 'sw-tiny' / 'results.parquet'} (0 rows)" in captured.out
    assert "[1/2]" in captured.err and "[2/2]" in captured.err  # one progress line per run
    assert len(json.loads((store / "sweeps" / "sw-tiny" / "failures.json").read_text())) == 2

    assert main(["sweep", str(path), "--store", str(store), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "runs: 4  done: 0  failed: 2  pending: 2" in out and "the kernel died" in out


@pytest.mark.slow
def test_a_worker_process_that_dies_is_a_failure_not_a_crash(folder):
    path = write(folder, "notebook: demo.ipynb\nseeds: [0]\n"
                         "runs:\n  - {name: good, x: 3}\n  - {name: killer, mode: kill_worker}\n")
    result = run_sweep(path, jobs=2, out=folder / "out")
    assert (result.ran, result.failed) == (2, 1)
    assert [f["label"] for f in result.failures] == ["killer seed=0"]
    assert "worker process died" in result.failures[0]["error"]
    assert result.results[result.results.metric == "score"].value.tolist() == [30.0]
    assert isinstance(result.results, pd.DataFrame)
