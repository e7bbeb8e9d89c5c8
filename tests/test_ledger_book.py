"""The claims ledger end to end on the smoke book: every chapter recorded its claims in the run store
under the run id of its executed copy, and the front page shows them, with links that resolve.
Slow (it needs the executed smoke book, tests/conftest.py)."""

import json
import re

import pytest

from repro.book import ledger
from repro.evaluation import claims as ledger_claims

pytestmark = pytest.mark.slow


def test_every_claim_was_recorded_by_the_run_the_book_shows(smoke_book):
    root, store = smoke_book
    generated = root / "book" / "generated"
    records = ledger.executed_records(generated)
    for notebook in {c.notebook for c in ledger_claims.claims()}:
        run = json.loads((generated / f"{notebook}.run.json").read_text())
        assert records[notebook]["run_id"] == run["run_id"] and records[notebook]["profile"] == "smoke"
        assert (store / "claims" / f"{run['run_id']}.json").is_file()
    rows = ledger.ledger_rows(generated)
    assert len(rows) == len(ledger_claims.claims())
    allowed = set(ledger_claims.VERDICTS) | {ledger_claims.NOT_IN_RUN, ledger_claims.PRECONDITION_UNMET}
    assert all(r["verdict"] in allowed for r in rows), [r["verdict"] for r in rows]
    # the smoke profile runs only two of the ablation sweeps: the others' claims say why they are missing
    skipped = {r["id"]: r["note"] for r in rows if r["verdict"] == ledger_claims.NOT_IN_RUN}
    assert skipped and all("sweep did not run" in note for note in skipped.values())
    measured = [r for r in rows if r["parts"]]
    # the gates on the base are recorded by the chapter that measures them, on the SFT baseline
    assert [g["id"] for g in records["10_self_rewarding"]["gates"]] == ["capability", "diversity"]
    assert all(p["low"] is None or p["low"] <= p["value"] <= p["high"] for r in measured for p in r["parts"])


def test_the_front_page_is_the_ledger_with_working_links(smoke_html):
    page = (smoke_html / "book" / "index.html").read_text().replace("\u2019", "'").replace("&#8217;", "'")
    assert "The claims ledger" in page and "How a measurement becomes a verdict" in page
    for c in ledger_claims.claims():
        assert c.statement[:40] in page, c.id
    table = page[page.index('id="the-claims-ledger"'):page.index('id="how-a-measurement-becomes-a-verdict"')]
    chapters = set(re.findall(r'href="(generated/[0-9a-z_]+\.html)"', table))
    downloads = set(re.findall(r'href="(\.\./_downloads/[^"]+\.ipynb)"', table))
    assert len(chapters) == len({c.notebook for c in ledger_claims.claims()})
    assert len(downloads) == len(chapters)
    for link in chapters | downloads:
        assert (smoke_html / "book" / link).resolve().is_file(), link


def test_every_chapter_shows_its_provenance(smoke_html):
    for html in sorted((smoke_html / "book" / "generated").glob("*.html")):
        text = html.read_text()
        assert "Provenance of this page" in text and "git commit" in text, html.name
        assert "Reproduce this page" in text, html.name
