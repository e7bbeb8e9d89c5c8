"""The benchmark harness (`benchmarks.harness`), the results schema (`repro.book.bench_schema`), the book's
benchmarks page, the run-all timing records, the cold/warm report of `make book`, and (slow) a smoke run
of every benchmark script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import harness, module_env
from benchmarks.perf import book as book_report
from repro.book import bench_schema
from repro.book.benchmarks import EMPTY, benchmarks_page, write_benchmarks_page
from repro.runs import timings

MACHINE = {"cpu_count": 2, "torch_threads": 2, "torch": "2.x", "transformers": "5.x", "platform": "Linux",
           "git_commit": "abcdef1234567890"}


class FakeClock:
    """A clock that each timed call advances by a chosen amount."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_compare_interleaves_and_computes_rates_and_ratios():
    clock, calls = FakeClock(), []
    a_times = iter([1.0, 2.0, 4.0, 2.0])  # warm-up, then three repeats: 2, 4, 2 s
    b_times = iter([1.0, 0.5, 0.5, 0.25])  # warm-up, then 0.5, 0.5, 0.25 s

    def a():
        calls.append("a")
        clock.now += next(a_times)
        return 10

    def b():
        calls.append("b")
        clock.now += next(b_times)
        return 3

    row = harness.compare("x", a, b, repeats=3, work_a=lambda r: r * 2, work_b=5, unit="things/s",
                          baseline="slow", candidate="fast", target=8, clock=clock, log=None)
    assert calls == ["a", "b"] * 4  # one warm-up each, then A, B, A, B, ...
    assert row["baseline_rate"] == {"min": 5.0, "median": 10.0, "max": 10.0}  # 20 things in 2, 4, 2 s
    assert row["candidate_rate"] == {"min": 10.0, "median": 10.0, "max": 20.0}  # 5 things in 0.5, 0.5, 0.25 s
    assert row["ratio"] == {"min": 1.0, "median": 2.0, "max": 2.0}  # per pair: 10/10, 10/5, 20/10
    assert row["repeats"] == 3 and row["target"] == 8.0 and row["unit"] == "things/s"
    assert bench_schema.target_met(row) is False
    assert bench_schema.target_met({**row, "target": 2}) is True
    assert bench_schema.target_met({**row, "target": None}) is None


def test_compare_rejects_bad_input():
    clock = FakeClock()
    with pytest.raises(ValueError):
        harness.compare("x", lambda: None, lambda: None, repeats=0, work_a=1, work_b=1, unit="u", clock=clock)
    with pytest.raises(ValueError, match="no measurable time"):
        harness.compare("x", lambda: None, lambda: None, repeats=1, work_a=1, work_b=1, unit="u", clock=clock,
                        log=None)


def sample_row(**changes):
    row = harness.compare("generate 8 prompts", lambda: None, lambda: None, repeats=2, work_a=1, work_b=1,
                          unit="tokens/s", baseline="loop", candidate="batched", target=20, notes="untrained S",
                          clock=_ticking(), log=None)
    return {**row, **changes}


def _ticking():
    state = {"t": 0.0, "n": 0}

    def clock():
        state["n"] += 1
        if state["n"] % 2 == 0:  # end of a call: the baseline takes 1 s, the candidate 0.04 s
            state["t"] += 1.0 if state["n"] % 4 == 2 else 0.04
        return state["t"]
    return clock


def test_results_schema_round_trip(tmp_path):
    row = sample_row()
    assert row["ratio"]["median"] == pytest.approx(25.0)
    doc = harness.write_results(tmp_path / "generation.json", "generation", "Generation", [row],
                                tables={"extra": [{"a": 1}]}, machine=MACHINE)
    assert set(doc) == {"bench", "title", "machine", "when", "rows", "tables"}
    assert set(row) == set(bench_schema.ROW_KEYS)
    assert harness.read_results(tmp_path) == [json.loads((tmp_path / "generation.json").read_text())]
    bad = dict(doc, rows=[{k: v for k, v in row.items() if k != "ratio"}])
    with pytest.raises(ValueError, match="ratio"):
        bench_schema.check_results(bad)
    machine = harness.machine_info()
    assert {"cpu_count", "torch_threads", "torch", "transformers", "platform", "git_commit"} <= set(machine)


def test_page_shows_every_bench_and_its_free_form_tables(tmp_path):
    results = tmp_path / "bench-results"
    harness.write_results(results / "generation.json", "generation", "Generation speed", [sample_row()],
                          machine=MACHINE)
    harness.write_results(results / "scaling.json", "scaling", "Scaling of an iteration", [],
                          tables={"scaling": [{"scale": "1x", "seconds": 12.5}, {"scale": "2x", "seconds": 24.0,
                                                                                 "note": "a | b"}]},
                          machine=MACHINE)
    # a benchmark whose rows are raw measurements, not comparisons, with notes of its own; a broken file
    (results / "other.json").write_text(json.dumps({
        "bench": "other", "title": "Other", "machine": MACHINE, "when": "now", "notes": "read  me",
        "rows": [{"scale": 1, "time_s": 3.5}]}))
    (results / "broken.json").write_text("{not json")
    out = write_benchmarks_page(results, tmp_path / "book" / "generated" / "benchmarks.md")
    page = out.read_text()
    assert page.index("## Generation speed") < page.index("## Scaling of an iteration")
    assert "| generate 8 prompts | batched / loop | 25x |" in page
    assert ">= 20x | yes |" in page  # the median ratio 25 meets the target 20
    assert "| scale | seconds | note |" in page and "| 2x | 24 | a \\| b |" in page  # union of keys, pipes escaped
    assert "*generate 8 prompts*: untrained S" in page
    assert "CPUs 2, torch threads 2" in page and "`abcdef123456`" in page
    assert "## Other\n\nread me\n\n**measurements**\n\n| scale | time_s |\n|---|---|\n| 1 | 3.5 |" in page
    assert "## broken.json: unreadable" in page


def test_page_without_results_says_how_to_make_them(tmp_path):
    assert benchmarks_page(tmp_path / "missing") == EMPTY + "\n"
    assert "make bench" in EMPTY


def test_run_all_timing_record(tmp_path):
    store = tmp_path / "store"
    timing = timings.RunAllTiming.begin(store, "tiny")
    stage = store / "stages" / "world-corpus" / "abc"
    stage.mkdir(parents=True)
    (stage / "manifest.json").write_text("{}")
    (store / "stages" / "tmp-not-finished" / "x").mkdir(parents=True)  # no manifest: not counted
    timing.notebook_done("00_world", 1.234)
    timing.notebook_done("10_self_rewarding", 0.051, kept=True)
    first = timing.finish()
    assert first["cold"] is True and first["stages_computed"] == 1 and first["stages_existing"] == 0
    assert first["notebooks"] == [{"notebook": "00_world", "seconds": 1.23, "kept": None},
                                  {"notebook": "10_self_rewarding", "seconds": 0.05, "kept": True}]
    assert first["profile"] == "tiny" and first["status"] == "complete" and first["wall_s"] >= 0
    assert first["peak_rss_mb"]["largest"] >= first["peak_rss_mb"]["self"] > 0

    second = timings.RunAllTiming.begin(store, "tiny").finish("failed")
    assert second["cold"] is False and second["stages_computed"] == 0 and second["stages_existing"] == 1
    (store / "timings" / "run-all.jsonl").open("a").write("not json\n")
    assert [r["status"] for r in timings.read_records(store)] == ["complete", "failed"]


def record(started, wall, cold, computed, existing, status="complete", profile="tiny"):
    return {"started": started, "wall_s": wall, "profile": profile, "status": status, "cold": cold,
            "stages_computed": computed, "stages_existing": existing, "notebooks": [{"notebook": "00", "seconds": 1}],
            "peak_rss_mb": {"self": 1, "children": 900, "largest": 900}}


def test_book_report_takes_the_latest_cold_and_warm_runs():
    records = [record("1", 2000, True, 50, 0), record("2", 1500, True, 50, 0), record("3", 100, False, 3, 50),
               record("4", 25, False, 0, 53), record("5", 10, False, 0, 53, status="failed"),
               record("6", 5, True, 9, 0, profile="smoke")]
    rows, tables = book_report.report(records, "tiny")
    assert rows[0]["ratio"]["median"] == pytest.approx(1500 / 25)
    cold, warm = tables["targets"]
    assert (cold["run"], cold["wall (s)"], cold["met"]) == ("cold", 1500, True)
    assert (warm["run"], warm["wall (s)"], warm["met"]) == ("warm", 25, True)
    _, tables = book_report.report([*records, record("7", 83, False, 0, 53)], "tiny")  # the warm target is 30 s
    assert tables["targets"][1]["met"] is False
    rows, tables = book_report.report(records[:1], "tiny")
    assert rows == [] and tables["targets"][0]["met"] is False and tables["targets"][1]["wall (s)"] is None
    # a warm run that kept its notebooks, beside the latest that executed them all again
    kept = {**record("8", 2, False, 0, 53), "notebooks": [{"notebook": "00", "seconds": 0.1, "kept": True}]}
    _, tables = book_report.report([*records, kept], "tiny")
    assert [(t["run"], t["wall (s)"], t["notebooks kept"]) for t in tables["targets"][1:]] == [
        ("warm", 2, 1), ("warm, every notebook executed again", 25, 0)]
    bench_schema.check_results(harness.results_document("book", "Book", rows, tables=tables, machine=MACHINE))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["generation", "judging", "flops", "stages"])
def test_benchmark_script_quick(name, tmp_path):
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.bench_{name}", "--quick", "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=module_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    bench_schema.check_results(doc)
    assert doc["bench"] == name and doc["rows"]
    assert all(r["ratio"]["min"] > 0 and r["repeats"] == 1 for r in doc["rows"])


@pytest.mark.slow
def test_bench_book_script(tmp_path):
    store = tmp_path / "store"
    for rec in (record("1", 1500, True, 50, 0), record("2", 30, False, 0, 50)):
        timings.append_record(store, rec)
    out = tmp_path / "book.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_book", "--store", str(store),
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, env=module_env(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["rows"][0]["ratio"]["median"] == pytest.approx(50.0)
    assert [t["met"] for t in doc["tables"]["targets"]] == [True, True]


def test_run_all_appends_one_record_per_invocation(tmp_path, monkeypatch):
    from repro import cli
    from repro.runs import notebooks

    store = tmp_path / "store"
    names = [nb.stem for nb in notebooks.list_notebooks()]

    def fake_execute(nb, params, *, profile, output_dir, store, progress):
        stage = Path(store) / "stages" / f"stage-{nb.stem}" / "k"
        stage.mkdir(parents=True, exist_ok=True)
        (stage / "manifest.json").write_text("{}")
        return Path(output_dir) / nb.name

    monkeypatch.setattr(notebooks, "execute", fake_execute)
    args = ["run-all", "--store", str(store), "--output-dir", str(tmp_path / "out"), "--no-progress"]
    assert cli.main(args) == 0
    assert cli.main(args) == 0

    def failing(nb, *a, **k):
        raise notebooks.NotebookFailed(f"{nb.stem} failed")

    monkeypatch.setattr(notebooks, "execute", failing)
    assert cli.main(args) == 1
    cold, warm, failed = timings.read_records(store)
    assert [n["notebook"] for n in cold["notebooks"]] == names
    assert cold["cold"] and cold["stages_computed"] == len(names) and cold["profile"] == "tiny"
    assert not warm["cold"] and warm["stages_computed"] == 0 and warm["stages_existing"] == len(names)
    assert book_report.is_warm(warm) and not book_report.is_warm(cold)
    assert failed["status"] == "failed" and failed["notebooks"] == []
