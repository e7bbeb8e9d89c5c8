"""The run store: reuse, invalidation through upstream, atomic stages and resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from repro.runs.store import RunStore, StageFailed, StoreError, params_hash


def _writer(calls, text="hello"):
    def compute(workdir):
        calls.append(workdir)
        (workdir / "out.txt").write_text(text)
        return {"n_chars": len(text)}

    return compute


def test_finished_stage_is_reused(tmp_path):
    store = RunStore(tmp_path)
    calls = []
    first = store.run("make", {"a": 1}, _writer(calls), seed=0)
    second = store.run("make", {"a": 1}, _writer(calls), seed=0)
    assert len(calls) == 1
    assert first.key == second.key and (second / "out.txt").read_text() == "hello"
    assert second.results == {"n_chars": 5}
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["params"] == {"a": 1} and manifest["seed"] == 0
    assert {"python", "torch", "transformers"} <= set(manifest["versions"])
    assert manifest["duration_s"] >= 0 and manifest["started"] <= manifest["finished"]


def test_changing_a_parameter_reruns_only_affected_stages(tmp_path):
    store = RunStore(tmp_path)
    calls_a, calls_b, calls_c = [], [], []
    a = store.run("a", {"x": 1}, _writer(calls_a))
    b = store.run("b", {"y": 1}, _writer(calls_b), upstream=[a])
    c = store.run("c", {"z": 1}, _writer(calls_c))
    # change b's own parameter: a and c reused, b recomputed
    store.run("a", {"x": 1}, _writer(calls_a))
    b2 = store.run("b", {"y": 2}, _writer(calls_b), upstream=[a])
    store.run("c", {"z": 1}, _writer(calls_c))
    assert (len(calls_a), len(calls_b), len(calls_c)) == (1, 2, 1)
    assert b2.key != b.key
    # change a: b is recomputed through its upstream key even though its own params are unchanged
    a2 = store.run("a", {"x": 2}, _writer(calls_a))
    b3 = store.run("b", {"y": 1}, _writer(calls_b), upstream=[a2])
    assert b3.key not in (b.key, b2.key) and len(calls_b) == 3
    assert c.key == store.run("c", {"z": 1}, _writer(calls_c)).key


def test_params_hash_is_order_independent_and_type_sensitive():
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": "1"})
    assert params_hash({"a": 1}) != params_hash({"a": 2})


def test_failed_stage_is_recorded_and_leaves_nothing_half_written(tmp_path):
    store = RunStore(tmp_path)

    def boom(workdir):
        (workdir / "partial.bin").write_bytes(b"x" * 10)
        raise ValueError("bad input at row 3")

    with pytest.raises(StageFailed, match="bad input at row 3"):
        store.run("broken", {"k": 1}, boom)
    assert store.get("broken", {"k": 1}) is None
    assert not list((tmp_path / "tmp").iterdir())
    [failure] = store.failures()
    assert failure["status"] == "failed" and "ValueError" in failure["error"]
    # a later success clears the failure record
    store.run("broken", {"k": 1}, _writer([]))
    assert store.failures() == []


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", "..", "x" * 200, "/abs"])
def test_stage_names_cannot_escape_the_store(tmp_path, bad):
    with pytest.raises(StoreError, match="invalid stage name"):
        RunStore(tmp_path).run(bad, {}, _writer([]))


def test_unwritable_store_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=str(blocker)):
        RunStore(blocker).run("s", {}, _writer([]))


KILLED_CHILD = textwrap.dedent(
    """
    import sys, time
    from repro.runs.store import RunStore

    def slow(workdir):
        (workdir / "part1.txt").write_text("first half")
        print("started", flush=True)
        time.sleep(60)
        (workdir / "part2.txt").write_text("second half")

    RunStore(sys.argv[1]).run("slow", {"p": 1}, slow)
    """
)


def test_resume_after_kill_9(tmp_path):
    """A process killed mid-stage leaves no finished stage; the next run removes the debris and completes."""
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    store = RunStore(tmp_path)
    assert store.get("slow", {"p": 1}) is None
    [debris] = store.incomplete()
    assert (debris / "part1.txt").exists() and not (debris / "part2.txt").exists()

    def fast(workdir):
        (workdir / "part1.txt").write_text("first half")
        (workdir / "part2.txt").write_text("second half")

    start = time.perf_counter()
    stage = store.run("slow", {"p": 1}, fast)
    assert time.perf_counter() - start < 5
    assert (stage / "part2.txt").read_text() == "second half"
    assert store.incomplete() == []  # the dead process's folder was cleaned up


def test_a_twin_that_renames_first_wins(tmp_path, monkeypatch):
    """Two launched processes of one study compute the same stage; the one whose rename comes second
    (after the other's, right before its own) keeps the first one's stage instead of failing."""
    store = RunStore(tmp_path)
    real_rename = os.rename

    def twin_first(src, dst):
        monkeypatch.setattr(os, "rename", real_rename)
        twin = RunStore(tmp_path)._make_tmp("gen", store.key("gen", {"a": 1}))
        (twin / "out.txt").write_text("twin")
        (twin / "manifest.json").write_text(json.dumps({"name": "gen", "status": "complete"}))
        real_rename(twin, dst)  # the twin's copy lands between this process's check and its rename
        real_rename(src, dst)

    def compute(workdir):
        (workdir / "out.txt").write_text("mine")
        monkeypatch.setattr(os, "rename", twin_first)
        return {}

    stage = store.run("gen", {"a": 1}, compute)
    assert (stage / "out.txt").read_text() == "twin"
    assert not any((tmp_path / "tmp").iterdir())  # this process's copy is removed
