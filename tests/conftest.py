"""Fixtures shared by the tests: the smoke book (executed once and built once per session, for the slow
end-to-end tests), and a chapter's recorded run for the ledger's tests.

``make test`` runs the tests in two pytest-xdist workers (``-n 2 --dist loadgroup``). Each worker, and every
process it starts, gets its share of the cores for its threads (torch's and BLAS's): two workers with
every core's threads each would oversubscribe the cores. The tests that use the smoke book run in one
worker, one group, so that the book is executed there once (session fixtures are per worker)."""

import json
import os
import shutil

import pytest

from repro import paths
from repro.book.build import build_book
from repro.cli import main
from repro.runs.parallel import capped_threads, share_of_cores

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # before a test imports torch (the imports above do not)
    os.environ.update(capped_threads(share_of_cores(int(os.environ["PYTEST_XDIST_WORKER_COUNT"])), os.environ))

SMOKE_BOOK_FIXTURES = {"smoke_book", "smoke_book_again", "smoke_html"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """The tests that use the smoke book form one xdist group (one worker executes the book, once)."""
    for item in items:
        if SMOKE_BOOK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("smoke_book"))


def run_smoke_book(root):
    """Copy the book's sources into ``root`` and execute every notebook on the smoke profile into a
    fresh store ``root/store``, two notebooks at a time as ``make book JOBS=2`` does (each after the
    notebooks it needs, each with one core's threads: 154 s against 194 s one after the other on 2 cores);
    returns the store."""
    project = paths.project_root()
    shutil.copy(project / "_config.yml", root)
    shutil.copy(project / "_toc.yml", root)
    shutil.copytree(project / "_static", root / "_static")
    shutil.copytree(project / "book", root / "book", ignore=shutil.ignore_patterns("generated", "_build"))
    store = root / "store"
    code = main(["run-all", "--profile", "smoke", "--store", str(store), "--output-dir",
                 str(root / "book" / "generated"), "--no-progress", "-j", "2"])
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


@pytest.fixture
def chapter_run(tmp_path, monkeypatch):
    """Record every claim of a chapter at one reproduced estimate, with its gates and controls, and write the
    chapter's ``.run.json`` as a finished notebook run would: ``chapter_run(notebook, gates=..., controls=...)``.
    The ledger of ``chapter_run.generated`` then reads the run store ``chapter_run.store``."""
    from repro.evaluation import claims
    from repro.evaluation.stats import Estimate

    store, generated = tmp_path / "store", tmp_path / "generated"
    generated.mkdir()
    estimate = Estimate(0.2, 0.1, 0.3, 3, 0.95)

    def run(notebook, *, gates=(), controls=()):
        parts = [claims.part(c.id, estimate, 0.0, "greater") for c in claims.claims() if c.notebook == notebook]
        monkeypatch.setenv("REPRO_RUN_ID", f"{notebook}-run")
        claims.record_claims(notebook, parts, params={"seeds": [0, 1, 2]}, gates=gates, controls=controls,
                             store=store)
        (generated / f"{notebook}.run.json").write_text(json.dumps(
            {"status": "complete", "run_id": f"{notebook}-run", "store": str(store), "notebook": notebook}))

    run.store, run.generated = store, generated
    return run


@pytest.fixture
def shipped_profiles():
    """Every shipped profile by name, as `load_profile` reads it; where ``make real-small`` has not fetched the
    real model (CI), the profiles that name its GGUF file name the project's tiny GGUF stand-in instead."""
    import yaml

    from repro.models.gguf import REAL_SMALL_GGUF
    from repro.runs.notebooks import available_profiles, load_profile

    fetched = (paths.project_root() / REAL_SMALL_GGUF).exists()
    out = {}
    for name in available_profiles():
        text = yaml.safe_dump(load_profile(name))
        out[name] = yaml.safe_load(text if fetched else text.replace(REAL_SMALL_GGUF, "tests/data/tiny-llama.gguf"))
    return out
