"""Determinism: every notebook run twice on the smoke profile, from nothing each time (two folders,
two fresh run stores, the same parameters and seeds, two notebooks at a time: `tests/conftest.py`),
gives bitwise-identical numbers: every stage's results and artifacts (model weights included), every
chapter's claims table, and the sweeps' results tables (`repro.runs.compare`; measurements of time are
left out)."""

import json

import pytest

from repro.evaluation.claims import claims as ledger_claims
from repro.runs.compare import claims, differences, fingerprint, sweep_tables
from repro.runs.notebooks import list_notebooks

pytestmark = pytest.mark.slow


def test_every_smoke_notebook_gives_the_same_numbers_twice(smoke_book, smoke_book_again):
    (root_a, store_a), (root_b, store_b) = smoke_book, smoke_book_again
    for notebook in list_notebooks():  # both runs executed every notebook to the end
        for root in (root_a, root_b):
            record = json.loads((root / "book" / "generated" / f"{notebook.stem}.run.json").read_text())
            assert record["status"] == "complete", (root, notebook.stem)
    found = differences(store_a, store_b)
    assert not found, "\n".join(found)
    # what was compared: every stage of both runs, a claims table for every study chapter, the sweeps
    stages = fingerprint(store_a)
    assert len(stages) == len(fingerprint(store_b)) > 50
    records = claims(store_a)
    assert {label for label in records if " in " not in label} == {c.notebook for c in ledger_claims()}
    assert {label.split(" in ")[0] for label in records if " in " in label} == {"30_eva"}  # 31_eva_ablations
    assert sweep_tables(store_a) and all(rows for rows in sweep_tables(store_a).values())
