"""Summarize-from-feedback comparisons and filtered TL;DR: the shipped samples in the real schemas,
the hub path, the RLAIF evaluation filter, the TL;DR prompt, and malformed records."""

import json

import pandas as pd
import pytest

from repro.data import DataError
from repro.data.summarize import (COMPARISON_COLUMNS, evaluation_split, load_comparisons, load_tldr, sample_path,
                                  tldr_prompt)


@pytest.fixture(scope="module")
def comparisons():
    return load_comparisons(sample_path("comparisons"))


def test_the_comparisons_sample_reads_in_the_real_schema(comparisons):
    assert list(comparisons.columns) == COMPARISON_COLUMNS
    assert len(comparisons) == 11 and comparisons.attrs["without_post"] == 1  # the news article is left out
    assert set(comparisons.choice) == {0, 1} and comparisons.confidence.isna().sum() == 1
    first = comparisons.iloc[0]
    assert first.id == "t3_smpl001" and first.subreddit == "cooking" and first.summary_0.startswith(" Rice burns")
    assert set(comparisons.split) == {"train", "valid1", "valid2"}


def test_the_evaluation_split_keeps_confident_ratings_of_held_out_posts(comparisons):
    rest, evaluation = evaluation_split(comparisons, fraction=0.34, seed=0)
    assert not set(rest.id) & set(evaluation.id)  # no post on both sides
    assert set(evaluation.confidence) <= {1, 2, 8, 9} and (evaluation.split == "train").all()
    assert len(rest) + len(evaluation) <= (comparisons.split == "train").sum()
    assert evaluation_split(comparisons, fraction=0.34, seed=0)[1].equals(evaluation)  # seeded
    with pytest.raises(ValueError, match="fraction"):
        evaluation_split(comparisons, fraction=1.5)
    with pytest.raises(DataError, match="no comparisons of split 'test'"):
        evaluation_split(comparisons, split="test")


def test_tldr_sample_and_prompt():
    tldr = load_tldr(sample_path("tldr"))
    assert list(tldr.columns) == ["id", "subreddit", "title", "post", "summary"] and len(tldr) == 5
    prompt = tldr_prompt(tldr.subreddit[0], tldr.title[0], tldr.post[0] + "  \n")
    assert prompt.startswith("SUBREDDIT: r/cooking\nTITLE: Burnt the rice") and prompt.endswith("burning.\nTL;DR:")


def test_hub_ids_load_the_comparisons_config(monkeypatch):
    import datasets

    calls = []
    rows = [json.loads(line) for line in sample_path("comparisons").read_text().splitlines()]

    def fake(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    frame = load_comparisons("openai/summarize_from_feedback", split="train")
    assert calls == [("openai/summarize_from_feedback", "comparisons", "train")] and len(frame) == 11


def _with(record_change):
    record = json.loads(sample_path("comparisons").read_text().splitlines()[0])
    record_change(record)
    return json.dumps(record)


@pytest.mark.parametrize("line, message", [
    (_with(lambda r: r.update(choice=2)), "line 2: field 'choice' must be 0 or 1"),
    (_with(lambda r: r.update(choice=True)), "field 'choice' must be 0 or 1"),
    (_with(lambda r: r["summaries"].pop()), "'summaries' must be a list of two"),
    (_with(lambda r: r["summaries"][1].pop("text")), r"summaries\[1\]: field 'text' must be a string, found missing"),
    (_with(lambda r: r["info"].pop("id")), "info: field 'id' must be a string"),
    (_with(lambda r: r.update(info="x")), "field 'info' must be an object"),
    (_with(lambda r: r["extra"].update(confidence=10)), "confidence must be an integer from 1 to 9"),
    (_with(lambda r: r.pop("split")), "field 'split' must be a string, found missing"),
    ('{"info": {"id": "a"', "not valid JSON"),
    ("[1, 2]", "expected a comparison object"),
])
def test_malformed_comparisons_name_the_file_and_line(tmp_path, line, message):
    good = sample_path("comparisons").read_text().splitlines()[0]
    path = tmp_path / "batch9.json"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError, match=message) as info:
        load_comparisons(path)
    assert str(path) in str(info.value) and "line 2" in str(info.value)


def test_empty_files_folders_and_duplicate_tldr_ids(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="no records"):
        load_comparisons(tmp_path / "empty.jsonl")
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="no data files"):
        load_tldr(tmp_path / "sub")
    line = sample_path("tldr").read_text().splitlines()[0]
    (tmp_path / "dup.jsonl").write_text(line + "\n" + line + "\n")
    with pytest.raises(DataError, match="id 't3_smpl001' again"):
        load_tldr(tmp_path / "dup.jsonl")
    with pytest.raises(DataError, match="no such file"):
        load_tldr(tmp_path / "absent.jsonl")


def test_a_folder_and_parquet_read_the_same_rows(tmp_path, comparisons):
    folder = tmp_path / "comparisons"
    folder.mkdir()
    lines = sample_path("comparisons").read_text().splitlines()
    (folder / "batch1.json").write_text("\n".join(lines[:6]) + "\n")
    (folder / "batch2.json").write_text("\n".join(lines[6:]) + "\n")
    assert load_comparisons(folder).equals(comparisons)
    tldr = load_tldr(sample_path("tldr"))
    tldr.to_parquet(tmp_path / "tldr.parquet")
    pd.testing.assert_frame_equal(load_tldr(tmp_path / "tldr.parquet"), tldr)
