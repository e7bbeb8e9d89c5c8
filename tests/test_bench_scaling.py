"""The scaling benchmark: its pure logic (memory units, the least-squares fit, the table and its
ratios, the study's parameters) and, slow, a quick run of the CLI end to end."""

import json
import subprocess
import sys

import pytest

from benchmarks import module_env
from benchmarks import scaling as bs


def test_maxrss_units():
    assert bs.maxrss_mib(2048, "Linux") == 2.0  # kibibytes
    assert bs.maxrss_mib(3 * 1024 * 1024, "Darwin") == 3.0  # bytes
    assert bs.peak_rss_mib() > 10  # this very process


def test_linear_fit_recovers_a_line_and_measures_the_misfit():
    fit = bs.linear_fit([1, 2, 4, 8], [12.0, 14.0, 18.0, 26.0])
    assert fit["a"] == pytest.approx(10.0) and fit["b"] == pytest.approx(2.0) and fit["r2"] == pytest.approx(1.0)
    curved = bs.linear_fit([1, 2, 4, 8], [1.0, 4.0, 16.0, 64.0])
    assert 0.9 < curved["r2"] < 1.0
    assert bs.linear_fit([1, 1], [2.0, 3.0])["r2"] is None  # one distinct x: no line
    assert bs.linear_fit([1, 2], [5.0, 5.0])["r2"] is None  # y does not vary
    with pytest.raises(ValueError):
        bs.linear_fit([1, 2], [1.0])


def _measurement(scale, time_s, rss, repeat=0, prompts=None):
    prompts = 10 * scale if prompts is None else prompts
    return {"scale": scale, "prompts": prompts, "prompts_requested": 10 * scale, "time_s": time_s,
            "peak_rss_mib": rss, "setup_rss_mib": 400.0, "self_instruct_s": 1.0, "generation_s": 2.0,
            "judging_s": 3.0, "pairs_s": 0.1, "training_s": time_s - 6.1, "candidates": 4 * prompts,
            "pairs": prompts, "training_steps": 3, "repeat": repeat}


def test_scaling_table_ratios_medians_and_columns():
    rows = bs.scaling_table([_measurement(2, 30.0, 520.0), _measurement(1, 20.0, 500.0),
                             _measurement(1, 22.0, 505.0, repeat=1), _measurement(1, 100.0, 501.0, repeat=2)])
    assert [r["scale"] for r in rows] == [1, 2]
    one, two = rows
    assert list(one)[:len(bs.COLUMNS)] == list(bs.COLUMNS)
    assert one["time_s"] == 22.0 and one["repeats"] == 3  # the median over repeats
    assert one["peak_rss_mib"] == 505.0  # the largest peak
    assert one["time_ratio"] == 1.0 and two["time_ratio"] == pytest.approx(30 / 22)
    assert two["memory_ratio"] == pytest.approx(520 / 505)
    assert two["time_per_prompt_s"] == pytest.approx(1.5)
    assert bs.scaling_table([_measurement(1, 5.0, 400.0, prompts=0)])[0]["time_per_prompt_s"] is None


def test_fit_table_and_notes_use_the_measurements():
    rows = bs.scaling_table([_measurement(s, 10.0 + 2.0 * 10 * s, 500.0 + s) for s in (1, 2, 4, 8)])
    fits = {f["quantity"]: f for f in bs.fit_table(rows)}
    assert fits["time_s"]["fixed_a"] == pytest.approx(10.0) and fits["time_s"]["r2"] == pytest.approx(1.0)
    assert fits["peak_rss_mib"]["per_prompt_b"] == pytest.approx(0.1)
    notes = bs.summary_notes(rows, list(fits.values()), profile="tiny", base_prompts=10, repeats=1,
                             machine={"cpu_count": 2, "torch_threads": 2})
    assert "R^2 = 1.0000" in notes and "10.0 s + 2.000 s x prompts" in notes
    short = bs.scaling_table([_measurement(1, 5.0, 400.0, prompts=7)])
    assert "7 of 10" in bs.summary_notes(short, bs.fit_table(short), profile="tiny", base_prompts=10, repeats=1,
                                         machine={"cpu_count": 2, "torch_threads": 2})


@pytest.mark.slow  # reads the notebook's parameters cell with papermill (several seconds)
def test_study_spec_follows_the_notebook_and_scales_only_the_prompts():
    params = bs.notebook_parameters()
    spec = bs.study_spec(params)
    assert spec.iteration.prompts == params["new_prompts"] and spec.base.corpus_docs == params["corpus_docs"]
    assert spec.iteration.preference.learning_rate == params["dpo_learning_rate"]
    smoke = bs.study_spec(bs.notebook_parameters("smoke", {"new_prompts": 3}))
    assert smoke.base.model_size == "XS" and smoke.iteration.prompts == 3
    eight = bs.scaled_spec(spec, 7, 8)
    assert eight.iteration.prompts == 56
    assert eight.iteration.candidates == spec.iteration.candidates and eight.base == spec.base
    with pytest.raises(ValueError):
        bs.scaled_spec(spec, 7, 0)


@pytest.mark.slow
def test_quick_cli_writes_the_report(tmp_path, smoke_book):
    out = tmp_path / "scaling.json"
    _, store = smoke_book  # the smoke run's store holds the smoke profile's M0 and M1 (built there if missing)
    subprocess.run([sys.executable, "-m", "benchmarks.bench_scaling", "--quick", "--scales", "1", "2",
                    "--shared-store", str(store), "--out", str(out)], check=True, cwd=tmp_path, env=module_env())
    report = json.loads(out.read_text())
    assert report["bench"] == "scaling" and report["title"] and report["notes"] and report["when"]
    assert {"cpu_count", "torch_threads", "versions", "platform"} <= set(report["machine"])
    rows = report["tables"]["scaling"]
    assert [r["scale"] for r in rows] == [1, 2] and len(report["rows"]) == 2
    for row in rows:
        assert set(bs.COLUMNS) <= set(row)
        assert row["time_s"] > 0 and row["peak_rss_mib"] > 0 and row["training_s"] > 0
        assert row["prompts"] <= row["prompts_requested"] == 8 * row["scale"]
    assert rows[0]["time_ratio"] == 1.0 and rows[0]["memory_ratio"] == 1.0
    assert {f["quantity"] for f in report["tables"]["fit"]} >= {"time_s", "peak_rss_mib"}
    # every measured stage was computed in the scale's fresh store, none reused
    assert all(set(m["computed"]) == {"sr-prompts", "sr-aift", "sr-model"} for m in report["rows"])


def test_self_instruct_round_cap_grows_with_the_prompts_wanted():
    """At 8x the tiny profile's 500 prompts, a fixed 50 rounds of 64 would stop at about 1,600 prompts."""
    from repro.studies.self_rewarding.stages import self_instruct_rounds

    assert self_instruct_rounds(4) == 4 and self_instruct_rounds(500) == 63
    assert self_instruct_rounds(4000) == 500 and self_instruct_rounds(4000) * 64 >= 8 * 4000
