"""repro.runs.kept: ``repro run`` keeps an executed notebook made from the same inputs and stages, and
executes it again as soon as any of them changes (a parameter, a file a parameter names, the notebook, a
stage read, the claims record written) or when asked to (``--rerun``)."""

import json
import shutil

import pytest
from test_runner import make_notebook

from repro.cli import main
from repro.runs import kept
from repro.runs.notebooks import load_profile

BODY = """\
import json, os, pathlib
from repro.runs import open_store
store = open_store()
stage = store.run("demo", {"seed": seed}, lambda workdir: {"value": seed * 2})
claims = pathlib.Path(os.environ["REPRO_STORE"]) / "claims"
claims.mkdir(exist_ok=True)
(claims / (os.environ["REPRO_RUN_ID"] + ".json")).write_text(json.dumps({"notebook": "07_demo", "claims": []}))
print(stage.results["value"], pathlib.Path(base_model_path).read_text() if base_model_path else "")
"""


@pytest.fixture()
def demo(tmp_path):
    notebook = make_notebook(tmp_path, body=BODY)
    store, out = tmp_path / "store", tmp_path / "out"

    def run(*extra: str) -> str:
        """``repro run`` of the demo notebook: "kept" or "executed" (the record's run id changed)."""
        record = out / "07_demo.run.json"
        before = json.loads(record.read_text())["run_id"] if record.exists() else None
        assert main(["run", str(notebook), "--store", str(store), "--output-dir", str(out), "--no-progress",
                     *extra]) == 0
        after = json.loads(record.read_text())
        assert after["status"] == "complete"
        return "kept" if after["run_id"] == before else "executed"

    return notebook, store, out, run


def test_a_notebook_is_kept_until_something_it_reads_changes(demo, tmp_path, capsys):
    notebook, store, out, run = demo
    assert run() == "executed"
    record = json.loads((out / "07_demo.run.json").read_text())
    [(stage, finished)] = record["read"].items()
    assert stage.startswith("demo/") and finished and record["claims_file"] == f"{record['run_id']}.json"
    made = (out / "07_demo.ipynb").stat().st_mtime_ns
    capsys.readouterr()
    assert run() == "kept"
    assert "nothing it reads has changed since its run" in capsys.readouterr().err
    assert (out / "07_demo.ipynb").stat().st_mtime_ns == made  # not written again
    assert run("--rerun") == "executed"
    assert run("-p", "seed=3") == "executed"  # another parameter
    assert run("-p", "seed=3") == "kept"
    model = tmp_path / "model.txt"
    model.write_text("weights 1")
    assert run("-p", f"base_model_path={model}") == "executed"
    model.write_text("weights 2")  # the content of a file that a *_path parameter names
    assert run("-p", f"base_model_path={model}") == "executed"
    assert run() == "executed"  # back to the defaults: the last run was another one
    # a stage it read is deleted: executing again computes it
    [stage] = json.loads((out / "07_demo.run.json").read_text())["read"]
    shutil.rmtree(store / "stages" / stage)
    assert run() == "executed" and (store / "stages" / stage / "manifest.json").is_file()
    # the claims record it wrote is gone
    (store / "claims" / json.loads((out / "07_demo.run.json").read_text())["claims_file"]).unlink()
    assert run() == "executed"
    assert run() == "kept"
    notebook.write_text(notebook.read_text().replace("seed * 2", "seed * 3"))  # the notebook itself
    assert run() == "executed"
    (out / "07_demo.ipynb").unlink()
    assert run() == "executed"


def test_a_notebook_that_reads_another_notebooks_defaults_runs_again_when_that_notebook_changes(tmp_path):
    """11_dev_settings shows whether 10_self_rewarding's defaults agree with its rules: a changed default there
    must not leave the settings page as it was."""
    (tmp_path / "other").mkdir()
    other = make_notebook(tmp_path / "other", stem="10_other")
    reader = make_notebook(tmp_path, body=(
        "from repro.runs.notebooks import notebook_parameters\n"
        f"print(notebook_parameters({str(other)!r})['seeds'].default)"))
    out, store = tmp_path / "out", tmp_path / "store"

    def run() -> str:
        record = out / "07_demo.run.json"
        before = json.loads(record.read_text())["run_id"] if record.exists() else None
        assert main(["run", str(reader), "--store", str(store), "--output-dir", str(out), "--no-progress"]) == 0
        return "kept" if json.loads(record.read_text())["run_id"] == before else "executed"

    assert run() == "executed"
    assert f"file:{other.resolve()}" in json.loads((out / "07_demo.run.json").read_text())["read"]
    assert run() == "kept"
    other.write_text(other.read_text().replace("[0, 1, 2]", "[0, 1, 2, 3]"))
    assert run() == "executed"
    assert "[0, 1, 2, 3]" in (out / "07_demo.ipynb").read_text()
    assert run() == "kept"


def test_a_failed_or_unrecorded_run_is_never_kept(demo):
    _, _, out, run = demo
    assert run() == "executed"
    record_path = out / "07_demo.run.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "status": "failed"}))
    assert run() == "executed"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({k: v for k, v in record.items() if k != "read"}))
    assert run() == "executed"


def test_the_key_covers_the_files_that_path_parameters_name_and_the_environment(tmp_path, monkeypatch):
    notebook = make_notebook(tmp_path, body="pass")
    profile, store = load_profile(None), tmp_path / "store"
    data = tmp_path / "data.jsonl"
    data.write_text("a\n")
    key = kept.inputs_key(notebook, {"comparisons_path": str(data), "name": str(data)}, profile, store)
    assert kept.inputs_key(notebook, {"comparisons_path": str(data), "name": str(data)}, profile, store) == key
    data.write_text("b\n")
    changed = kept.inputs_key(notebook, {"comparisons_path": str(data), "name": str(data)}, profile, store)
    assert changed != key
    # a parameter not named *_path is a value, not a file
    assert kept.inputs_key(notebook, {"name": str(data)}, profile, store) == kept.inputs_key(
        notebook, {"name": str(data)}, profile, store)
    folder = tmp_path / "labeller"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with_folder = kept.inputs_key(notebook, {"labeller_paths": {"S": str(folder)}}, profile, store)
    (folder / "config.json").write_text('{"x": 1}')
    assert kept.inputs_key(notebook, {"labeller_paths": {"S": str(folder)}}, profile, store) != with_folder
    monkeypatch.setenv("REPRO_ENGINE", "vllm")
    assert kept.inputs_key(notebook, {}, profile, store) != kept.inputs_key(notebook, {}, profile, tmp_path / "other")
    with_engine = kept.inputs_key(notebook, {}, profile, store)
    monkeypatch.delenv("REPRO_ENGINE")
    assert kept.inputs_key(notebook, {}, profile, store) != with_engine
    monkeypatch.delenv("REPRO_RUN_ID", raising=False)
    without = kept.inputs_key(notebook, {}, profile, store)
    monkeypatch.setenv("REPRO_RUN_ID", "anything")  # the runner's own setting is not an input
    assert kept.inputs_key(notebook, {}, profile, store) == without


def test_the_code_digest_covers_every_file_of_the_package(monkeypatch, tmp_path):
    import repro

    package = tmp_path / "repro"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "reported.yaml").write_text("a: 1\n")
    monkeypatch.setattr(repro, "__file__", str(package / "__init__.py"))
    digests = []
    try:
        for content in ("a: 1\n", "a: 2\n"):
            (package / "sub" / "reported.yaml").write_text(content)
            kept.code_digest.cache_clear()
            digests.append(kept.code_digest())
        (package / "sub" / "__pycache__").mkdir()
        (package / "sub" / "__pycache__" / "x.pyc").write_bytes(b"compiled")  # not code of the package
        kept.code_digest.cache_clear()
        digests.append(kept.code_digest())
    finally:
        kept.code_digest.cache_clear()
    assert digests[0] != digests[1] == digests[2]
