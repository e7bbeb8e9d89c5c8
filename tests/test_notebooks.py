"""Every notebook end to end on the smoke profile with papermill, then the smoke book with warnings
as errors. Slow by nature (a kernel per notebook); deselect with ``-m "not slow"``."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_startup import NOT_AT_START

from repro import paths
from repro.book.build import toc_files
from repro.cli import main
from repro.runs import timings
from repro.runs.notebooks import list_notebooks
from repro.runs.store import RunStore

pytestmark = pytest.mark.slow


def test_every_notebook_executes_without_errors(smoke_book):
    root, _ = smoke_book
    for source in list_notebooks():
        executed = nbformat.read(root / "book" / "generated" / source.name, as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{source.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        stderr = [o["text"] for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        assert not stderr, f"{source.name} wrote to stderr (warnings or progress bars in the book): {stderr[0][:300]}"
        record = json.loads((root / "book" / "generated" / f"{source.stem}.run.json").read_text())
        assert record["status"] == "complete" and record["profile"] == "smoke"


def test_every_notebook_is_in_the_table_of_contents():
    listed = set(toc_files(paths.project_root()))
    for source in list_notebooks():
        assert f"book/generated/{source.stem}" in listed, f"{source.name} is not in _toc.yml"


def test_source_notebooks_are_stored_without_outputs():
    for source in list_notebooks():
        nb = nbformat.read(source, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), source.name
        assert nb.metadata["kernelspec"]["name"] == "repro"


def test_world_notebook_measured_m0(smoke_book):
    _, store = smoke_book
    names = {s.name for s in RunStore(store).stages()}
    assert {"world-corpus", "tokenizer", "pretrain-m0", "evaluate-m0"} <= names
    [evaluation] = [s for s in RunStore(store).stages() if s.name == "evaluate-m0"]
    assert evaluation.results["responses"] == 3 * 6 * 2  # smoke: 3 tasks x 6 families x 2 samples


def test_rlaif_notebooks_measured_every_technique_and_trained_every_policy(smoke_book):
    from collections import Counter

    from repro.runs.notebooks import load_profile

    _, store = smoke_book
    # the RLAIF chapters' stages (notebook 40 also reads comparisons with its real model's labeller)
    stages = [s for s in RunStore(store).stages() if "gguf-model" not in s.manifest.get("upstream", {})]
    names = Counter(s.name for s in stages)
    labelling, policy = (load_profile("smoke")["notebooks"][n] for n in ("20_rlaif_labeling", "21_rlaif_rl"))
    from repro.studies.rlaif.stages import Technique

    seeds, sizes = len(labelling["seeds"]), len(labelling["labeller_sizes"])

    def reads(code):  # a technique without exemplars or sampling is read once, whatever the seeds
        technique = Technique.parse(code)
        return seeds if technique.shots or technique.rationales > 1 else 1

    techniques = set(labelling["techniques"]) | set(labelling["self_consistency"])
    from repro.runs.notebooks import notebook_parameters, resolve_notebook

    declared = notebook_parameters(resolve_notebook("20_rlaif_labeling"))["size_techniques"].default
    size_techniques = labelling.get("size_techniques", declared)
    techniques |= set(size_techniques)
    expected = sum(reads(t) for t in techniques) + (sizes - 1) * sum(reads(t) for t in size_techniques)
    assert names["rlaif-alignment"] == expected  # the smaller labellers: the size technique only
    assert all(names[f"rlaif-labeller-{size}"] == 1 for size in labelling["labeller_sizes"])
    runs = len(policy["seeds"])
    # per seed: RLAIF and RLHF and the oracle-label RM control against reward models, d-RLAIF, and the controls
    # against the oracle's quality and against random rewards
    assert names["rlaif-rl-rm"] == 3 * runs and names["rlaif-rl-direct"] == runs
    assert names["rlaif-rl-oracle"] == runs and names["rlaif-rl-random"] == runs
    assert names["rlaif-sft-policy"] == 1 and names["rlaif-summaries"] == 1 + 6 * runs  # one SFT policy for all seeds
    candidates = len(policy["technique_candidates"]) if policy["technique"] == "auto" else 0
    assert names["rlaif-ai-labels"] == 1 + candidates  # the validation pairs per candidate, then all pairs
    # per seed: soft and human labels on each data size and on all comparisons, hard AI labels on all, and the
    # oracle's labels on all (the control)
    assert names["rlaif-reward-model"] == runs * (2 * (len(policy["rm_data_sizes"]) + 1) + 2)
    [alignment] = [s for s in stages if s.name == "rlaif-alignment" and s.manifest["params"]["technique"] == "base/0"
                   and s.manifest["params"]["seed"] == 0]
    assert 0 <= alignment.results["alignment"] <= 1 and alignment.results["pairs_per_second"] > 0


def test_rerun_reuses_every_stage(smoke_book):
    root, store = smoke_book
    before = {(s.name, s.key): s.manifest["finished"] for s in RunStore(store).stages()}
    assert main(["run", "00_world", "--profile", "smoke", "--store", str(store), "--output-dir",
                 str(root / "book" / "generated"), "--no-progress", "--rerun"]) == 0
    after = {(s.name, s.key): s.manifest["finished"] for s in RunStore(store).stages()}
    assert after == before  # nothing recomputed


def test_run_all_again_keeps_every_executed_notebook(smoke_book, capsys):
    """Nothing changed since the smoke book ran: every notebook is kept, none executed (`repro.runs.kept`).
    Each run recorded the stages it read; the chapters that run sweeps, their sweeps' results tables
    and (run cold, as here) the stages of the sweeps' own runs; the notebooks whose parameters a chapter reads."""
    root, store = smoke_book
    generated = root / "book" / "generated"
    records = {nb.stem: json.loads((generated / f"{nb.stem}.run.json").read_text()) for nb in list_notebooks()}
    stages = {f"{s.name}/{s.key}" for s in RunStore(store).stages()}
    for stem, record in records.items():
        assert record["read"] and all(s in stages or s.startswith("file:") for s in record["read"]), stem
    for stem in ("11_dev_settings", "31_eva_ablations"):
        files = [s for s in records[stem]["read"] if s.startswith("file:")]
        tables = [s for s in files if s.endswith("/results.parquet")]
        assert tables and all(s.endswith(("/results.parquet", ".ipynb")) for s in files), stem
        assert len(records[stem]["read"]) > len(files), stem  # its sweeps' runs' stages
    # the settings chapter shows whether the self-rewarding chapter's defaults agree with its rules
    assert any(s.endswith("/10_self_rewarding.ipynb") for s in records["11_dev_settings"]["read"])
    capsys.readouterr()
    assert main(["run-all", "--profile", "smoke", "--store", str(store), "--output-dir", str(generated),
                 "--no-progress"]) == 0
    assert capsys.readouterr().err.count("nothing it reads has changed") == len(records)
    last = timings.read_records(store)[-1]  # what the benchmarks page shows of this warm run
    assert [n["kept"] for n in last["notebooks"]] == [True] * len(records)
    for stem, record in records.items():
        assert json.loads((generated / f"{stem}.run.json").read_text())["run_id"] == record["run_id"]


#: Run in a fresh interpreter: the code cells of one executed notebook (its injected parameters included), then
#: which packages of the model stack got imported.
CELLS_THEN_MODULES = """
import json, sys
import matplotlib
matplotlib.use("Agg")
from IPython.display import display
cells = ["".join(c["source"]) for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
scope = {"__name__": "__main__", "display": display}
for source in cells:
    exec(compile(source, "<cell>", "exec"), scope)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""
MODEL_STACK = set(NOT_AT_START)  # the packages no notebook's imports load (tests/test_startup.py)


def test_a_notebook_whose_stages_are_reused_imports_no_model_stack(smoke_book, tmp_path):
    """Re-executed on a store that has every stage, a notebook reads its stages and draws: it never imports
    torch, transformers or the trainers (a warm book, a sweep's reused runs). Each notebook's cells run here
    in a fresh interpreter, on a copy of the smoke book's store (its claims records are written again), and
    nothing is recomputed."""
    root, _ = smoke_book
    store = Path(shutil.copytree(smoke_book[1], tmp_path / "store"))
    before = {(s.name, s.key): s.manifest["finished"] for s in RunStore(store).stages()}
    env = {**os.environ, "REPRO_STORE": str(store), "REPRO_PROFILE": "smoke", "REPRO_RUN_ID": "warm-check",
           "REPRO_PROGRESS": "0"}
    for executed in sorted((root / "book" / "generated").glob("*.ipynb")):
        out = subprocess.run([sys.executable, "-c", CELLS_THEN_MODULES, str(executed)], capture_output=True,
                             text=True, env=env, cwd=executed.parent, timeout=300)
        assert out.returncode == 0, f"{executed.name}: {out.stderr[-2000:]}"
        loaded = set(json.loads(out.stdout.splitlines()[-1]))
        assert "repro" in loaded and not loaded & MODEL_STACK, f"{executed.name} imported {sorted(loaded & MODEL_STACK)}"
    assert {(s.name, s.key): s.manifest["finished"] for s in RunStore(store).stages()} == before


def test_smoke_book_builds_with_warnings_as_errors(smoke_html):
    assert (smoke_html / "index.html").is_file()  # built by the smoke_html fixture (tests/conftest.py)
    page = (smoke_html / "book" / "generated" / "00_world.html").read_text()
    assert "What M0 can do" in page and "<img" in page
    assert "injected-parameters" not in page  # papermill's cell is removed from the book


def test_eva_notebooks_trained_every_arm_and_the_sweeps_ran_every_run(smoke_book):
    from repro.runs.notebooks import load_profile
    from repro.runs.sweep import read_results

    _, store = smoke_book
    profile = load_profile("smoke")["notebooks"]
    stages = RunStore(store).stages()
    solvers = [s for s in stages if s.name == "eva-solver"]
    # 30_eva: per seed, theta_1, theta_1 + eva and theta_1 + new human prompts
    assert len({s.manifest["seed"] for s in solvers}) == len(profile["30_eva"]["seeds"])
    seeds = profile["31_eva_ablations"]["sweep_seeds"]
    for sweep in profile["31_eva_ablations"]["sweeps"]:
        folder = store / "sweeps" / f"{sweep}-smoke"
        summary = json.loads((folder / "sweep.json").read_text())
        assert summary["failed"] == 0 and summary["total"] == summary["ran"] + summary["resumed"]
        results = read_results(folder)
        assert (results.status == "ok").all() and set(results.seed) == set(seeds)
        assert {"win_rate", "mean_score"} <= set(results.metric)
        for run_id in results.run_id.unique():
            assert (folder / "runs" / run_id / "30_eva.ipynb").is_file()
    solvers_table = read_results(store / "sweeps" / "eva_solvers-smoke")
    assert set(solvers_table.method) == {"dpo", "simpo", "orpo", "sppo"}
    iterations = read_results(store / "sweeps" / "eva_iterations-smoke")
    assert set(iterations[iterations.arm == "eva"].iteration) == {1, 2, 3}


def test_the_real_model_page_sent_every_template_and_read_every_figure(smoke_book):
    """Notebook 40 on the smoke profile (the tiny GGUF stand-in): the probes' stages, read back through the
    same functions the page uses."""
    import pandas as pd

    from repro.runs.notebooks import load_profile
    from repro.studies import real_model as rm

    _, store = smoke_book
    section = load_profile("smoke")["notebooks"]["40_real_model"]
    spec = rm.ProbeSpec.from_parameters(section)
    probes = rm.run_probes(RunStore(store), str(paths.project_root() / section["model_path"]), spec)
    assert all(s.manifest.get("status") == "complete" for s in [probes.model, probes.judged, probes.creator])
    assert probes.model.name == "gguf-model" and probes.model.results["max_logit_difference"] <= 1e-4
    assert probes.judged.manifest["params"]["judge_template"] == "full"  # the plain-English rubric
    summary = rm.judge_summary(probes)
    assert summary["prompts"] == spec.max_prompts
    assert summary["judgments"] == summary["answers"] * spec.judge_samples == spec.max_prompts * spec.candidates
    assert summary["readable"] == summary["judgments"]  # the cue read-out scores every judgment
    assert summary["read_at_cue"] + round(summary["written_share"] * summary["judgments"]) == summary["readable"]
    candidates = pd.read_parquet(probes.judged / "candidates.parquet")
    assert all(len(texts) == spec.judge_samples for texts in candidates.judgments)
    table = rm.labelling_table(probes)
    assert list(table.technique) == ["Detailed + CoT 0-shot"] and (table.pairs == 11).all()
    assert rm.rationales(probes)[0]["technique"] == "detailed+cot/0"
    assert set(rm.evolver_summary(probes)) >= {"prompts_scored", "selected", "evolved"}
    examples = rm.judgment_examples(probes)
    assert set(examples.columns) == {"prompt", "answer", "judgment", "read", "score"}
    counts, _ = rm.written_prompts(probes)
    assert counts["candidates"] >= counts["accepted"]


def test_development_runs_recorded_without_their_evaluation_noise_get_it_from_their_stored_responses(smoke_book):
    """A sweep resumes the runs it finished before, so runs recorded before `dev_control` measured
    ``eval_var`` lack it; 11_dev_settings measures it from their stored development responses: the same
    values the runs measured, and nothing computed."""
    import pandas as pd

    from repro.runs.notebooks import load_profile, notebook_parameters, resolve_notebook, resolve_parameters
    from repro.studies.self_rewarding import study

    _, store = smoke_book
    chapter = resolve_notebook("11_dev_settings")
    params = {name: p.default for name, p in notebook_parameters(chapter).items()}
    params.update(resolve_parameters(chapter, load_profile("smoke"), {}))
    results = pd.read_parquet(store / "sweeps" / f"{params['sweep']}-smoke" / "results.parquet")
    before = {(s.name, s.key) for s in RunStore(store).stages()}
    filled = study.with_eval_var(RunStore(store), params, results.drop(columns="eval_var"))
    assert len(filled) == len(results) >= 4 and results.eval_var.notna().all()
    assert filled.eval_var.to_numpy() == pytest.approx(results.eval_var.to_numpy(), rel=1e-12)
    assert {(s.name, s.key) for s in RunStore(store).stages()} == before
