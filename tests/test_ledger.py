"""The claims ledger: its data, the verdict rule, the records the chapters write, the front page."""

import json
import math

import nbformat
import pytest

from repro.book import ledger
from repro.evaluation import claims as ledger_claims
from repro.evaluation import reported
from repro.evaluation.stats import Estimate
from repro.runs.notebooks import list_notebooks


def test_the_ledger_lists_at_least_15_claims_from_every_paper_each_resolvable():
    claims = ledger_claims.claims()
    assert len(claims) >= 15
    assert {c.paper for c in claims} == {"self_rewarding", "rlaif", "eva"}
    assert len({c.id for c in claims}) == len(claims)
    notebooks = {nb.stem for nb in list_notebooks()}
    for c in claims:
        assert c.statement and c.test, c.id
        assert c.notebook in notebooks, f"{c.id}: no notebook {c.notebook}"
        assert c.reported or "finding" in c.extra, f"{c.id} says nothing of what the paper found"
        text = ledger_claims.paper_numbers(c)  # every reference resolves to entries (and keys) of reported.yaml
        assert text and "stated without a number" not in text, c.id


def test_a_claims_reported_keys_must_exist():
    bad = ledger_claims.Claim(id="x", paper="eva", statement="s", test="t", notebook="30_eva",
                              reported=({"metric": "arena_hard_win_rate", "keys": ["no such solver"]},))
    with pytest.raises(KeyError):
        ledger_claims.paper_numbers(bad)


def test_every_chapter_that_measures_claims_records_them():
    for nb in list_notebooks():
        mine = [c for c in ledger_claims.claims() if c.notebook == nb.stem]
        source = "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells)
        assert bool(mine) == (f'record_claims("{nb.stem}"' in source), nb.stem
        assert f'nb.show_provenance("{nb.stem}"' in source, f"{nb.stem} has no provenance box"


def test_every_figure_cell_has_a_caption_and_alt_text():
    for nb in list_notebooks():
        for cell in nbformat.read(nb, as_version=4).cells:
            if cell.cell_type == "code" and "plt.show()" in cell.source:
                meta = cell.metadata.get("mystnb", {})
                assert meta.get("figure", {}).get("caption"), f"{nb.stem} {cell.id}: no caption"
                assert meta.get("image", {}).get("alt"), f"{nb.stem} {cell.id}: no alt text"
                assert "display(" not in cell.source, f"{nb.stem} {cell.id}: a captioned cell shows one figure only"


def _est(value, low, high, n=3):
    return Estimate(value, low, high, n)


@pytest.mark.parametrize("parts, verdict", [
    (["reproduced"], "reproduced"),
    (["reproduced", "reproduced"], "reproduced"),
    (["reproduced", "not reproduced at this scale"], "partly"),
    (["not reproduced at this scale", "opposite"], "not reproduced"),
    (["not testable", "not testable"], "not testable at this scale"),
    (["not testable", "reproduced"], "partly"),
])
def test_claim_verdict_rule(parts, verdict):
    assert ledger_claims.claim_verdict(parts)[0] == verdict


def test_claim_verdict_notes_parts_in_the_opposite_direction():
    verdict, note = ledger_claims.claim_verdict(["opposite", "not reproduced at this scale"])
    assert verdict == "not reproduced" and "1 in the opposite direction" in note and "0 of 2" in note


def test_part_applies_the_books_rule_per_direction():
    assert ledger_claims.part("c", _est(0.1, 0.05, 0.2), 0.0, "greater")["verdict"] == "reproduced"
    assert ledger_claims.part("c", _est(0.1, 0.05, 0.2), 0.0, "less")["verdict"] == "opposite"
    assert ledger_claims.part("c", _est(0.5, 0.4, 0.6), 0.5, "equal")["verdict"] == "reproduced"
    assert ledger_claims.part("c", _est(0.1, -0.1, 0.2), 0.0, "greater")["verdict"] == "not reproduced at this scale"
    assert ledger_claims.part("c", _est(0.1, 0.1, 0.1, n=1), 0.0, "greater")["verdict"] == "not testable"
    with pytest.raises(ValueError):
        ledger_claims.part("c", _est(0, 0, 0), 0.0, "greater", interval="jackknife")


def _parts_for(notebook, estimate=_est(0.1, 0.05, 0.2)):
    return [ledger_claims.part(c.id, estimate, 0.0, "greater", label="only") for c in ledger_claims.claims()
            if c.notebook == notebook]


def test_record_writes_the_claims_of_one_run_into_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RUN_ID", "21_rlaif_rl-test")
    monkeypatch.setenv("REPRO_PROFILE", "smoke")
    parts = _parts_for("21_rlaif_rl")
    parts[0] = ledger_claims.part(parts[0]["id"], _est(float("nan"), float("nan"), float("nan"), n=0), 0.0, "greater")
    path = ledger_claims.record_claims("21_rlaif_rl", parts, params={"seeds": [0, 1, 2], "lr": 1e-3}, store=tmp_path)
    assert path == tmp_path / "claims" / "21_rlaif_rl-test.json"
    data = json.loads(path.read_text())  # valid JSON: no NaN
    assert data["profile"] == "smoke" and data["seeds"] == [0, 1, 2] and data["parameters"]["lr"] == 1e-3
    assert data["versions"]["torch"] and "git_commit" in data and "sweep_run" not in data
    verdicts = {c["id"]: c["verdict"] for c in data["claims"]}
    assert len(verdicts) == len(parts)
    assert verdicts[parts[0]["id"]] == "not testable at this scale"
    assert data["claims"][0]["parts"][0]["value"] is None
    assert all(v == "reproduced" for k, v in verdicts.items() if k != parts[0]["id"])


def test_a_sweeps_run_says_so_in_its_record(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RUN_ID", "30_eva-swept")
    monkeypatch.setenv("REPRO_SWEEP_RUN", "eva_solvers-smoke/568d4919f827")
    path = ledger_claims.record_claims("30_eva", _parts_for("30_eva"), params={}, store=tmp_path)
    assert json.loads(path.read_text())["sweep_run"] == "eva_solvers-smoke/568d4919f827"


def test_record_takes_a_table_whose_other_rows_are_no_claims(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("REPRO_RUN_ID", "table")
    rows = _parts_for("21_rlaif_rl") + [{"claim": "shown in the chapter only", "verdict": "reproduced"}]
    path = ledger_claims.record_claims("21_rlaif_rl", pd.DataFrame(rows), params={}, store=tmp_path)  # its id is NaN
    assert len(json.loads(path.read_text())["claims"]) == len(rows) - 1


def test_record_refuses_a_missing_or_a_foreign_claim(tmp_path):
    parts = _parts_for("21_rlaif_rl")
    with pytest.raises(ledger_claims.LedgerError, match="did not measure"):
        ledger_claims.record_claims("21_rlaif_rl", parts[1:], params={}, store=tmp_path)
    with pytest.raises(ledger_claims.LedgerError, match="does not give it"):
        ledger_claims.record_claims("21_rlaif_rl", parts + _parts_for("30_eva"), params={}, store=tmp_path)
    with pytest.raises(ledger_claims.LedgerError, match="not-a-claim"):
        ledger_claims.record_claims("21_rlaif_rl", parts, params={}, skipped={"not-a-claim": "why"}, store=tmp_path)


def test_a_skipped_claim_is_recorded_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RUN_ID", "run-1")
    parts = [p for p in _parts_for("10_self_rewarding") if p["id"] != "sr-eft-pairs"]
    path = ledger_claims.record_claims("10_self_rewarding", parts, params={}, skipped={"sr-eft-pairs": "ablations=False"},
                                       store=tmp_path)
    [skipped] = [c for c in json.loads(path.read_text())["claims"] if c["id"] == "sr-eft-pairs"]
    assert skipped["verdict"] == ledger_claims.NOT_IN_RUN and skipped["note"] == "ablations=False"


def test_an_unwritable_store_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ledger_claims.LedgerError, match="file"):
        ledger_claims.record_claims("21_rlaif_rl", _parts_for("21_rlaif_rl"), params={}, store=blocker)


def _executed(generated, store, notebook, run_id, status="complete"):
    generated.mkdir(parents=True, exist_ok=True)
    (generated / f"{notebook}.run.json").write_text(json.dumps(
        {"notebook": notebook, "run_id": run_id, "store": str(store), "status": status, "profile": "tiny"}))


def test_the_front_page_shows_each_claim_with_the_record_of_the_executed_chapter(tmp_path, monkeypatch):
    generated, store = tmp_path / "book" / "generated", tmp_path / "store"
    monkeypatch.setenv("REPRO_PROFILE", "tiny")
    # an older run of the same chapter, and the one the book shows
    monkeypatch.setenv("REPRO_RUN_ID", "old")
    ledger_claims.record_claims("21_rlaif_rl", _parts_for("21_rlaif_rl", _est(-0.3, -0.4, -0.2)), params={}, store=store)
    monkeypatch.setenv("REPRO_RUN_ID", "shown")
    ledger_claims.record_claims("21_rlaif_rl", _parts_for("21_rlaif_rl"), params={}, store=store)
    _executed(generated, store, "21_rlaif_rl", "shown")
    rows = {r["id"]: r for r in ledger.ledger_rows(generated)}
    assert len(rows) == len(ledger_claims.claims())
    for c in ledger_claims.claims():
        expected = "reproduced" if c.notebook == "21_rlaif_rl" else "not measured yet"
        assert rows[c.id]["verdict"] == expected, c.id
    page = ledger.write_ledger_page(tmp_path).read_text()
    assert f"Of the **{len(rows)} claims**" in page
    assert "{doc}`chapter </book/generated/21_rlaif_rl>`" in page
    assert "{download}`notebook </book/generated/21_rlaif_rl.ipynb>`" in page
    # the paper's numbers come from reported.yaml
    paper_rm = reported.values("rlaif", "rm_accuracy")
    assert f"AI-label RM: {paper_rm['AI-label RM']}%" in page
    assert page.count("\n| ") == len(rows) + 1  # the header row and one row per claim


def test_a_failed_chapter_run_is_not_shown(tmp_path, monkeypatch):
    generated, store = tmp_path / "g", tmp_path / "s"
    monkeypatch.setenv("REPRO_RUN_ID", "r")
    ledger_claims.record_claims("21_rlaif_rl", _parts_for("21_rlaif_rl"), params={}, store=store)
    _executed(generated, store, "21_rlaif_rl", "r", status="failed")
    assert ledger.executed_records(generated) == {}


def test_provenance_lists_the_stages_this_process_used(tmp_path, monkeypatch):
    from repro.book.notebook import provenance
    from repro.runs.store import RunStore

    monkeypatch.setenv("REPRO_RUN_ID", "30_eva-x")
    store = RunStore(tmp_path)
    store.run("prov-test-stage", {"a": 1}, lambda w: {"ok": 1})
    store.run("prov-test-stage", {"a": 1}, lambda w: {"ok": 1})  # reused
    text = provenance("30_eva", {"seeds": [0, 1, 2], "method": "dpo"})
    assert text.startswith(":::{admonition} Provenance") and text.rstrip().endswith(":::")
    assert "`30_eva-x`" in text and "`seeds` = `[0, 1, 2]`" in text and "torch" in text
    [row] = [line for line in text.splitlines() if "`prov-test-stage`" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["2", "1", "1"]  # used twice: computed once, reused once
    assert not math.isnan(float(cells[4].replace(",", "")))


def test_the_papers_result_numbers_are_written_in_the_data_file_only():
    """No chapter source, book page or library module retypes a number a paper reports as a result
    (the distinctive ones: with a decimal part); they are read from reported.yaml."""
    import re

    import yaml

    from repro import paths

    root = paths.project_root()
    data = yaml.safe_load((root / "src" / "repro" / "evaluation" / "data" / "reported.yaml").read_text())
    numbers = set()
    for entry in data["reported"]:
        if entry["source"].startswith("method:"):
            continue
        for key in ("value", "win", "tie", "loss", "low", "high"):
            if key in entry:
                numbers.add(entry[key])
        numbers.update(entry.get("values", {}).values())
    distinctive = {str(n) for n in numbers if isinstance(n, float) and not float(n).is_integer()}
    assert len(distinctive) > 40
    sources = [*root.glob("notebooks/*.ipynb"), *root.glob("book/*.md"), *root.glob("src/repro/**/*.py")]
    for path in sources:
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
        found = sorted(n for n in distinctive if re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", text))
        assert not found, f"{path.relative_to(root)} types the papers' numbers {found}"
