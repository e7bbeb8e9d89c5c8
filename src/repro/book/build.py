"""Build the Jupyter Book (1.x) from the executed notebooks, with warnings as errors.

The book is never executed by Jupyter Book itself (``execute_notebooks: 'off'`` in ``_config.yml``):
the executed copies that ``repro run`` wrote into ``book/generated/`` are rendered as they are.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from repro import paths
from repro.book.benchmarks import write_benchmarks_page
from repro.book.figures import write_method_figures
from repro.book.ledger import write_ledger_page
from repro.errors import ReproError


class BookError(ReproError):
    """The book cannot be built (missing executed notebook, Sphinx warning turned error)."""


def toc_files(root: Path) -> list[str]:
    """Every file the table of contents names (relative to the book root, without suffix)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found: list[str] = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def missing_pages(root: Path) -> list[str]:
    suffixes = (".md", ".ipynb")
    return [f for f in toc_files(root) if not any((root / (f + s)).is_file() for s in suffixes)]


def write_generated_pages(root: Path) -> None:
    """The pages the book computes rather than executes: the claims ledger of the front page (from the
    run store's records of the executed chapters), the benchmarks page (from ``bench-results/``, written
    by `make bench`) and the introduction's method diagrams."""
    write_ledger_page(root)
    write_benchmarks_page(root / "bench-results", root / "book" / "generated" / "benchmarks.md")
    write_method_figures(root / "book" / "generated" / "figures")


def build_book(root: Path | None = None, output: Path | None = None, *, quiet: bool = True) -> Path:
    """Run ``jupyter-book build`` with warnings as errors; returns the path of ``index.html``.

    Every page is read again (``--all``): an incremental build would not repeat the warnings of pages
    that did not change, so a book that failed once would pass the second time unchanged."""
    root = (root or paths.project_root()).resolve()
    if missing := missing_pages(root):
        raise BookError("the book needs pages that are not there yet: " + ", ".join(missing)
                        + " (run `repro run-all` or `make book` to execute the notebooks first)")
    write_generated_pages(root)
    output = (output or root).resolve()
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "--path-output",
           str(output), "--warningiserror", "--keep-going", "--builder", "html", "--all"]
    if quiet:
        cmd.append("-q")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BookError(f"jupyter-book build failed (warnings are errors):\n{tail}")
    index = output / "_build" / "html" / "index.html"
    if not index.is_file():
        raise BookError(f"jupyter-book finished but {index} is missing")
    return index
