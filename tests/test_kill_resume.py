"""A study run killed with SIGKILL at random points, then run again, completes; it reuses every stage
that had finished before each kill, and its final numbers equal those of an uninterrupted run.

The study is ``10_self_rewarding`` on a small profile (one seed, one iteration, no ablations), run
with ``repro run`` into a fresh store: world corpus, tokenizer, pre-training of M0, SFT, self-instruct
prompts, candidates judged by the model itself, DPO, evaluation, and the chapter's claims record.

1. An uninterrupted reference run is watched: when each stage's temporary folder appears and when the
   stage is renamed into place, and how long the notebook runs after its last stage (tables,
   figures, the claims record, the executed notebook).
2. Kill points are drawn with a fixed seed: a stage and a moment inside it (a fraction of the time it
   took in the reference), or a moment in the notebook's tail after the last stage (writing results).
   Each kind of stage gets its share: training, generation, judging, data, and writing results.
3. The run is started again and again; at each kill point the watcher sends SIGKILL, to the whole run
   (the ``repro`` process and its kernel: a power cut) or to the kernel alone (what the kernel-out-of-
   memory killer does), alternately. A point whose stage finished before the moment came is missed
   and not counted. A point in the tail comes after the last stage has finished and the kernel has
   started: in a run whose stages had all finished before it started, that is counted from the kernel's
   start (a kill that soon may find it still starting: repro then says in one line that the kernel died
   as it started), never from the run's, when there would be no kernel yet to kill. Once a run has
   completed, the next ones keep its executed notebook and start no kernel: the points still pending
   are missed.
4. After the last kill the run completes. Every stage finished before a kill was never computed again
   (its manifest still names the process and time that made it), nothing unfinished is left behind,
   and `repro compare` finds no difference from the reference.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from repro.runs.compare import differences

pytestmark = pytest.mark.slow
psutil = pytest.importorskip("psutil")

NOTEBOOK = "10_self_rewarding"
PROFILE = """\
description: the kill-point test's self-rewarding run (one seed, one iteration)
notebooks:
  10_self_rewarding:
    seeds: [0]
    iterations: 1
    ablations: false
    corpus_docs: 300
    model_size: XS
    ift_size: 24
    eft_train_prompts: 64  # EFT judging and reward modelling last over 0.4 s, long enough to be hit
    eft_eval_prompts: 32
    sft_epochs: 1.0
    new_prompts: 4
    prompt_max_new_tokens: 24
    candidates: 3
    judge_samples: 2
    max_new_tokens: 12
    judge_max_new_tokens: 24
    dpo_epochs: 1.0
    eval_prompts_per_family: 2
    eval_samples: 2
"""
KINDS = {
    "training": ("pretrain-m0", "sr-sft", "sr-m1", "sr-model", "sr-sft-top"),
    "generation": ("sr-prompts", "sr-evaluate", "sr-reference", "evaluate-m0"),
    "judging": ("sr-aift", "sr-eft", "sr-reward-modelling"),
    "data": ("world-corpus", "tokenizer", "sr-eval-prompts"),
}
WANTED = {"training": 6, "generation": 6, "judging": 6, "writing results": 5, "data": 2}  # 25 points, 20 must hit
MIN_KILLS = 20
POLL = 0.01


def kind_of(stage_name: str) -> str:
    return next((kind for kind, names in KINDS.items() if stage_name in names), "data")


def start(profile: Path, store: Path, out: Path, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "repro.cli", "run", NOTEBOOK, "--profile", str(profile), "--store", str(store),
               "--output-dir", str(out), "--no-progress"]
    with open(log, "a") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def running_stage(store: Path, name: str, key: str) -> Path | None:
    """The temporary folder of ``name/key`` being computed by a live process, if any."""
    for folder in (store / "tmp").glob(f"{name}-{key}-*"):
        pid = folder.name[len(name) + len(key) + 2:].split("-")[0]
        try:
            if pid.isdigit() and psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE:
                return folder
        except psutil.NoSuchProcess:
            pass
    return None


def finished(store: Path, name: str, key: str) -> bool:
    return (store / "stages" / name / key / "manifest.json").is_file()


def finished_stages(store: Path) -> dict[str, tuple]:
    """``{"name/key": (pid, started)}`` of every finished stage: who made it, and when."""
    out = {}
    for manifest in (store / "stages").glob("*/*/manifest.json"):
        data = json.loads(manifest.read_text())
        out[f"{data['name']}/{data['key']}"] = (data["pid"], data["started"])
    return out


@dataclass
class Timeline:
    """What the reference run did: stages in the order they started, their times, and the tail."""

    stages: list[tuple[str, str, float]] = field(default_factory=list)  # (name, key, seconds)
    tail: float = 0.0  # from the last stage's rename to the end of the run


def watch_reference(profile: Path, store: Path, out: Path, log: Path) -> Timeline:
    proc = start(profile, store, out, log)
    began: dict[tuple[str, str], float] = {}
    done: dict[tuple[str, str], float] = {}
    while proc.poll() is None:
        now = time.perf_counter()
        for folder in (store / "tmp").glob("*-*"):
            name, key = _split(folder.name)
            if name and (name, key) not in began:
                began[(name, key)] = now
        for manifest in (store / "stages").glob("*/*/manifest.json"):
            stage = (manifest.parent.parent.name, manifest.parent.name)
            done.setdefault(stage, now)
        time.sleep(POLL)
    end = time.perf_counter()
    assert proc.returncode == 0, log.read_text()[-3000:]
    for manifest in (store / "stages").glob("*/*/manifest.json"):
        done.setdefault((manifest.parent.parent.name, manifest.parent.name), end)
    order = sorted(done, key=lambda s: began.get(s, done[s]))
    timeline = Timeline([(n, k, done[(n, k)] - began.get((n, k), done[(n, k)])) for n, k in order])
    timeline.tail = end - max(done.values())
    return timeline


def _split(tmp_name: str) -> tuple[str, str]:
    """``NAME-KEY-PID-RAND`` -> (NAME, KEY); keys are 16 hex digits."""
    parts = tmp_name.split("-")
    for i in range(len(parts) - 3, 0, -1):
        if len(parts[i]) == 16 and all(c in "0123456789abcdef" for c in parts[i]):
            return "-".join(parts[:i]), parts[i]
    return "", ""


@dataclass
class KillPoint:
    kind: str
    stage: tuple[str, str] | None  # None: the tail after the last stage
    delay: float  # seconds after the stage's folder appears (or after the last stage)
    whole_run: bool  # True: the repro process and its kernel; False: the kernel alone


def plan(timeline: Timeline, rng: random.Random) -> list[KillPoint]:
    """Kill points in run order, each kind its share, at moments inside stages long enough to hit (0.4 s)."""
    long = [(n, k, s) for n, k, s in timeline.stages if s >= 0.4]
    points: list[tuple[int, KillPoint]] = []
    for kind, count in WANTED.items():
        if kind == "writing results":
            points += [(len(timeline.stages), KillPoint(kind, None, rng.uniform(0.05, 0.9) * timeline.tail, False))
                       for _ in range(count)]
            continue
        candidates = [(i, n, k, s) for i, (n, k, s) in enumerate(timeline.stages) if kind_of(n) == kind
                      and (n, k, s) in long]
        if not candidates and kind == "data":  # the world's data may be too quick to hit
            continue
        assert candidates, (f"no {kind} stage of the reference run lasts long enough to be killed in: "
                            f"{[(n, round(s, 2)) for n, _, s in timeline.stages]}")
        for _ in range(count):
            i, n, k, s = rng.choice(candidates)
            points.append((i, KillPoint(kind, (n, k), rng.uniform(0.1, 0.7) * s, False)))
    points.sort(key=lambda p: (p[0], p[1].delay))
    ordered = [p for _, p in points]
    for j, point in enumerate(ordered):
        point.whole_run = j % 2 == 0
    return ordered


def descendants(proc: subprocess.Popen) -> list:
    """The processes the run started (its kernel and what the kernel started), none once it has ended."""
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kernel_started(proc: subprocess.Popen) -> bool:
    """Has the run started its kernel (a process of its own)?"""
    return bool(descendants(proc))


def kill(proc: subprocess.Popen, whole_run: bool) -> int:
    """SIGKILL the kernel and everything it started, and with ``whole_run`` the repro process too;
    returns the run's exit code."""
    for target in descendants(proc):
        try:
            os.kill(target.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if whole_run:
        proc.send_signal(signal.SIGKILL)  # (Popen sends nothing once the run has ended)
    # without ``whole_run`` repro notices the dead kernel and says so in one line (exit code 1)
    return proc.wait(timeout=120)


def test_killed_runs_resume_reuse_finished_stages_and_end_with_the_same_numbers(tmp_path):
    profile = tmp_path / "killtest.yaml"
    profile.write_text(PROFILE)
    reference = watch_reference(profile, tmp_path / "reference", tmp_path / "out-reference", tmp_path / "ref.log")
    points = plan(reference, random.Random(8))
    store, out, log = tmp_path / "killed", tmp_path / "out-killed", tmp_path / "killed.log"
    last_stage = reference.stages[-1][:2]
    kills, missed, runs = [], [], 0
    pending = list(points)
    while True:
        proc, runs = start(profile, store, out, log), runs + 1
        killed = False
        while pending and not killed:
            point = pending[0]
            if point.stage is None:  # the tail: wait for the last stage and for the kernel, then for the moment
                while proc.poll() is None and not (finished(store, *last_stage) and kernel_started(proc)):
                    time.sleep(POLL)
            else:
                while proc.poll() is None and not finished(store, *point.stage) and not running_stage(store, *point.stage):
                    time.sleep(POLL)
            if proc.poll() is not None:
                break
            moment = time.perf_counter() + point.delay
            while time.perf_counter() < moment and proc.poll() is None:
                time.sleep(POLL / 2)
            pending.pop(0)
            inside = point.stage is None or (running_stage(store, *point.stage) is not None
                                             and not finished(store, *point.stage))
            if proc.poll() is not None or not inside:
                missed.append((point, "the run had ended" if proc.poll() is not None else "the stage had finished"))
                continue
            before = finished_stages(store)
            code = kill(proc, point.whole_run)
            if code == 0:  # the run had ended by itself as its kernel was killed: not a kill
                missed.append((point, "the run ended by itself"))
                break
            assert code == (-signal.SIGKILL if point.whole_run else 1), code
            kills.append((point, before))
            killed = True
        if not killed:
            proc.wait(timeout=900)
            if proc.returncode == 0:  # it completed: the next runs keep its notebook, with no kernel to kill
                missed += [(point, "the run had completed") for point in pending]
                break
            if not pending:
                break
        assert runs < len(points) + 5
    assert proc.returncode == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text and "the kernel died (killed, or out of memory?)" in text

    summary = [(p.kind, p.stage[0] if p.stage else "tail", round(p.delay, 2), "run" if p.whole_run else "kernel")
               for p, _ in kills]
    print(f"{len(kills)} kills, {len(missed)} missed, {runs} runs:", *summary, "missed:",
          *[(p.kind, p.stage[0] if p.stage else "tail", round(p.delay, 2), why) for p, why in missed], sep="\n  ")
    assert len(kills) >= MIN_KILLS, (len(kills), [(p.kind, p.stage, round(p.delay, 2), why) for p, why in missed])
    assert {p.kind for p, _ in kills} >= set(WANTED) - {"data"}
    # every stage finished before a kill was reused afterwards, never computed again
    final = finished_stages(store)
    for point, before in kills:
        for stage, made in before.items():
            assert final[stage] == made, f"{stage} finished before a kill in {point.kind} and was computed again"
    assert not list((store / "tmp").iterdir()), "debris of killed stages left behind"
    found = differences(tmp_path / "reference", store)
    assert not found, "\n".join(found)
    record = json.loads((out / f"{NOTEBOOK}.run.json").read_text())
    assert record["status"] == "complete"
