"""Parameterized notebooks: discovery, profiles, parameter validation and execution with papermill.

Every study notebook has one cell tagged ``parameters`` whose lines read ``name: type = default  # help``.
Those defaults are the embedded **tiny** profile. A *profile* (``configs/profiles/NAME.yaml`` or a
file) overrides them::

    description: one line shown by `repro list`
    defaults:            # applied to every notebook that declares the parameter
      seeds: [0, 1, 2]
    notebooks:           # per notebook; a name the notebook does not declare is an error
      00_world:
        corpus_docs: 400

Command-line ``-p name=value`` pairs override the profile. Values are parsed as YAML scalars/lists
(``3``, ``0.5``, ``true``, ``[0, 1]``, ``hello``) and checked against the declared type *before* a
kernel starts: papermill alone would only warn about an unknown name.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from repro import paths
from repro.errors import ReproError, exit_code_of
from repro.progress import EVENTS_ENV, follow_stages, input_event
from repro.runs import kept
from repro.runs.launch import launch_shape
from repro.runs.ranges import check_range, rule_for

KERNEL_NAME = "repro"
#: Parameters naming a file the notebook writes (the others ending in ``_path`` name inputs, which must exist).
OUTPUT_PATHS = frozenset({"results_path"})
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


class ParameterError(ReproError):
    """An unknown, mistyped or invalid notebook parameter, profile or notebook name."""


class NotebookFailed(ReproError):
    """A cell raised; the executed notebook is kept for inspection."""

    exit_code = 1


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any
    help: str

    def describe(self) -> str:
        rule = rule_for(self.name)
        accepted = f" ({rule.describe()})" if rule is not None else ""
        return f"{self.name}: {self.type} = {self.default!r}" + (f"  # {self.help}" if self.help else "") + accepted


# -- discovery -------------------------------------------------------------------------------------
def list_notebooks(directory: Path | None = None) -> list[Path]:
    directory = directory or paths.notebooks_dir()
    return sorted(p for p in directory.glob("*.ipynb") if not p.name.startswith("."))


def resolve_notebook(name: str | os.PathLike, directory: Path | None = None) -> Path:
    """A notebook by name (``00_world``), prefix (``00``), file name or path."""
    candidate = Path(name)
    if candidate.suffix == ".ipynb" and candidate.is_file():
        return candidate.resolve()
    available = list_notebooks(directory)
    stem = candidate.name.removesuffix(".ipynb")
    exact = [p for p in available if p.stem == stem]
    matches = exact or [p for p in available if p.stem.startswith(stem + "_")]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(p.stem for p in available) or "(none)"
    raise ParameterError(f"unknown notebook {str(name)!r}; available: {names}")


def notebook_parameters(notebook: Path) -> dict[str, Parameter]:
    """The declared parameters of a notebook, read from its ``parameters`` cell.

    Inside a run, reading them is recorded as an input of the run (`repro.progress.input_event`): a chapter
    that shows another notebook's defaults (``11_dev_settings`` reads those of ``10_self_rewarding``) is not
    kept (`repro.runs.kept`) once that notebook has changed."""
    import papermill

    input_event(notebook)
    found = papermill.inspect_notebook(str(notebook))
    if not found:
        raise ParameterError(f"{notebook.name} has no cell tagged 'parameters'")
    params = {}
    for name, spec in found.items():
        type_name = spec["inferred_type_name"]
        if type_name not in _TYPES:
            raise ParameterError(f"{notebook.name}: parameter {name!r} must be annotated with one of "
                                 f"{', '.join(_TYPES)} (found {type_name!r})")
        params[name] = Parameter(name, type_name, _literal(spec["default"]), spec["help"])
    return params


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# -- profiles --------------------------------------------------------------------------------------
def available_profiles() -> list[str]:
    return sorted(p.stem for p in paths.profiles_dir().glob("*.yaml"))


def load_profile(profile: str | os.PathLike | None) -> dict:
    """A profile by name (``tiny``, ``smoke``, ...) or YAML file path; None means tiny (no overrides)."""
    if profile is None:
        return {"name": "tiny", "defaults": {}, "notebooks": {}}
    path = Path(profile)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = paths.profiles_dir() / f"{profile}.yaml"
        if not path.is_file():
            raise ParameterError(f"unknown profile {str(profile)!r}; available: {', '.join(available_profiles())} "
                                 "(or a path to a .yaml file)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"profile {path} is not valid YAML: {one_line(exc)}") from exc
    if not isinstance(data, dict) or not set(data) <= {"description", "defaults", "notebooks"}:
        raise ParameterError(f"profile {path} must be a mapping with keys description, defaults, notebooks")
    for section in ("defaults", "notebooks"):
        if not isinstance(data.get(section) or {}, dict):
            raise ParameterError(f"profile {path}: '{section}' must be a mapping")
    return {"name": path.stem, "path": str(path), "defaults": data.get("defaults") or {},
            "notebooks": data.get("notebooks") or {}, "description": data.get("description", "")}


# -- validation ------------------------------------------------------------------------------------
def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``["n=3", "name=abc"]`` -> ``{"n": 3, "name": "abc"}`` (values parsed as YAML)."""
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"malformed parameter {pair!r}: expected name=value")
        try:
            out[name.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ParameterError(f"malformed value for {name.strip()!r}: {one_line(exc)}") from exc
    return out


def check_value(notebook: str, param: Parameter, value: Any, source: str) -> Any:
    expected = _TYPES[param.type]
    if param.type == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # `-p model=70` means the string "70"
    if param.type in ("int", "float") and isinstance(value, bool) or not isinstance(value, expected):
        raise ParameterError(f"{notebook}: parameter {param.name!r} ({source}) must be {param.type}, "
                             f"got {type(value).__name__} {value!r}")
    if param.type == "float":
        value = float(value)
    if (problem := check_range(param.name, value)) is not None:
        raise ParameterError(f"{notebook}: parameter {param.name!r} ({source}) {problem}")
    if param.name in OUTPUT_PATHS and isinstance(value, str) and value:
        value = _output_path(notebook, param.name, value)
    elif param.name.endswith("_path") and isinstance(value, str) and value:
        local = paths.existing_path(value)
        if local is not None:
            value = str(local)  # absolute, so the kernel finds it whatever its working folder
            if param.name == "accelerate_config_path":
                _check_accelerate_config(notebook, local)
        elif value.lower().endswith(".gguf"):
            raise ParameterError(f"{notebook}: {param.name} = {value!r} does not exist (the real-small model is "
                                 "fetched by `make real-small`)")
        elif not _HUB_ID.match(value):
            raise ParameterError(f"{notebook}: {param.name} = {value!r} does not exist "
                                 "(give a local folder or a hub id such as org/name)")
    return value


def _output_path(notebook: str, name: str, value: str) -> str:
    """An output file a notebook writes (``results_path``): a ``.parquet`` file, named without ``..``
    (a parameter cannot walk out of the folder it names), made absolute for the kernel."""
    path = Path(value).expanduser()
    if ".." in path.parts:
        raise ParameterError(f"{notebook}: {name} = {value!r} contains '..': give the file's path without it")
    if path.suffix != ".parquet":
        raise ParameterError(f"{notebook}: {name} = {value!r} must name a .parquet file")
    if not path.absolute().parent.is_dir():
        raise ParameterError(f"{notebook}: {name} = {value!r}: its folder does not exist")
    return str(path.absolute())


def _check_accelerate_config(notebook: str, path: Path) -> None:
    """An accelerate config is read with accelerate's own loader (a safe YAML loader) before a kernel
    starts, so that a broken file fails here and not in the middle of a study."""
    try:
        launch_shape(path)
    except Exception as exc:  # accelerate raises YAML, type and value errors alike
        raise ParameterError(f"{notebook}: accelerate_config_path = {str(path)!r} is not a valid accelerate "
                             f"config: {type(exc).__name__}: {one_line(exc)}") from None


def resolve_parameters(notebook: Path, profile: dict, overrides: dict[str, Any]) -> dict[str, Any]:
    """The parameters to inject: profile defaults (where declared) < profile notebook section < CLI."""
    declared = notebook_parameters(notebook)
    name = notebook.stem
    valid = ", ".join(declared)
    chosen: dict[str, Any] = {}
    for key, value in profile["defaults"].items():
        if key in declared:
            chosen[key] = check_value(name, declared[key], value, f"profile {profile['name']}")
    section = profile["notebooks"].get(name) or {}
    for key, value in section.items():
        if key not in declared:
            raise ParameterError(f"profile {profile['name']}: {name} has no parameter {key!r}; valid: {valid}")
        chosen[key] = check_value(name, declared[key], value, f"profile {profile['name']}")
    for key, value in overrides.items():
        if key not in declared:
            raise ParameterError(f"{name} has no parameter {key!r}; valid: {valid}")
        chosen[key] = check_value(name, declared[key], value, "-p")
    return chosen


# -- execution -------------------------------------------------------------------------------------
#: How jupyter_client's ``wait_for_ready`` says that the kernel died before it answered (a RuntimeError).
KERNEL_DIED_AT_START = "Kernel died before replying to kernel_info"


def kernel_name() -> str:
    """The project's kernel if registered (``make setup`` does it), else the current interpreter's."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def _inputs_key(notebook: Path, parameters: dict[str, Any], profile: dict, store: Path) -> str:
    """`kept.inputs_key` of a run, with the declared defaults too (a default may name a file it hashes)."""
    effective = {**{n: p.default for n, p in notebook_parameters(notebook).items()}, **parameters}
    return kept.inputs_key(notebook, effective, profile, store)


def _run_paths(notebook: Path, output_dir: Path | None, store: Path | None) -> tuple[Path, Path, Path]:
    """A run's folder for executed notebooks, its executed copy there, and its run store, resolved (the
    defaults: ``book/generated`` and the project's store)."""
    folder = (output_dir or paths.generated_dir()).resolve()
    return folder, folder / notebook.name, Path(store).resolve() if store is not None else paths.store_root()


def kept_run(notebook: Path, parameters: dict[str, Any], *, profile: dict, output_dir: Path | None = None,
             store: Path | None = None) -> dict | None:
    """The record of the finished run of ``notebook`` in ``output_dir`` whose executed copy can be kept
    (the same inputs, every stage it read unchanged: `repro.runs.kept`), with its ``output`` path; or None:
    execute it."""
    output_dir, output, store_path = _run_paths(notebook, output_dir, store)
    record = kept.kept(output_dir / f"{notebook.stem}.run.json", output,
                       _inputs_key(notebook, parameters, profile, store_path), store_path)
    return None if record is None else {**record, "output": str(output)}


def execute(
    notebook: Path,
    parameters: dict[str, Any],
    *,
    profile: dict,
    output_dir: Path | None = None,
    store: Path | None = None,
    progress: bool = True,
) -> Path:
    """Execute a notebook with papermill; returns the executed copy's path.

    The record says what the executed copy was made from and which stages it read, so that the next
    run can keep it while all of that is unchanged (`kept_run`).

    The executed copy is written next to a ``NAME.run.json`` record (parameters, profile, times,
    status). The injected-parameters cell is tagged ``remove-cell`` so that the book hides it: each
    notebook shows its effective parameters itself.
    """
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    output_dir, output, store_path = _run_paths(notebook, output_dir, store)
    output_dir.mkdir(parents=True, exist_ok=True)
    # A run records what it was made from only if it follows its own stage events (a sweep's runs do not).
    recording = progress or EVENTS_ENV not in os.environ
    inputs = _inputs_key(notebook, parameters, profile, store_path) if recording else None
    run_id = f"{notebook.stem}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    record = {"notebook": notebook.stem, "run_id": run_id, "profile": profile["name"], "parameters": parameters,
              "store": str(store_path),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "status": "running"}
    # A folder of this run's own: the kernel's sockets and the stage events it reports (`repro.progress`).
    private = Path(tempfile.mkdtemp(prefix="repro-kernel-"))
    events = private / "events.jsonl"
    # The kernel inherits these. No progress bars inside the notebooks: the runner shows the progress.
    kernel_env = {"REPRO_PROFILE": profile["name"], "REPRO_RUN_ID": run_id, "REPRO_PROGRESS": "0",
                  "TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if recording:  # else a runner above this one (a sweep run by a notebook) is following them
        kernel_env[EVENTS_ENV] = str(events)
    if store is not None:
        kernel_env["REPRO_STORE"] = str(store_path)
    env_backup = {key: os.environ.get(key) for key in kernel_env}
    os.environ.update(kernel_env)
    # On a terminal, papermill's bar over the cells (named explicitly: TQDM_DISABLE above is the kernel's).
    cells_bar = {"disable": False} if progress and sys.stderr.isatty() else False
    start = time.perf_counter()
    try:
        with follow_stages(events, sys.stderr) if progress else nullcontext():
            papermill.execute_notebook(
                str(notebook), str(output), parameters=parameters, kernel_name=kernel_name(),
                progress_bar=cells_bar, cwd=str(notebook.parent), log_output=False, config=_kernel_config(private),
                kernel_manager_class=quiet_shutdown_manager(),
            )
    except PapermillExecutionError as exc:
        record.update(status="failed", error=f"{exc.ename}: {one_line(exc.evalue)}", cell=exc.exec_count)
        failure = NotebookFailed(f"{notebook.stem} failed in cell {exc.exec_count}: {exc.ename}: "
                                 f"{one_line(exc.evalue)} (executed notebook kept at {output})")
        # bad input met inside the kernel (a data file, a model path, a full store) keeps its exit code 2
        failure.exit_code = exit_code_of(exc.ename) or NotebookFailed.exit_code
        raise failure from None
    except DeadKernelError:
        record.update(status="failed", error="the kernel died")
        raise NotebookFailed(f"{notebook.stem}: the kernel died (killed, or out of memory?); every finished stage "
                             f"is kept: run the same command again to resume (executed notebook kept at {output})"
                             ) from None
    except RuntimeError as exc:  # jupyter_client's word for a kernel that died while it started
        if not str(exc).startswith(KERNEL_DIED_AT_START):
            raise
        record.update(status="failed", error="the kernel died as it started")
        raise NotebookFailed(f"{notebook.stem}: the kernel died as it started (killed, or out of memory?); "
                             "run the same command again to resume") from None
    else:
        record["status"] = "complete"
        if inputs is not None:
            record.update(inputs=inputs, read=kept.stages_read(events, store_path),
                          claims_file=kept.claims_file(store_path, run_id))
    finally:
        shutil.rmtree(private, ignore_errors=True)
        for key, value in env_backup.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        record["duration_s"] = round(time.perf_counter() - start, 2)
        if output.exists():
            _hide_injected_cell(output)
        (output_dir / f"{notebook.stem}.run.json").write_text(json.dumps(record, indent=2, default=str))
    return output


def _kernel_config(folder: Path):
    """The kernel's sockets: Unix sockets in ``folder`` (IPC transport), not TCP ports. The kernel runs on
    this machine, so it needs no network port (and no port that a parallel run could take first), and
    ipykernel warns of every kernel on TCP that its messages travel unencrypted."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": str(folder / "kernel")}})


@functools.cache
def quiet_shutdown_manager() -> type:
    """The kernel manager of every run: jupyter_client's, except that it does not interrupt the kernel on
    the way to shutting it down.

    jupyter_client sends a kernel SIGINT before its shutdown request. papermill shuts the kernel down once
    the last cell has answered (or one has failed), so there is nothing left to interrupt; but the kernel
    may still be in the tail of its last message's handler, where ipykernel turns the signal into a
    KeyboardInterrupt and logs "KeyboardInterrupt caught in kernel." on the run's stderr: noise in a plain
    log, and a line a user reads as a failure. The shutdown request alone is enough; a kernel that does not
    answer it is killed after jupyter_client's wait, as before."""
    from jupyter_client import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:  # an interrupt asked for while the kernel runs still goes through
                await super()._async_interrupt_kernel()

    return QuietShutdownKernelManager


def _hide_injected_cell(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("injected-parameters" in tags or "parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def one_line(text: Any, limit: int = 300) -> str:
    """``text`` on one line (whitespace runs become one space), cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
