"""`repro run-all -j N`: notebooks side by side, each after the notebooks it needs."""

import json
import os

import nbformat
import pytest

from repro.errors import ReproError
from repro.runs import parallel
from repro.runs.notebooks import list_notebooks


def test_the_studys_notebooks_name_existing_notebooks_and_form_no_cycle():
    notebooks = list_notebooks()
    names = [nb.stem for nb in notebooks]
    needs = {nb.stem: parallel.notebook_needs(nb) for nb in notebooks}
    assert all(n in names and names.index(n) < names.index(stem) for stem, wanted in needs.items() for n in wanted)
    assert parallel.schedule(needs) == needs
    # two chains that share no stages: self-rewarding and eva after the world, RLAIF on its own
    assert needs["10_self_rewarding"] == ["00_world"] and needs["21_rlaif_rl"] == ["20_rlaif_labeling"]
    assert needs["20_rlaif_labeling"] == []


def test_schedule_drops_needs_outside_the_run_and_refuses_a_cycle():
    assert parallel.schedule({"b": ["a", "z"], "a": []}) == {"b": ["a"], "a": []}
    with pytest.raises(ReproError, match="cycle: a, b"):
        parallel.schedule({"a": ["b"], "b": ["a"], "c": []})


def test_the_longest_chain_of_work_starts_first():
    plan = parallel.schedule({nb.stem: parallel.notebook_needs(nb) for nb in list_notebooks()})  # the study's own
    # without times, the chain with the most notebooks: eva's two chapters before 11_dev_settings
    assert parallel.critical_first(plan) == ["00_world", "10_self_rewarding", "20_rlaif_labeling", "30_eva",
                                             "11_dev_settings", "21_rlaif_rl", "31_eva_ablations", "40_real_model"]
    # a cold smoke run's times (2 jobs): 00 -> 10 -> 30 -> 31 is 140 s, 20 -> 21 115 s
    smoke = {"00_world": 19.3, "10_self_rewarding": 28.3, "11_dev_settings": 37.6, "20_rlaif_labeling": 39.9,
             "21_rlaif_rl": 75.5, "30_eva": 29.5, "31_eva_ablations": 62.6, "40_real_model": 19.7}
    assert parallel.critical_first(plan, smoke) == ["00_world", "10_self_rewarding", "20_rlaif_labeling", "30_eva",
                                                    "21_rlaif_rl", "31_eva_ablations", "11_dev_settings",
                                                    "40_real_model"]
    # a long notebook alone goes first; times missing for one notebook: counted instead
    assert parallel.critical_first(plan, {**smoke, "40_real_model": 500.0})[0] == "40_real_model"
    assert parallel.critical_first(plan, {**smoke, "40_real_model": 0.0}) == parallel.critical_first(plan)
    assert parallel.critical_first({"b": [], "a": []}) == ["b", "a"]  # ties keep the given order


def test_cold_seconds_come_from_the_latest_complete_cold_run_of_the_profile(tmp_path):
    from repro.runs.timings import append_record, cold_seconds

    def record(profile, cold, status, seconds):
        append_record(tmp_path, {"profile": profile, "cold": cold, "status": status,
                                 "notebooks": [{"notebook": "a", "seconds": seconds}]})

    assert cold_seconds(tmp_path, "smoke") == {}
    record("smoke", True, "complete", 10.0)
    record("smoke", True, "failed", 20.0)
    record("smoke", False, "complete", 1.0)
    record("tiny", True, "complete", 30.0)
    assert cold_seconds(tmp_path, "smoke") == {"a": 10.0}
    assert cold_seconds(tmp_path, "tiny") == {"a": 30.0}


def test_bad_needs_metadata_is_named(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"repro": {"needs": "00_world"}})
    nbformat.write(nb, tmp_path / "x.ipynb")
    with pytest.raises(ReproError, match="repro.needs must be a list"):
        parallel.notebook_needs(tmp_path / "x.ipynb")


def test_thread_caps_keep_a_smaller_setting():
    assert parallel.capped_threads(2, {"OMP_NUM_THREADS": "1"}) == {
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    assert parallel.capped_threads(1, {"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "x"})["MKL_NUM_THREADS"] == "1"


def _notebook(folder, name, source, needs=()):
    cells = [nbformat.v4.new_code_cell("x: int = 0  # unused", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell(source)]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"repro": {"needs": list(needs)}})
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_notebooks_run_after_their_needs_with_their_share_of_the_threads_and_failures_skip_dependents(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    record = ("import json, os, time, pathlib\n"
              "p = pathlib.Path({marks!r}) / '{name}.json'\n"
              "p.write_text(json.dumps({{'start': time.time(), 'threads': os.environ.get('OMP_NUM_THREADS'),"
              " 'seen': sorted(x.name for x in p.parent.iterdir())}}))\n")
    books = tmp_path / "nbs"
    books.mkdir()
    first = _notebook(books, "a_first", record.format(marks=str(marks), name="a_first"))
    second = _notebook(books, "b_second", record.format(marks=str(marks), name="b_second"), needs=["a_first"])
    alone = _notebook(books, "c_alone", record.format(marks=str(marks), name="c_alone"))
    broken = _notebook(books, "d_broken", "raise ValueError('no such thing')")
    after_broken = _notebook(books, "e_after", record.format(marks=str(marks), name="e_after"), needs=["d_broken"])
    lines = []
    outcomes = parallel.run_parallel([first, second, alone, broken, after_broken], 2, logs=tmp_path / "logs",
                                     output_dir=tmp_path / "out", store=tmp_path / "store", echo=lines.append)
    status = {o.notebook: o.status for o in outcomes}
    assert status == {"a_first": "complete", "b_second": "complete", "c_alone": "complete",
                      "d_broken": "failed", "e_after": "skipped"}
    seen = {p.stem: json.loads(p.read_text()) for p in marks.glob("*.json")}
    assert set(seen) == {"a_first", "b_second", "c_alone"}
    assert "a_first.json" in seen["b_second"]["seen"]  # b started after a had finished
    share = parallel.capped_threads(max(1, parallel.cores() // 2), os.environ)["OMP_NUM_THREADS"]
    assert {v["threads"] for v in seen.values()} == {share}
    failed = next(o for o in outcomes if o.notebook == "d_broken")
    assert "ValueError" in failed.detail and failed.log.is_file()
    assert (tmp_path / "out" / "b_second.ipynb").is_file() and (tmp_path / "out" / "b_second.run.json").is_file()
    with pytest.raises(parallel.RunAllFailed, match="2 of 5 notebooks did not finish") as error:
        parallel.check(outcomes)
    assert "e_after: skipped: needs d_broken" in str(error.value)
    assert any(line.startswith("repro: skipped e_after") for line in lines)
    # the chains of two notebooks start first (critical_first: the given order would start c before d)
    started = [line.split()[2] for line in lines if line.startswith("repro: started")]
    assert started[:2] == ["a_first", "d_broken"] and sorted(started[2:]) == ["b_second", "c_alone"]
