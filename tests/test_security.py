"""Security: no code runs that the user did not ask for.

- Weights are read only from safetensors: a checkpoint whose weights are a pickle that would create a
  file when unpickled is refused by every loader, and the file is never created.
- YAML is read with a safe loader: profiles, sweep files and ``-p`` values with Python tags are refused,
  and the tag's call never runs.
- No shell: parameter values reach subprocesses only as single arguments of an argument list.
- Parameters cannot name paths outside the run store or walk out of a folder with ``..``.
- ``trust_remote_code`` is off unless asked for (and warned about then: ``test_models``, ``test_sequence_rm``).
- A scan of the project's Python (library, benchmarks, tests' helpers excluded, notebooks' code cells)
  finds none of the calls that would break these rules; the scan itself is checked on planted samples.
"""

import ast
import pickle
from pathlib import Path

import nbformat
import pytest

from repro import paths
from repro.cli import main

ROOT = paths.project_root()


# -- the scan --------------------------------------------------------------------------------------
def _name(node: ast.AST) -> str:
    """``a.b.c`` for an attribute chain or name, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner or '<expr>'}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_calls(source: str, where: str, *, weights_loader_allowed: bool = False) -> list[str]:
    """Every call in ``source`` that could run code the user did not ask for."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{where}:{node.lineno}: imports {m}" for m in modules
                      if m.split(".")[0] in ("pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve")]
        if not isinstance(node, ast.Call):
            continue
        name, line = _name(node.func), f"{where}:{node.lineno}"
        last = name.rsplit(".", 1)[-1]
        if name in ("eval", "exec", "os.system", "os.popen", "pd.read_pickle", "pandas.read_pickle"):
            found.append(f"{line}: {name}()")
        if last == "load" and name.split(".")[0] == "torch" and not _is_true(_keyword(node, "weights_only")):
            found.append(f"{line}: torch.load without weights_only=True")
        if name in ("np.load", "numpy.load") and _is_true(_keyword(node, "allow_pickle")):
            found.append(f"{line}: np.load(allow_pickle=True)")
        if name.startswith("yaml.") and last in ("load", "load_all", "unsafe_load", "full_load", "unsafe_load_all",
                                                 "full_load_all"):
            found.append(f"{line}: {name} (use yaml.safe_load)")
        if _is_true(_keyword(node, "shell")):
            found.append(f"{line}: {name}(shell=True)")
        if _is_true(_keyword(node, "trust_remote_code")):
            found.append(f"{line}: trust_remote_code=True")
        if last == "from_pretrained" and not weights_loader_allowed:
            owner = name.rsplit(".", 1)[0]
            if "Model" in owner or owner.endswith(("LM", "Classification")):
                found.append(f"{line}: {name} (load weights with repro.models.io.load_weights)")
    return found


def project_sources():
    for path in sorted((ROOT / "src" / "repro").rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")):
        yield str(path.relative_to(ROOT)), path.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and not c.source.startswith(("%", "!")))
        yield str(path.relative_to(ROOT)), code


def test_the_project_makes_no_unsafe_call():
    found = []
    for where, source in project_sources():
        found += unsafe_calls(source, where, weights_loader_allowed=where.endswith("models/io.py"))
    assert not found, "\n".join(found)


PLANTED = {
    "import pickle": "imports pickle",
    "torch.load(f)": "torch.load without weights_only=True",
    "torch.load(f, weights_only=False)": "torch.load without weights_only=True",
    "np.load(f, allow_pickle=True)": "np.load(allow_pickle=True)",
    "yaml.load(text, Loader=yaml.Loader)": "yaml.load (use yaml.safe_load)",
    "yaml.full_load(text)": "yaml.full_load",
    "subprocess.run(cmd, shell=True)": "shell=True",
    "os.system(cmd)": "os.system()",
    "eval(text)": "eval()",
    "AutoModelForCausalLM.from_pretrained(p, trust_remote_code=True)": "trust_remote_code=True",
    "transformers.AutoModel.from_pretrained(p)": "load weights with repro.models.io.load_weights",
}


@pytest.mark.parametrize("source,message", PLANTED.items())
def test_the_scan_finds_each_planted_unsafe_call(source, message):
    assert any(message in f for f in unsafe_calls(source, "planted")), unsafe_calls(source, "planted")


def test_the_scan_passes_safe_calls():
    safe = ("torch.load(f, weights_only=True)\nyaml.safe_load(t)\nsubprocess.run(['git', 'status'])\n"
            "AutoTokenizer.from_pretrained(p)\nnp.load(f)\n")
    assert unsafe_calls(safe, "safe") == []


# -- weights only from safetensors -----------------------------------------------------------------
class _Trap:
    """Unpickling this creates ``path``: proof that a pickle was loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.fixture(scope="module")
def pickled_checkpoint(tmp_path_factory):
    """A real checkpoint folder (config, tokenizer) whose only weights file is a booby-trapped pickle."""
    from repro.models import build_tokenizer, make_llama, save_model

    folder = tmp_path_factory.mktemp("pickled") / "model"
    tokenizer = build_tokenizer(["the", "cat", "sat", "."])
    save_model(make_llama("XXS", tokenizer, seed=0), tokenizer, folder)
    (folder / "model.safetensors").unlink()
    sentinel = folder.parent / "UNPICKLED"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"model.embed_tokens.weight": _Trap(sentinel)}))
    return folder, sentinel


def test_pickled_weights_are_refused_by_every_loader_and_never_unpickled(pickled_checkpoint):
    from repro.judges.sequence_rm import SequenceRewardModel
    from repro.models import ModelNotFound, load_model
    from repro.training.reward import load_reward_model, make_reward_model

    folder, sentinel = pickled_checkpoint
    with pytest.raises(ModelNotFound, match="safetensors"):
        load_model(folder)
    with pytest.raises(ModelNotFound, match="safetensors"):
        SequenceRewardModel(folder, plain_text=True).load()
    for loader in (load_reward_model, make_reward_model):
        with pytest.raises(OSError, match="safetensors"):
            loader(folder)
    assert not sentinel.exists()


def test_the_weights_loader_cannot_be_asked_for_pickles(pickled_checkpoint):
    from transformers import AutoModelForCausalLM

    from repro.models.io import load_weights

    folder, sentinel = pickled_checkpoint
    with pytest.raises(ValueError, match="only from safetensors"):
        load_weights(AutoModelForCausalLM, folder, use_safetensors=False)
    assert not sentinel.exists()


def test_vllm_reads_safetensors_only(monkeypatch, tmp_path):
    import sys
    from types import SimpleNamespace

    from repro.generation.vllm_backend import VLLMGenerator

    built = []
    fake = SimpleNamespace(LLM=lambda model, **kw: built.append(kw), SamplingParams=dict)
    monkeypatch.setitem(sys.modules, "vllm", fake)  # vLLM cannot be installed here (no GPU)
    with pytest.raises(ValueError, match="only from safetensors"):
        VLLMGenerator(str(tmp_path), load_format="pt")
    assert built == []


# -- YAML ------------------------------------------------------------------------------------------
def _python_tag(sentinel: Path) -> str:
    return f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{sentinel}']]"


def test_yaml_with_python_tags_is_refused_and_never_run(tmp_path, capsys):
    sentinel = tmp_path / "RAN"
    tag = _python_tag(sentinel)
    profile = tmp_path / "evil.yaml"
    profile.write_text(f"defaults:\n  seed: {tag}\n")
    sweep = tmp_path / "evil_sweep.yaml"
    sweep.write_text(f"notebook: 30_eva\nseeds: [0]\nparameters:\n  chunks: {tag}\n")
    accelerate = tmp_path / "evil_accelerate.yaml"
    accelerate.write_text(f"compute_environment: {tag}\n")
    store, out = ["--store", str(tmp_path / "store")], ["--output-dir", str(tmp_path / "out")]
    for argv, message in ((["run", "00_world", "--profile", str(profile), *store, *out], "is not valid YAML"),
                          (["run", "00_world", "-p", f"seed={tag}", *store, *out], "malformed value for 'seed'"),
                          (["sweep", str(sweep), "--dry-run", *store], "not valid YAML"),
                          (["run", "00_world", "-p", f"accelerate_config_path={accelerate}", *store, *out],
                           "is not a valid accelerate config: ConstructorError")):
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not sentinel.exists() and not (tmp_path / "store").exists()


# -- no shell --------------------------------------------------------------------------------------
def test_a_parameter_with_shell_syntax_reaches_a_subprocess_as_one_argument(tmp_path):
    import shutil

    from repro.runs.launch import launch_command

    config = tmp_path / "cpu; touch RAN $(touch RAN) `touch RAN`.yaml"
    shutil.copy(ROOT / "configs" / "accelerate" / "cpu_2proc.yaml", config)
    command, _ = launch_command(config, tmp_path / "job.json")
    assert str(config) in command and isinstance(command, list)
    assert not (tmp_path / "RAN").exists() and not Path("RAN").exists()


# -- paths -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["run", "30_eva", "-p", "results_path=../../outside.parquet"], "contains '..'"),
    (["run", "30_eva", "-p", "results_path=/tmp/a/../../etc/metrics.parquet"], "contains '..'"),
    (["run", "30_eva", "-p", "results_path=metrics.csv"], "must name a .parquet file"),
    (["run", "21_rlaif_rl", "-p", "labeller_paths={'../../x': org/model}"], "has the name '../../x'"),
    (["run", "21_rlaif_rl", "-p", "labeller_paths={'a/b': org/model}"], "has the name 'a/b'"),
])
def test_paths_and_names_from_parameters_cannot_walk_out(argv, message, capsys, tmp_path):
    assert main(argv + ["--store", str(tmp_path / "store")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_a_results_path_is_made_absolute(tmp_path, monkeypatch):
    from repro.runs.notebooks import load_profile, resolve_notebook, resolve_parameters

    monkeypatch.chdir(tmp_path)
    chosen = resolve_parameters(resolve_notebook("30_eva"), load_profile(None), {"results_path": "m.parquet"})
    assert chosen["results_path"] == str(tmp_path / "m.parquet")


def test_sweep_run_names_never_become_paths(tmp_path):
    from repro.runs.sweep import load_sweep

    sweep = tmp_path / "names.yaml"
    sweep.write_text("notebook: 30_eva\nseeds: [0]\nruns:\n  - {name: ../../../escape, chunks: 3}\n"
                     "  - {name: /etc/passwd, chunks: 4}\n")
    loaded = load_sweep(sweep, profile="smoke")
    assert all(run.id.isalnum() for run in loaded.runs)  # run folders are named by a hash, not the name


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "/abs", "a/../../b", ""])
def test_stage_names_cannot_escape_the_store(tmp_path, name):
    from repro.runs.store import RunStore, StoreError

    store = RunStore(tmp_path / "store")
    with pytest.raises(StoreError, match="invalid stage name"):
        store.run(name, {}, lambda workdir: None)
    assert not (tmp_path / "x").exists() and not (tmp_path / "b").exists()
