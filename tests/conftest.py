"""Fixtures shared by the slow end-to-end tests: the smoke book, executed once and built once per session."""

import shutil

import pytest

from repro import paths
from repro.book.build import build_book
from repro.cli import main


def run_smoke_book(root):
    """Copy the book's sources into ``root`` and execute every notebook on the smoke profile into a
    fresh store ``root/store``; returns the store."""
    project = paths.project_root()
    shutil.copy(project / "_config.yml", root)
    shutil.copy(project / "_toc.yml", root)
    shutil.copytree(project / "_static", root / "_static")
    shutil.copytree(project / "book", root / "book", ignore=shutil.ignore_patterns("generated", "_build"))
    store = root / "store"
    code = main(["run-all", "--profile", "smoke", "--store", str(store), "--output-dir",
                 str(root / "book" / "generated"), "--no-progress"])
    assert code == 0
    return store


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """A copy of the book's sources with every notebook executed on the smoke profile: (root, store)."""
    root = tmp_path_factory.mktemp("book")
    return root, run_smoke_book(root)


@pytest.fixture(scope="session")
def smoke_book_again(tmp_path_factory):
    """The same as ``smoke_book``, run a second time from nothing: another folder, a fresh store."""
    root = tmp_path_factory.mktemp("book_again")
    return root, run_smoke_book(root)


@pytest.fixture(scope="session")
def smoke_html(smoke_book):
    """The smoke book built once (warnings are errors): its ``_build/html`` folder."""
    root, _ = smoke_book
    index = build_book(root)
    assert index.is_file()
    return index.parent
