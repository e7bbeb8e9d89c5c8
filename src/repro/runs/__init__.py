"""Run store (content-addressed, resumable stages), the papermill runner, and sweeps."""

from __future__ import annotations

from pathlib import Path

from repro import paths
from repro.runs.store import RunStore, Stage, StageFailed, StoreError


def open_store(root: str | Path | None = None) -> RunStore:
    """The run store at ``root``, else ``$REPRO_STORE``, else ``runs/`` in the checkout."""
    return RunStore(root or paths.store_root())


__all__ = ["RunStore", "Stage", "StageFailed", "StoreError", "open_store"]
