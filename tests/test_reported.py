"""The papers' reported numbers: one data file, every entry sourced and well formed."""

import yaml

from repro import paths

DATA = paths.project_root() / "src" / "repro" / "evaluation" / "data" / "reported.yaml"


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
    import pytest

    from repro.evaluation import reported

    raw = [e for e in yaml.safe_load(DATA.read_text())["reported"] if e["paper"] == "self_rewarding"]
    alpaca = {e["model"]: e["value"] for e in raw if e["metric"] == "alpacaeval2_win_rate"}
    assert len(alpaca) == 3 and reported.values("self_rewarding", "alpacaeval2_win_rate") == alpaca
    [accuracy] = [e["values"] for e in raw if e["metric"] == "pairwise_accuracy"]
    assert reported.values("self_rewarding", "pairwise_accuracy") == accuracy
    table = reported.head_to_head()
    assert set(table) == {e["pair"] for e in raw if e["metric"] == "head_to_head"}
    assert all(table[e["pair"]] == {k: e[k] for k in ("win", "tie", "loss")} for e in raw if e["metric"] == "head_to_head")
    assert "2401.10020" in reported.source("self_rewarding", "head_to_head")
    [ift] = [e["value"] for e in raw if e["metric"] == "ift_examples"]
    assert reported.value("self_rewarding", "ift_examples") == ift
    with pytest.raises(KeyError, match="no single value"):
        reported.value("self_rewarding", "alpacaeval2_win_rate")  # one value per model, not one
    with pytest.raises(KeyError, match="no 'nothing'"):
        reported.entries("self_rewarding", "nothing")
