"""Whether long loops show progress bars, and the stage lines a notebook's runner shows.

Bars are on by default (a person running the library in a terminal or JupyterLab wants to see them).
The papermill runner turns them off inside executed notebooks (``REPRO_PROGRESS=0``), where they would
only clutter the book.

**Stage lines.** One cell of a study notebook can compute for twenty minutes (``run_study``), in the
kernel, another process: a bar over the cells would sit still all that time. So the run store reports
each stage as it starts and ends (`stage_event`), one JSON line each, to the file that ``REPRO_EVENTS``
names, and the runner that started the kernel follows that file (`follow_stages`) and prints them. On a
terminal they scroll above a live line with the running stage and its elapsed time; elsewhere (a log
file, a pipe) they are plain lines, with no carriage return. A file rather than the kernel's own
output, so that nothing of this reaches the executed notebook; outside a runner (``REPRO_EVENTS``
unset) nothing is written at all.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

EVENTS_ENV = "REPRO_EVENTS"
#: How each event is shown in a stage line.
_WORDS = {"start": "computing", "done": "computed ", "reused": "reused   ", "shipped": "shipped  ",
          "failed": "failed   "}
_depth = 0  # stages this process is computing, one inside another


def show_progress(flag: bool | None = None) -> bool:
    """``flag`` if given, else what ``REPRO_PROGRESS`` says (default: on)."""
    return flag if flag is not None else os.environ.get("REPRO_PROGRESS", "1") != "0"


def stage_event(event: str, name: str, key: str, seconds: float | None = None) -> None:
    """Report that stage ``name``/``key`` started, was computed (``done``), ``reused``, copied from the
    package (``shipped``) or ``failed``; ``seconds``: its compute time (for ``reused``, the time it took
    when it was computed). Written only under a runner that follows the events."""
    global _depth
    if event in ("done", "failed"):
        _depth = max(_depth - 1, 0)
    _write_event({"event": event, "stage": name, "key": key, "seconds": seconds, "depth": _depth})
    if event == "start":
        _depth += 1


def input_event(path: str | os.PathLike) -> None:
    """Report that the run read ``path``, a file that is not a stage (a sweep's results table:
    `repro.runs.sweep`; another notebook's parameters: `repro.runs.notebooks.notebook_parameters`), so that
    the runner records it among what the run read (`repro.runs.kept`).
    Written only under a runner that follows the events; never shown."""
    _write_event({"event": "input", "path": str(Path(path).resolve())})


def _write_event(fields: dict) -> None:
    """Append one event, with this process's id and the time, to the file ``REPRO_EVENTS`` names (if any)."""
    path = os.environ.get(EVENTS_ENV)
    if path:
        line = json.dumps({**fields, "pid": os.getpid(), "time": time.time()})
        try:
            with open(path, "a") as out:  # one short write in append mode: lines of several processes never mix
                out.write(line + "\n")
        except OSError:
            pass  # showing progress is never worth failing a stage


def duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def describe(event: dict) -> str:
    """One stage event as a line: ``computed  sr-dpo/1a2b3c4d in 1 min 33 s``."""
    text = "  " * (event.get("depth", 0) + 1) + f"{_WORDS[event['event']]} {event['stage']}/{event['key'][:8]}"
    seconds = event.get("seconds")
    if event["event"] == "reused" and seconds is not None:
        return f"{text} (took {duration(seconds)} when computed)"
    if event["event"] in ("done", "failed") and seconds is not None:
        return f"{text} {'in' if event['event'] == 'done' else 'after'} {duration(seconds)}"
    return text


@contextmanager
def follow_stages(path: Path, stream: TextIO, *, interval: float = 0.25) -> Iterator[None]:
    """Print the stage events appended to ``path`` while the block runs (see the module), to ``stream``:
    on a terminal with a live line for the stage being computed, else as plain lines only."""
    live = stream.isatty()
    stop = threading.Event()
    state = {"offset": 0, "running": [], "bar": None}

    def show(line: str) -> None:
        if live:
            from tqdm import tqdm

            tqdm.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def poll() -> None:
        try:
            with open(path) as events:
                events.seek(state["offset"])
                chunk = events.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits for the next poll
        state["offset"] += len(complete.encode())
        for text in complete.splitlines():
            try:
                event = json.loads(text)
            except json.JSONDecodeError:
                continue  # not one of ours
            if event.get("event") not in _WORDS:
                continue  # not a stage's (`input_event`)
            who = (event["pid"], event["stage"], event["key"])
            if event["event"] == "start":
                state["running"].append((who, event))
            else:
                state["running"] = [r for r in state["running"] if r[0] != who]
            if live:
                update_live_line()  # first, so that a finished stage's line is gone when its end is shown
            if event["event"] != "start" or not live:
                show(describe(event))
        if live:
            update_live_line()

    def update_live_line() -> None:
        from tqdm import tqdm

        bar = state["bar"]
        if not state["running"]:
            if bar is not None:
                bar.close()  # clears the line
                state["bar"] = None
            return
        event = state["running"][-1][1]
        if bar is None or bar.desc != describe(event):
            if bar is None:
                bar = state["bar"] = tqdm(desc=describe(event), file=stream, bar_format="{desc} {elapsed}",
                                          leave=False, disable=False)
            else:
                bar.set_description_str(describe(event), refresh=False)
            bar.start_t = event["time"]  # the elapsed time is the stage's (tqdm's clock is time.time)
        bar.refresh()

    def follow() -> None:
        while not stop.wait(interval):
            poll()

    thread = threading.Thread(target=follow, name="repro-stage-events", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        poll()  # what the last interval brought
        if state["bar"] is not None:
            state["bar"].close()
