"""Where things live: the project checkout, the notebooks, the book, the run store."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout that holds this package (editable install), else the current directory.

    ``REPRO_ROOT`` overrides it.
    """
    if env := os.environ.get("REPRO_ROOT"):
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent, *Path.cwd().resolve().parents, Path.cwd().resolve()):
        if (candidate / "notebooks").is_dir() and (candidate / "pyproject.toml").is_file():
            return candidate
    return Path.cwd().resolve()


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def profiles_dir() -> Path:
    return project_root() / "configs" / "profiles"


def generated_dir() -> Path:
    """Executed notebooks go here; the book renders them from here."""
    return Path(os.environ.get("REPRO_GENERATED") or project_root() / "book" / "generated").resolve()


def store_root() -> Path:
    """The run store: ``REPRO_STORE`` or ``runs/`` in the checkout."""
    return Path(os.environ.get("REPRO_STORE") or project_root() / "runs").expanduser().resolve()


def existing_path(value: str | os.PathLike) -> Path | None:
    """``value`` as an existing path: as given (relative to the working folder), else relative to the
    project root (so that profiles and notebook defaults can name ``configs/...`` or ``models/...``
    files whatever folder a kernel runs in); None if neither exists."""
    for candidate in (Path(value).expanduser(), project_root() / value):
        if candidate.exists():
            return candidate.resolve()
    return None
