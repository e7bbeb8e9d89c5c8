"""repro.runs.compare: two stores with the same numbers compare equal; any change to a result (down to
the last bit of a float), an artifact, a claim or a sweep table is reported; timings never are."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import save_file

from repro.cli import main
from repro.runs.compare import (
    claims,
    differences,
    first_difference,
    is_timing_key,
    without_timings,
)
from repro.runs.store import RunStore


def make_store(root, *, value=0.1, weights=b"\x00\x01", runtime=1.0, verdict="reproduced", sweep_metric=0.5,
               loss=2.5):
    store = RunStore(root)

    def compute(workdir):
        if isinstance(weights, dict):
            save_file(weights, str(workdir / "model.safetensors"))
        else:
            (workdir / "model.safetensors").write_bytes(weights)
        (workdir / "log_history.json").write_text(json.dumps([{"loss": 2.5}, {"loss": loss, "train_runtime": runtime,
                                                                 "train_samples_per_second": 9 / runtime}]))
        return {"accuracy": value, "wall_time_s": runtime, "pairs": 12}

    store.run("train", {"lr": 1e-3}, compute)
    (root / "claims").mkdir(exist_ok=True)
    (root / "claims" / "10_demo-run.json").write_text(json.dumps(
        {"notebook": "10_demo", "claims": [{"id": "c1", "verdict": verdict, "parts": [{"value": value}]}]}))
    (root / "sweeps" / "s-smoke").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"run_id": ["b", "a"], "metric": [sweep_metric, 1.0], "wall_seconds": [runtime, 2.0]}).to_parquet(
        root / "sweeps" / "s-smoke" / "results.parquet")
    return root


def test_same_numbers_compare_equal_whatever_the_timings(tmp_path):
    a = make_store(tmp_path / "a", runtime=1.0)
    b = make_store(tmp_path / "b", runtime=7.5)
    assert differences(a, b) == []


@pytest.mark.parametrize("change,expected", [
    ({"value": float(np.nextafter(0.1, 1.0))}, "stage train/"),
    ({"weights": b"\x00\x02"}, "artifact model.safetensors differs"),
    ({"verdict": "opposite"}, "claims of 10_demo differ"),
    ({"sweep_metric": 0.5000001}, "results table of sweep s-smoke differs"),
])
def test_any_change_is_reported(tmp_path, change, expected):
    a = make_store(tmp_path / "a")
    b = make_store(tmp_path / "b", **change)
    found = differences(a, b)
    assert found and any(expected in line for line in found), found


def test_a_chapters_claims_are_its_own_run_not_a_later_run_of_a_sweep(tmp_path):
    """A sweep that executes a chapter's notebook writes records under the chapter's name, after the chapter
    in a cold store and before it in a store executed again: each is compared with its own kind."""
    def write(root, name, verdict, sweep_run=None, order=0):
        record = {"notebook": "30_eva", "claims": [{"id": "c1", "verdict": verdict}],
                  **({"sweep_run": sweep_run} if sweep_run else {})}
        path = root / "claims" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
        os.utime(path, ns=(order, order))

    cold, again = tmp_path / "cold", tmp_path / "again"
    write(cold, "30_eva-a", "chapter", order=1_000)
    write(cold, "30_eva-b", "swept", sweep_run="eva_solvers-smoke/r1", order=2_000)
    write(again, "30_eva-b", "swept", sweep_run="eva_solvers-smoke/r1", order=1_000)
    write(again, "30_eva-c", "chapter", order=2_000)
    assert claims(cold) == claims(again) == {"30_eva": [{"id": "c1", "verdict": "chapter"}],
                                             "30_eva in eva_solvers-smoke/r1": [{"id": "c1", "verdict": "swept"}]}
    assert differences(cold, again) == []
    write(again, "30_eva-d", "another", sweep_run="eva_solvers-smoke/r1", order=3_000)
    assert differences(cold, again) == ["claims of 30_eva in eva_solvers-smoke/r1 differ"]


def test_a_difference_says_where_it_starts_and_how_large_it_is(tmp_path):
    """What a failed determinism check needs to tell float noise from a changed input."""
    a = make_store(tmp_path / "a", weights={"w": np.zeros((2, 3), np.float32), "b": np.ones(3, np.float32)})
    b = make_store(tmp_path / "b", value=0.25, loss=2.5000002,
                   weights={"w": np.array([[0, 0, 1e-6], [0, 0, 0]], np.float32), "b": np.ones(3, np.float32)})
    found = differences(a, b)
    assert any(line.endswith("results differ in accuracy (accuracy: 0.1 != 0.25)") for line in found), found
    assert any(line.endswith("artifact log_history.json differs ([1].loss: 2.5 != 2.5000002)") for line in found), found
    assert any(line.endswith("artifact model.safetensors differs (1 of 2 tensors differ, at most by 1e-06 (w))")
               for line in found), found


@pytest.mark.parametrize("a,b,expected", [
    ({"x": [1, {"y": 2.0}]}, {"x": [1, {"y": 2.5}]}, "x[1].y: 2.0 != 2.5"),
    ({"x": 1}, {"x": 1, "z": 2}, "z: only in the second"),
    ([1, 2], [1, 2, 3], "list: 2 != 3 items"),
    ({"x": [1]}, {"x": [1]}, ""),
    ({"x": 1}, {"x": 1.0}, "x: 1 != 1.0"),
])
def test_first_difference(a, b, expected):
    assert first_difference(a, b) == expected


def test_weights_that_differ_only_in_their_metadata_say_so(tmp_path):
    tensors = {"w": np.zeros((2, 3), np.float32)}
    a = make_store(tmp_path / "a", weights=tensors)
    b = make_store(tmp_path / "b")
    save_file(tensors, str(next((b / "stages" / "train").iterdir()) / "model.safetensors"), metadata={"format": "np"})
    found = differences(a, b)
    assert found == [next(line for line in found if "model.safetensors" in line)], found
    assert found[0].endswith("artifact model.safetensors differs "
                             "(the same tensors; the files differ elsewhere (their metadata))"), found


def test_a_missing_stage_is_reported(tmp_path):
    a = make_store(tmp_path / "a")
    b = make_store(tmp_path / "b")
    extra = RunStore(b).run("extra", {}, lambda workdir: None)
    assert differences(a, b) == [f"stage extra/{extra.key} only in {b}"]


def test_timing_keys():
    assert all(map(is_timing_key, ["train_runtime", "train_samples_per_second", "wall_time_s", "seconds",
                                   "generation_seconds", "duration_s", "wall_s", "finished", "step_time"]))
    assert not any(map(is_timing_key, ["loss", "accuracy", "steps", "tokens", "win_rate"]))
    assert without_timings({"a": [{"seconds": 1, "b": 2}], "train_runtime": 3}) == {"a": [{"b": 2}]}


def test_cli(tmp_path, capsys):
    a, b = make_store(tmp_path / "a"), make_store(tmp_path / "b")
    assert main(["compare", str(a), str(b)]) == 0
    assert "1 stages compared: the same numbers" in capsys.readouterr().out
    c = make_store(tmp_path / "c", value=0.2)
    assert main(["compare", str(a), str(c)]) == 1
    assert main(["compare", str(a), str(tmp_path / "nothing")]) == 2
