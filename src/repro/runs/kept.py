"""An executed notebook kept when nothing it reads has changed (``repro run`` and ``repro run-all``).

A notebook whose stages are all in the store still takes a kernel, its imports and its cells to run
again (3-7 s each on 2 cores), and gives the very same executed notebook. So a finished run records
what its executed notebook was made from, and the next ``repro run`` of that notebook into the same
folder keeps the executed notebook instead of executing it again when all of it is unchanged:

* **its inputs** (`inputs_key`): the notebook file, its parameters, the profile, the run store's folder,
  the content of every file or folder that a ``*_path`` or ``*_paths`` parameter names (a model, a data
  file, an accelerate config), the
  library's code and data (``src/repro``), the configs (``configs/``: profiles, sweeps), the pinned
  requirements, the installed packages and their versions, the Python version, and the environment's
  ``REPRO_*`` and ``CUDA_VISIBLE_DEVICES`` settings;
* **the stages it read** (`stages_read`): every stage the run computed, reused or copied from the
  package, its own sweep runs' stages included, each still in the store as the very stage the run read
  (its manifest's ``finished`` time), the results table of each sweep it ran and every other notebook
  whose parameters it read (their size and time). A stage deleted from the store, or computed again,
  makes the next run execute the notebook, which computes what is missing; so does a sweep's table or
  a notebook read that changed or is gone;
* **what it wrote**: the executed notebook, and the chapter's claims record when it wrote one.

Anything else makes the run execute the notebook, as ``--rerun`` always does. Only a run that itself
followed the stage events can be kept (a sweep's runs are the sweep's business: `repro.runs.sweep`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import repro
from repro import paths
from repro.runs.store import MANIFEST

FORMAT = 1  # bumped when what the key covers changes: every recorded run then executes once more
#: Files of the checkout that a notebook's run depends on besides the package (which is hashed whole).
PROJECT_INPUTS = ("configs", "requirements/constraints.txt", "pyproject.toml")
#: Environment settings that change what a run does; the runner's own (run id, events file) are not inputs.
ENVIRONMENT = ("CUDA_VISIBLE_DEVICES",)
RUNNER_OWN = frozenset({"REPRO_RUN_ID", "REPRO_EVENTS", "REPRO_PROGRESS"})
STAGE_EVENTS = ("done", "reused", "shipped")


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _digest_files(digest: Any, files: Iterable[Path], base: Path) -> None:
    for file in files:
        digest.update(f"{file.relative_to(base) if base in file.parents else file}\0".encode())
        with open(file, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())


@functools.cache
def code_digest() -> str:
    """The library (``src/repro``, code and data), the configs, the pins and the installed packages."""
    digest = hashlib.sha256(f"format {FORMAT}\0python {sys.version}\0".encode())
    package = Path(repro.__file__).resolve().parent
    _digest_files(digest, _files(package), package.parent)
    root = paths.project_root()
    for name in PROJECT_INPUTS:
        if (root / name).exists():
            _digest_files(digest, _files(root / name), root)
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    digest.update("\n".join(installed).encode())
    return digest.hexdigest()


def _named_files(value: Any) -> list[Path]:
    """The existing files and folders that a parameter value names (strings, in lists and dicts too)."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _named_files(v)]
    if isinstance(value, list):
        return [p for v in value for p in _named_files(v)]
    if isinstance(value, str) and value and len(value) < 4096:
        found = paths.existing_path(value)
        return [found] if found is not None else []
    return []


def inputs_key(notebook: Path, parameters: dict, profile: dict, store: Path) -> str:
    """A hash of everything but the stages that an executed ``notebook`` is made from (module docstring)."""
    digest = hashlib.sha256(code_digest().encode())
    digest.update(Path(notebook).read_bytes())
    for part in (parameters, profile, str(Path(store).resolve()),
                 {k: v for k, v in os.environ.items()
                  if (k.startswith("REPRO_") and k not in RUNNER_OWN) or k in ENVIRONMENT}):
        digest.update(b"\0" + json.dumps(part, sort_keys=True, default=str).encode())
    for named in _named_files([v for k, v in parameters.items() if k.endswith(("_path", "_paths"))]):
        _digest_files(digest, _files(named), named.parent)
    return digest.hexdigest()


def _finished(store: Path, stage: str) -> str | None:
    """A stage's ``finished`` time; for ``file:PATH`` (a file read that is not a stage), its size and
    modification time."""
    if stage.startswith("file:"):
        try:
            found = Path(stage.removeprefix("file:")).stat()
        except OSError:
            return None
        return f"{found.st_size}:{found.st_mtime_ns}"
    try:
        return json.loads((store / "stages" / stage / MANIFEST).read_text()).get("finished")
    except (OSError, ValueError):
        return None


def stages_read(events: Path, store: Path) -> dict[str, str | None]:
    """``{"name/key": finished}`` of every stage that the events file says was computed, reused or copied,
    and ``{"file:PATH": "size:mtime"}`` of the other files it says were read (sweep tables, notebooks)."""
    read: dict[str, str | None] = {}
    if events.is_file():
        for line in events.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") in STAGE_EVENTS:
                stage = f"{event['stage']}/{event['key']}"
            elif event.get("event") == "input":
                stage = f"file:{event['path']}"
            else:
                continue
            read[stage] = _finished(store, stage)
    return read


def claims_file(store: Path, run_id: str) -> str | None:
    """The claims record the run wrote (``claims/<run id>.json``), if any."""
    return f"{run_id}.json" if (store / "claims" / f"{run_id}.json").is_file() else None


def kept(record_path: Path, output: Path, key: str, store: Path) -> dict | None:
    """The record of the finished run whose executed notebook ``output`` can be kept for inputs ``key``
    (module docstring), or None when the notebook must be executed."""
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "complete" or record.get("inputs") != key or not output.is_file():
        return None
    read = record.get("read")
    if not isinstance(read, dict) or any(_finished(store, s) != f or f is None for s, f in read.items()):
        return None
    claims = record.get("claims_file")
    if claims and not (store / "claims" / claims).is_file():
        return None
    return record
