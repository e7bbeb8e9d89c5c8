"""Helpers the study notebooks call: their effective parameters, one figure theme, glued numbers.

They keep notebooks thin: a notebook says *what* to show, these say *how* it looks.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from repro import paths
from repro.runs.notebooks import notebook_parameters, resolve_notebook
from repro.runs.store import git_commit, package_versions, touched

# When this kernel imported the module: a chapter imports it in its first cell, so this is when the
# chapter started to run.
_STARTED = (datetime.now(timezone.utc), time.perf_counter())


def parameters(namespace: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """The notebook's declared parameters with the values they have in this run."""
    declared = notebook_parameters(resolve_notebook(notebook))
    return {name: namespace[name] for name in declared}


def reproduce_command(notebook: str, params: Mapping[str, Any]) -> str:
    """The ``repro run`` command that re-executes this page with these parameters."""
    declared = notebook_parameters(resolve_notebook(notebook))
    changed = {k: v for k, v in params.items() if k in declared and declared[k].default != v}
    profile = os.environ.get("REPRO_PROFILE", "tiny")
    parts = ["repro", "run", notebook] + (["--profile", profile] if profile != "tiny" else [])
    for key, value in changed.items():
        text = value if isinstance(value, str) else _yaml_inline(value)
        parts += ["-p", f"{key}={text}"]
    return " ".join(shlex.quote(p) for p in parts)


def _yaml_inline(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def show_run_header(notebook: str, params: Mapping[str, Any]) -> None:
    """Print the profile, the effective parameters and the command that reproduces this page."""
    from IPython.display import Markdown, display

    profile = os.environ.get("REPRO_PROFILE", "tiny")
    rows = "\n".join(f"| `{k}` | `{v!r}` |" for k, v in params.items())
    display(Markdown(
        f"**Profile** `{profile}` · **run store** `{paths.store_root().name}/`\n\n"
        f"Reproduce this page:\n\n```bash\n{reproduce_command(notebook, params)}\n```\n\n"
        f"<details><summary>All {len(params)} parameters of this run</summary>\n\n"
        f"| parameter | value |\n|---|---|\n{rows}\n\n</details>"
    ))


def set_theme() -> None:
    """One seaborn theme for every figure of the book."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=0.95,
                  rc={"figure.figsize": (7.5, 3.6), "figure.dpi": 110, "axes.titleweight": "bold"})


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Store a number for the text of the chapter (``{glue:text}`name```), via myst-nb."""
    from myst_nb import glue as _glue

    _glue(name, value, display=display)
    return value


def glue_md(name: str, text: str) -> str:
    """Store a sentence of Markdown for the text of the chapter (``{glue:md}`name```)."""
    from IPython.display import Markdown
    from myst_nb import glue as _glue

    _glue(name, Markdown(text), display=False)
    return text


def provenance(notebook: str, params: Mapping[str, Any], sweeps: Mapping[str, Any] | None = None) -> str:
    """The provenance box of a chapter (MyST Markdown): profile, run id, seeds, parameters, git commit,
    package versions, when it ran, and how long each stage took, from the run store's manifests of
    the stages this kernel used (`repro.runs.store.touched`); with ``sweeps`` (name -> `SweepResult`)
    also each sweep's runs and wall time."""
    from collections import defaultdict

    started, clock = _STARTED
    finished = datetime.now(timezone.utc)
    seeds = {k: v for k, v in params.items() if k in ("seed", "seeds") or k.endswith(("_seed", "_seeds"))}
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in touched():
        groups[row["stage"]].append(row)
    stage_rows = "\n".join(
        f"| `{name}` | {len(rows)} | {sum(r['computed'] for r in rows)} | {sum(not r['computed'] for r in rows)} "
        f"| {sum(r['seconds'] for r in rows):,.1f} |" for name, rows in groups.items())
    lines = [
        ":::{admonition} Provenance of this page",
        ":class: note",
        "",
        f"- **Notebook** `{notebook}` · **profile** `{os.environ.get('REPRO_PROFILE', 'tiny')}` · "
        f"**run** `{os.environ.get('REPRO_RUN_ID', 'interactive')}`",
        "- **Seeds** " + (", ".join(f"`{k}` = `{v!r}`" for k, v in seeds.items()) or "none"),
        f"- **Ran** {started:%Y-%m-%d %H:%M:%S} to {finished:%H:%M:%S} UTC "
        f"({time.perf_counter() - clock:,.0f} s in this kernel) · **git commit** `{git_commit() or 'unknown'}`",
        f"- **Packages** {versions}",
        f"- **Parameters** {len(params)}, listed at the top of the page; the command there reruns it.",
        "",
    ]
    if groups:
        lines += ["Stages this page used (seconds: the compute time each manifest records, whether computed "
                  "now or reused from the run store):", "",
                  "| stage | used | computed now | reused | compute seconds |", "|---|---|---|---|---|", stage_rows, ""]
    for name, result in (sweeps or {}).items():
        lines.append(f"- Sweep `{name}` ({result.profile}): {result.total} runs, {result.ran} ran now, "
                     f"{result.resumed} reused, {result.failed} failed, {result.wall_seconds:,.0f} s")
    lines.append(":::")
    return "\n".join(lines)


def show_provenance(notebook: str, params: Mapping[str, Any], sweeps: Mapping[str, Any] | None = None) -> None:
    """Display the chapter's provenance box (`provenance`)."""
    from IPython.display import Markdown, display

    display(Markdown(provenance(notebook, params, sweeps)))
