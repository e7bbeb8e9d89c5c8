"""Helpers the study notebooks call: their effective parameters, one figure theme, glued numbers.

They keep notebooks thin: a notebook says *what* to show, these say *how* it looks.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from repro import paths


def parameters(namespace: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """The notebook's declared parameters with the values they have in this run."""
    from repro.runs.notebooks import notebook_parameters, resolve_notebook

    declared = notebook_parameters(resolve_notebook(notebook))
    return {name: namespace[name] for name in declared}


def reproduce_command(notebook: str, params: Mapping[str, Any]) -> str:
    """The ``repro run`` command that re-executes this page with these parameters."""
    from repro.runs.notebooks import notebook_parameters, resolve_notebook

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
