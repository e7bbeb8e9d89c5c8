"""The papers' reported numbers: one data file, every entry sourced and well formed."""

import yaml

from repro import paths

DATA = paths.project_root() / "src" / "repro" / "book" / "data" / "reported.yaml"


def test_every_reported_number_names_its_paper_metric_and_source():
    data = yaml.safe_load(DATA.read_text())
    papers = set(data["papers"])
    assert papers == {"self_rewarding", "rlaif", "eva"}
    for entry in data["reported"]:
        assert entry["paper"] in papers and entry["metric"] and entry["source"], entry
        numbers = [entry[k] for k in ("value", "win", "low") if k in entry] + list(entry.get("values", {}).values())
        assert numbers and all(isinstance(n, (int, float)) for n in numbers), entry
    head_to_head = [e for e in data["reported"] if e["metric"] == "head_to_head"]
    assert len(head_to_head) == 6
    for e in head_to_head:  # win + tie + loss add up to 100 (up to the paper's rounding)
        assert abs(e["win"] + e["tie"] + e["loss"] - 100) <= 0.2, e


def test_the_reader_returns_the_files_numbers():
    from repro.book import reported

    assert reported.values("self_rewarding", "alpacaeval2_win_rate") == {"M1": 9.94, "M2": 15.38, "M3": 20.44}
    assert reported.values("self_rewarding", "pairwise_accuracy")["M3"] == 81.7
    assert reported.head_to_head()["M3 vs SFT"] == {"win": 62.5, "tie": 27.7, "loss": 9.8}
    assert "2401.10020" in reported.source("self_rewarding", "head_to_head")
    import pytest

    with pytest.raises(KeyError, match="no 'nothing'"):
        reported.entries("self_rewarding", "nothing")
