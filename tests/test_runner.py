"""Notebook parameters: discovery, profiles, validation before any kernel starts, and execution."""

import io
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

from repro.cli import main
from repro.runs.notebooks import (
    NotebookFailed,
    ParameterError,
    execute,
    load_profile,
    notebook_parameters,
    parse_assignments,
    resolve_notebook,
    resolve_parameters,
)

PARAMS = """\
seed: int = 0  # random seed
rate: float = 0.5  # a probability
name: str = "tiny"
flag: bool = False
seeds: list = [0, 1, 2]
base_model_path: str = ""  # empty: train the tiny model
"""


def make_notebook(folder, stem="07_demo", body="print(seed * 2)", params=PARAMS):
    """A throwaway notebook: a parameters cell (``params``) and one cell of ``body``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def notebook(tmp_path):
    return make_notebook(tmp_path)


def test_parameters_are_read_with_types_defaults_and_help(notebook):
    params = notebook_parameters(notebook)
    assert list(params) == ["seed", "rate", "name", "flag", "seeds", "base_model_path"]
    assert params["seed"].type == "int" and params["seed"].default == 0 and params["seed"].help == "random seed"
    assert params["rate"].type == "float" and params["seeds"].default == [0, 1, 2]


def test_resolve_notebook_by_name_prefix_and_path(notebook):
    folder = notebook.parent
    assert resolve_notebook("07_demo", folder) == notebook
    assert resolve_notebook("07", folder) == notebook
    assert resolve_notebook(str(notebook), folder) == notebook.resolve()
    with pytest.raises(ParameterError, match="unknown notebook 'nope'; available: 07_demo"):
        resolve_notebook("nope", folder)


def test_values_are_parsed_as_yaml():
    assert parse_assignments(["a=3", "b=0.5", "c=true", "d=[0, 1]", "e=hello", "f="]) == {
        "a": 3, "b": 0.5, "c": True, "d": [0, 1], "e": "hello", "f": ""}
    with pytest.raises(ParameterError, match="expected name=value"):
        parse_assignments(["novalue"])
    with pytest.raises(ParameterError, match="malformed value for 'a'"):
        parse_assignments(["a=[1, 2"])


TINY = {"name": "tiny", "defaults": {}, "notebooks": {}}


def test_unknown_parameter_is_refused_naming_the_valid_ones(notebook):
    with pytest.raises(ParameterError, match="has no parameter 'sed'; valid: seed, rate, name"):
        resolve_parameters(notebook, TINY, {"sed": 1})


@pytest.mark.parametrize("name,value,expected", [
    ("seed", "three", "must be int, got str"),
    ("seed", 1.5, "must be int, got float"),
    ("seed", True, "must be int, got bool"),
    ("flag", 1, "must be bool, got int"),
    ("seeds", 3, "must be list, got int"),
])
def test_wrong_types_are_refused(notebook, name, value, expected):
    with pytest.raises(ParameterError, match=expected):
        resolve_parameters(notebook, TINY, {name: value})


def test_ints_are_accepted_as_floats_and_numbers_as_strings(notebook):
    assert resolve_parameters(notebook, TINY, {"rate": 1, "name": 70}) == {"rate": 1.0, "name": "70"}


def test_model_paths_must_exist_unless_they_are_hub_ids(notebook, tmp_path):
    with pytest.raises(ParameterError, match="base_model_path = '/no/such/model' does not exist"):
        resolve_parameters(notebook, TINY, {"base_model_path": "/no/such/model"})
    assert resolve_parameters(notebook, TINY, {"base_model_path": "meta-llama/Llama-2-70b-hf"})
    assert resolve_parameters(notebook, TINY, {"base_model_path": str(tmp_path)})


def test_profiles_apply_defaults_where_declared_and_check_notebook_sections(notebook, tmp_path):
    profile_path = tmp_path / "mine.yaml"
    profile_path.write_text("defaults: {seed: 7, not_here: 1}\nnotebooks: {07_demo: {rate: 0.25}}\n")
    profile = load_profile(profile_path)
    assert resolve_parameters(notebook, profile, {"seed": 9}) == {"seed": 9, "rate": 0.25}
    profile_path.write_text("notebooks: {07_demo: {ratee: 0.25}}\n")
    with pytest.raises(ParameterError, match="profile mine: 07_demo has no parameter 'ratee'"):
        resolve_parameters(notebook, load_profile(profile_path), {})


def test_bad_profiles(tmp_path):
    with pytest.raises(ParameterError, match="unknown profile 'huge'; available: "):
        load_profile("huge")
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: [unclosed\n")
    with pytest.raises(ParameterError, match="is not valid YAML"):
        load_profile(bad)
    bad.write_text("something: else\n")
    with pytest.raises(ParameterError, match="must be a mapping with keys"):
        load_profile(bad)


def test_shipped_profiles_are_valid_for_every_notebook(shipped_profiles):
    from repro.runs.notebooks import list_notebooks

    assert {"tiny", "smoke", "real-small"} <= set(shipped_profiles)
    for profile in shipped_profiles.values():
        for nb in list_notebooks():
            resolve_parameters(nb, profile, {})


def test_execute_injects_parameters_and_hides_the_injected_cell(notebook, tmp_path):
    out_dir = tmp_path / "generated"
    out = execute(notebook, {"seed": 21}, profile=TINY, output_dir=out_dir, store=tmp_path / "store",
                  progress=False)
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[-1].outputs[0]["text"].strip() == "42"
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "remove-cell" in injected[0].metadata["tags"]
    record = json.loads((out_dir / "07_demo.run.json").read_text())
    assert record["status"] == "complete" and record["parameters"] == {"seed": 21}


STAGES = """\
import time
from repro.runs import open_store
store = open_store()
store.run("demo", {"seed": seed}, lambda workdir: time.sleep(0.6))
store.run("demo", {"seed": seed}, lambda workdir: time.sleep(0.6))
"""


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_run_shows_each_stage_as_plain_lines_and_the_kernel_no_transport_warning(tmp_path, capfd):
    """Not on a terminal (here the output is captured): a line per stage, no bar, nothing with a
    carriage return; and the kernel's stderr (which the run's inherits) has no TCP warning."""
    nb = make_notebook(tmp_path, body=STAGES)
    execute(nb, {}, profile=TINY, output_dir=tmp_path / "out", store=tmp_path / "store", progress=True)
    err = capfd.readouterr().err
    assert re.search(r"^  computing demo/\w{8}\n  computed  demo/\w{8} in \d+\.\d s\n"
                     r"  reused    demo/\w{8} \(took \d+\.\d s when computed\)$", err, re.M), err
    assert "\r" not in err and "Executing" not in err
    assert "without encryption" not in err and "TCP" not in err
    assert not list(tmp_path.glob("**/kernel-ipc*")) and not list(tmp_path.glob("**/events.jsonl"))
    execute(nb, {"seed": 1}, profile=TINY, output_dir=tmp_path / "out", store=tmp_path / "store", progress=False)
    assert "demo" not in capfd.readouterr().err  # --no-progress: nothing


#: A cell that leaves a witness of any SIGINT the kernel gets once its cells are done: ipykernel restores its
#: ``saved_sigint_handler`` after each message, and a signal inside a handler is logged as a KeyboardInterrupt.
SIGINT_WITNESS = """\
from pathlib import Path
get_ipython().kernel.saved_sigint_handler = lambda *_: Path({witness!r}).write_text("SIGINT")
"""


def test_a_run_does_not_interrupt_its_kernel_on_the_way_out(tmp_path, capfd):
    """jupyter_client interrupts a kernel before shutting it down, and a kernel still in its last handler logs
    "KeyboardInterrupt caught in kernel." on the run's stderr; the runs' kernel manager skips that interrupt
    (`repro.runs.notebooks.quiet_shutdown_manager`)."""
    witness = tmp_path / "sigint"
    for run in range(2):
        nb = make_notebook(tmp_path, body=SIGINT_WITNESS.format(witness=str(witness)))
        execute(nb, {"seed": run}, profile=TINY, output_dir=tmp_path / "out", progress=False)
        assert not witness.exists()
        assert "KeyboardInterrupt" not in capfd.readouterr().err


def test_on_a_terminal_a_run_shows_the_cells_and_the_running_stage(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    nb = make_notebook(tmp_path, body=STAGES)
    execute(nb, {}, profile=TINY, output_dir=tmp_path / "out", store=tmp_path / "store", progress=True)
    shown = terminal.getvalue()
    assert re.search(r"Executing: +100%.*\| 2/2 ", shown)  # papermill's bar over the cells (none injected)
    assert re.search(r"\r  computing demo/\w{8} 00:00", shown)  # the live line
    assert re.search(r"  computed  demo/\w{8} in \d+\.\d s\n", shown)
    assert "TQDM_DISABLE" not in os.environ  # the kernel's setting, not left behind in this process


def test_failing_cell_names_notebook_and_cell_and_keeps_the_output(tmp_path):
    nb = make_notebook(tmp_path, body="raise ValueError('seed too large')")
    with pytest.raises(NotebookFailed, match=r"07_demo failed in cell \d+: ValueError: seed too large "
                                             r"\(executed notebook kept at .*07_demo.ipynb\)"):
        execute(nb, {}, profile=TINY, output_dir=tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "07_demo.ipynb").exists()
    assert json.loads((tmp_path / "out" / "07_demo.run.json").read_text())["status"] == "failed"


def test_bad_input_met_inside_the_kernel_keeps_exit_code_2(tmp_path, capsys):
    """A broken data file is only read by the notebook's code: its DataError still exits with 2 and
    names the file and line; a bug (any other exception) exits with 1."""
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    body = f"from repro.data.ultrafeedback import load_prompts\nload_prompts({str(data)!r})"
    bad_data = make_notebook(tmp_path, stem="08_data", body=body)
    bug = make_notebook(tmp_path, stem="09_bug", body="raise KeyError('oops')")
    out = ["--output-dir", str(tmp_path / "out"), "--store", str(tmp_path / "store"), "--no-progress"]
    assert main(["run", str(bad_data), *out]) == 2
    assert f"DataError: {data} line 2: field 'prompt'" in capsys.readouterr().err
    assert main(["run", str(bug), *out]) == 1
    assert "KeyError" in capsys.readouterr().err


def test_every_error_class_of_the_project_has_its_exit_code():
    import ast

    from repro import paths
    from repro.errors import exit_code_of

    names = [node.name for path in (paths.project_root() / "src" / "repro").rglob("*.py")
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)
             and any(getattr(b, "id", "").endswith("Error") or getattr(b, "id", "") == "ReproError" for b in node.bases)
             and node.name not in ("ReproError",)]
    found = {name: exit_code_of(name) for name in names}
    assert found["DataError"] == 2 and found["NotebookFailed"] == 1 and found["ModelNotFound"] == 2
    assert all(code in (1, 2) for code in found.values()), found
    assert exit_code_of("ValueError") is None


@pytest.mark.parametrize("argv,message", [
    (["run", "no_such_notebook"], "unknown notebook 'no_such_notebook'"),
    (["run", "00_world", "-p", "no_such_param=1"], "has no parameter 'no_such_param'"),
    (["run", "00_world", "-p", "seed=abc"], "must be int, got str"),
    (["run", "00_world", "--profile", "no_such_profile"], "unknown profile 'no_such_profile'"),
    (["run", "00_world", "-p", "oops"], "malformed parameter 'oops'"),
])
def test_cli_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("repro: error: ") and message in err and "\n" not in err


def test_cli_entry_point_prints_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "repro.cli", "run", "zzz"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "unknown notebook 'zzz'" in proc.stderr


def test_cli_list_shows_every_notebook_with_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "00_world" in out and "seed: int = " in out and "profiles: " in out


def test_a_kernel_that_dies_as_it_starts_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    """A kernel killed before it answers (the kill test's power cut at start-up; here a kernel whose program
    exits at once) ends the run with exit code 1, one line saying so, and a record marked failed."""
    spec = tmp_path / "jupyter" / "kernels" / "dies-at-start"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", "import sys; sys.exit(9)", "-f", "{connection_file}"],
        "display_name": "dies at start", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setattr("repro.runs.notebooks.kernel_name", lambda: "dies-at-start")
    nb = make_notebook(tmp_path, stem="06_short", body="x = 1")
    code = main(["run", str(nb), "--output-dir", str(tmp_path / "out"), "--store", str(tmp_path / "store"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "06_short: the kernel died as it started" in err and "Traceback" not in err
    assert json.loads((tmp_path / "out" / "06_short.run.json").read_text())["status"] == "failed"
