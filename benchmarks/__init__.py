"""The study's benchmarks (`make bench`), outside the installed library: they import `repro`, and `repro`
never imports them.

- ``bench_*.py``: the scripts, each run as a module from the project root, for example
  ``python -m benchmarks.bench_flops --quick --out /tmp/flops.json``;
- `benchmarks.harness`: the interleaved comparison (`compare`), the machine's description and the
  results files, in the schema that the book reads (`repro.book.bench_schema`);
- `benchmarks.perf`: what the scripts measure (generation, judging, FLOP/s, run-store stages, the
  cold and warm times of `make book`);
- `benchmarks.scaling`: the scaling of one self-rewarding iteration (one child process per scale).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: The project root: the folder that holds this package, from which ``python -m benchmarks...`` imports it.
ROOT = Path(__file__).resolve().parent.parent


def module_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's environment) with the project root first on ``PYTHONPATH``,
    so that a child ``python -m benchmarks...`` finds this package from any working directory."""
    environ = os.environ if environ is None else environ
    paths = [str(ROOT)] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**environ, "PYTHONPATH": os.pathsep.join(paths)}
