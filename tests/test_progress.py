"""Stage lines: the run store reports each stage's start and end, and a runner shows them, live on a
terminal and as plain lines elsewhere."""

import io
import json
import time

import pytest

from repro.progress import EVENTS_ENV, follow_stages
from repro.runs.store import RunStore, StageFailed


class Terminal(io.StringIO):
    """What a terminal receives: a stream that says it is one."""

    def isatty(self):
        return True


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_store_reports_a_stage_computed_then_reused_and_a_failure(tmp_path, monkeypatch):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(EVENTS_ENV, str(events))
    store = RunStore(tmp_path / "store")

    def outer(workdir):
        store.run("inner", {"a": 1}, lambda w: time.sleep(0.05))
        return {}

    first = store.run("outer", {"a": 1}, outer)
    store.run("outer", {"a": 1}, outer)
    with pytest.raises(StageFailed):
        store.run("broken", {}, lambda w: 1 / 0)
    seen = [(e["event"], e["stage"], e["depth"]) for e in _events(events)]
    assert seen == [("start", "outer", 0), ("start", "inner", 1), ("done", "inner", 1), ("done", "outer", 0),
                    ("reused", "outer", 0), ("start", "broken", 0), ("failed", "broken", 0)]
    done, reused = (e for e in _events(events) if e["stage"] == "outer" and e["event"] in ("done", "reused"))
    assert done["key"] == first.key and done["seconds"] >= 0.05
    assert reused["seconds"] == first.manifest["duration_s"]  # the time it took when it was computed


def test_without_a_runner_the_store_writes_no_events(tmp_path, monkeypatch):
    monkeypatch.delenv(EVENTS_ENV, raising=False)
    RunStore(tmp_path / "store").run("quiet", {}, lambda w: None)
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def _report(path, *events):
    with open(path, "a") as out:
        for event, stage, seconds in events:
            out.write(json.dumps({"event": event, "stage": stage, "key": "0123456789abcdef", "seconds": seconds,
                                  "depth": 0, "pid": 1, "time": time.time()}) + "\n")


def test_plain_lines_when_the_output_is_not_a_terminal(tmp_path):
    events, out = tmp_path / "events.jsonl", io.StringIO()
    with follow_stages(events, out, interval=0.05):
        _report(events, ("start", "train", None))
        time.sleep(0.2)
        _report(events, ("done", "train", 93.24), ("reused", "base", 3725.0))
    assert out.getvalue().splitlines() == ["  computing train/01234567", "  computed  train/01234567 in 1 min 33 s",
                                           "  reused    base/01234567 (took 1 h 02 min when computed)"]
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_a_live_line_for_the_running_stage(tmp_path):
    events, out = tmp_path / "events.jsonl", Terminal()
    with follow_stages(events, out, interval=0.05):
        _report(events, ("start", "train", None))
        time.sleep(0.3)
        _report(events, ("done", "train", 1.5))
    text = out.getvalue()
    live = [part for part in text.split("\r") if part.startswith("  computing train/01234567 00:0")]
    assert len(live) >= 2  # redrawn while the stage runs, with its elapsed time
    assert "  computed  train/01234567 in 1.5 s\n" in text
    assert "computing" not in text.rpartition("computed")[2]  # the live line is gone once the stage ended
