"""The run store: content-addressed, resumable stages.

A *stage* is one step of a study ("pretrain the base model", "judge the candidates of iteration 2").
It is identified by its name and a hash of its parameters together with the keys of the stages it
consumes (its upstream), so that

* a finished stage is reused whenever it is asked for again with the same inputs,
* changing one parameter re-runs only the stages whose key it changes (it changes their own key and,
  through ``upstream``, the keys of everything downstream of them).

Layout under the store root::

    stages/<name>/<key>/            a finished stage: its artifacts + manifest.json
    tmp/<name>-<key>-<pid>-<rand>/  a stage being computed (renamed into place when done)
    failed/<name>-<key>.json        the manifest of the last failed attempt, with its error

A stage is computed in a temporary folder and renamed into place in one ``os.rename``: a run killed at
any moment (even ``kill -9``) leaves either a finished stage or a temporary folder that the next run
removes and recomputes, never a half-written stage.

**Shipped stages.** Some stages are expensive to compute and cheap to keep (the base model M0: an hour of
pre-training on two cores, a few MB of weights). The package ships them, finished, in
``repro/shipped/<name>/<key>/`` (the very folder a computation writes, with its manifest). Asked for
such a stage with ``shipped=True``, the store copies the shipped folder in, under the same key that a
computation would give it, and records where it came from (``adopted_from``); ``force=True`` computes
it from nothing instead.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from repro.errors import ReproError
from repro.progress import stage_event

MANIFEST = "manifest.json"
#: Set by a sweep for the kernels of its runs, "<sweep folder>/<run id>": their claims records say so.
SWEEP_RUN_ENV = "REPRO_SWEEP_RUN"
#: OSError numbers of a full disk or of a place that cannot be written.
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TRACKED_PACKAGES = ("torch", "transformers", "trl", "datasets", "accelerate", "tokenizers", "numpy", "papermill")


# Every stage this process asked the store for, in order: (name, key, seconds it took to compute,
# whether this process computed it). A notebook's provenance box shows them (`touched`).
_TOUCHED: list[tuple[str, str, float, bool]] = []


def touched() -> list[dict]:
    """The stages this process has used so far: name, key, compute seconds (from the manifest) and
    whether they were computed now or reused from an earlier run."""
    return [{"stage": n, "key": k, "seconds": s, "computed": c} for n, k, s, c in _TOUCHED]


class StoreError(ReproError):
    """The run store cannot be used (unwritable, bad stage name, corrupt manifest)."""


class StageFailed(ReproError):
    """A stage's computation raised; its error is kept in ``failed/`` and nothing finished is lost."""

    exit_code = 1


def canonical(obj: Any) -> Any:
    """Turn parameters into plain JSON data with a stable form (used for hashing and manifests)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return canonical(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item"):  # numpy / torch scalars
        return canonical(obj.item())
    raise TypeError(f"cannot use a value of type {type(obj).__name__} as a stage parameter: {obj!r}")


def params_hash(payload: Any) -> str:
    text = json.dumps(canonical(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("repro", *_TRACKED_PACKAGES):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def git_commit(cwd: Path | None = None) -> str | None:
    """The checkout's commit, with ``+dirty`` when tracked files differ from it; None outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def shipped_root() -> Path:
    """Where the package's shipped stages are (``repro/shipped``)."""
    return Path(str(resources.files("repro").joinpath("shipped")))


def shipped_stage(name: str, key: str) -> Path | None:
    """The shipped folder of stage ``name``/``key``, or None when the package ships no such stage."""
    folder = shipped_root() / name / key
    return folder if (folder / MANIFEST).is_file() else None


@dataclasses.dataclass(frozen=True)
class Stage:
    """A finished stage: where its artifacts are and what its manifest says."""

    name: str
    key: str
    path: Path
    manifest: dict

    def __truediv__(self, artifact: str) -> Path:
        return self.path / artifact

    @property
    def results(self) -> dict:
        return self.manifest.get("results", {})

    def __repr__(self) -> str:  # short, for notebooks
        return f"Stage({self.name}/{self.key}, {self.manifest.get('duration_s', 0):.1f}s)"


class RunStore:
    """A folder of content-addressed stages. Cheap to construct; creates folders lazily."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self._commit: str | None | bool = False  # computed once, lazily

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # -- keys and paths -------------------------------------------------------------------------
    @staticmethod
    def valid_name(name: object) -> bool:
        """Letters, digits, ``_``, ``-`` and ``.`` (at most 128), no path separator and no ``..``."""
        return isinstance(name, str) and bool(_NAME_RE.fullmatch(name)) and ".." not in name

    @staticmethod
    def check_name(name: str) -> str:
        if not RunStore.valid_name(name):
            raise StoreError(f"invalid stage name {name!r}: use letters, digits, '_', '-', '.' "
                             "(no path separators, no '..')")
        return name

    def key(self, name: str, params: Any, upstream: Iterable[Stage] = ()) -> str:
        self.check_name(name)
        return params_hash({"stage": name, "params": params,
                            "upstream": sorted(f"{s.name}/{s.key}" for s in upstream)})

    def stage_dir(self, name: str, key: str) -> Path:
        path = (self.root / "stages" / self.check_name(name) / key).resolve()
        if self.root not in path.parents:
            raise StoreError(f"stage path {path} escapes the run store {self.root}")
        return path

    # -- reading --------------------------------------------------------------------------------
    def get(self, name: str, params: Any, upstream: Iterable[Stage] = ()) -> Stage | None:
        """The finished stage for these inputs, or None."""
        upstream = list(upstream)
        return self._load(name, self.key(name, params, upstream))

    def _load(self, name: str, key: str) -> Stage | None:
        path = self.stage_dir(name, key)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"corrupt manifest {manifest_path}: {exc}") from exc
        if manifest.get("status") != "complete":
            return None
        return Stage(name, key, path, manifest)

    def stages(self) -> list[Stage]:
        """Every finished stage, oldest first."""
        found = []
        for manifest_path in (self.root / "stages").glob(f"*/*/{MANIFEST}"):
            stage = self._load(manifest_path.parent.parent.name, manifest_path.parent.name)
            if stage is not None:
                found.append(stage)
        return sorted(found, key=lambda s: (s.manifest.get("started", ""), s.manifest.get("finished", "")))

    def incomplete(self) -> list[Path]:
        """Temporary folders of stages that are running, or were interrupted."""
        tmp = self.root / "tmp"
        return sorted(tmp.iterdir()) if tmp.is_dir() else []

    def failures(self) -> list[dict]:
        failed = self.root / "failed"
        return [json.loads(p.read_text()) for p in sorted(failed.glob("*.json"))] if failed.is_dir() else []

    # -- computing ------------------------------------------------------------------------------
    def run(
        self,
        name: str,
        params: Any,
        compute: Callable[[Path], Mapping[str, Any] | None],
        *,
        upstream: Iterable[Stage] = (),
        seed: int | None = None,
        force: bool = False,
        shipped: bool = False,
    ) -> Stage:
        """Return the finished stage ``name`` for ``params``, computing it first if needed.

        ``compute(workdir)`` writes the stage's artifacts into ``workdir`` and may return a dict of
        small JSON results (metrics, counts) that are kept in the manifest. ``shipped``: take the
        package's shipped copy of the stage, when there is one, instead of computing it (see the module).
        """
        upstream = list(upstream)
        key = self.key(name, params, upstream)
        if not force and (done := self._load(name, key)) is not None:
            _TOUCHED.append((name, key, float(done.manifest.get("duration_s", 0.0)), False))
            stage_event("reused", name, key, float(done.manifest.get("duration_s", 0.0)))
            return done
        if shipped and not force and (source := shipped_stage(name, key)) is not None:
            return self.adopt(name, key, source)

        final = self.stage_dir(name, key)
        workdir = self._make_tmp(name, key)
        manifest = {
            "name": name,
            "key": key,
            "status": "running",
            "params": canonical(params),
            "upstream": {s.name: s.key for s in upstream},
            "seed": seed,
            "versions": package_versions(),
            "git_commit": self._git_commit(),
            "host": platform.node(),
            "pid": os.getpid(),
            "started": _now(),
        }
        start = time.perf_counter()
        stage_event("start", name, key)
        try:
            results = compute(workdir)
            manifest.update(status="complete", finished=_now(), duration_s=round(time.perf_counter() - start, 3),
                            results=canonical(dict(results or {})),
                            artifacts=sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*") if p.is_file()))
            self._write_json(workdir / MANIFEST, manifest)
            final.parent.mkdir(parents=True, exist_ok=True)
            stage_event("done", name, key, manifest["duration_s"])
        except BaseException as exc:
            manifest.update(status="failed", finished=_now(), duration_s=time.perf_counter() - start,
                            error=f"{type(exc).__name__}: {exc}",
                            traceback=traceback.format_exc(limit=20))
            shutil.rmtree(workdir, ignore_errors=True)  # first: it frees the space a full disk needs
            stage_event("failed", name, key, manifest["duration_s"])
            self._record_failure(name, key, manifest)
            if (problem := self._storage_problem(exc, name, key)) is not None:
                raise problem from exc
            if isinstance(exc, Exception) and not isinstance(exc, ReproError):
                raise StageFailed(f"stage {name}/{key} failed: {type(exc).__name__}: {exc}") from exc
            raise
        if final.exists():  # a forced recompute replaces it; a concurrent twin may have won the race
            if force:
                shutil.rmtree(final)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
                return self._load(name, key) or self._fail_missing(name, key)
        try:
            os.rename(workdir, final)
        except OSError as exc:  # a twin (another launched process of the same study) renamed its copy first
            if force or not final.exists():
                shutil.rmtree(workdir, ignore_errors=True)
                raise self._storage_problem(exc, name, key) or exc
            shutil.rmtree(workdir, ignore_errors=True)
            return self._load(name, key) or self._fail_missing(name, key)
        (self.root / "failed" / f"{name}-{key}.json").unlink(missing_ok=True)
        _TOUCHED.append((name, key, float(manifest["duration_s"]), True))
        return Stage(name, key, final, manifest)

    def adopt(self, name: str, key: str, source: Path) -> Stage:
        """Copy a finished stage folder (a shipped one) into the store as stage ``name``/``key``. Its
        manifest must name that very stage, finished; the copy records where it came from."""
        try:
            manifest = json.loads((Path(source) / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"cannot read the manifest of the stage at {source}: {exc}") from exc
        if (manifest.get("name"), manifest.get("key"), manifest.get("status")) != (name, key, "complete"):
            raise StoreError(f"{source} does not hold the finished stage {name}/{key} (its manifest names "
                             f"{manifest.get('name')}/{manifest.get('key')}, {manifest.get('status')})")
        final = self.stage_dir(name, key)
        workdir = self._make_tmp(name, key)
        shutil.rmtree(workdir)
        shutil.copytree(source, workdir)
        manifest["adopted_from"] = str(source)
        self._write_json(workdir / MANIFEST, manifest)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(workdir, final)
        except OSError:  # a twin adopted it first
            shutil.rmtree(workdir, ignore_errors=True)
        _TOUCHED.append((name, key, 0.0, False))
        stage_event("shipped", name, key)
        return self._load(name, key) or self._fail_missing(name, key)

    def _storage_problem(self, exc: BaseException, name: str, key: str) -> StoreError | None:
        """A full disk, or a store that cannot be written, as a message naming the path (None for any
        other error). Finished stages are never touched by a failing one, so the message says so."""
        if not isinstance(exc, OSError) or exc.errno not in STORAGE_ERRNOS:
            return None
        where = exc.filename or self.root
        inside = Path(where).resolve().is_relative_to(self.root)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and not inside:
            return None  # an input the stage could not read: the stage's own error says more
        what = ("the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else
                f"cannot write ({os.strerror(exc.errno)})")
        return StoreError(f"stage {name}/{key}: {what} at {where} (run store {self.root}); every finished "
                          "stage is kept: free space or fix the permissions and rerun to resume")

    def _fail_missing(self, name: str, key: str) -> Stage:
        raise StoreError(f"stage {name}/{key} exists but has no complete manifest")

    def _make_tmp(self, name: str, key: str) -> Path:
        tmp = self.root / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            self._clean_stale(tmp, f"{name}-{key}-")
            workdir = tmp / f"{name}-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            workdir.mkdir()
        except OSError as exc:
            raise StoreError(f"cannot write to the run store at {self.root}: {exc.strerror or exc}") from exc
        return workdir

    @staticmethod
    def _clean_stale(tmp: Path, prefix: str) -> None:
        """Remove temporary folders of the same stage left by processes that no longer exist."""
        for old in tmp.glob(prefix + "*"):
            pid = old.name[len(prefix):].split("-")[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)

    def _record_failure(self, name: str, key: str, manifest: dict) -> None:
        try:
            (self.root / "failed").mkdir(parents=True, exist_ok=True)
            self._write_json(self.root / "failed" / f"{name}-{key}.json", manifest)
        except OSError:
            pass  # the original error is more useful than this one

    @staticmethod
    def _write_json(path: Path, data: dict) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
        os.replace(tmp, path)

    def _git_commit(self) -> str | None:
        if self._commit is False:
            self._commit = git_commit()
        return self._commit  # type: ignore[return-value]


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
