"""UltraFeedback prompts: the binarised and the original layouts, files and the hub, bad records."""

import json

import pytest

from repro.data import DataError, ultrafeedback


def test_the_shipped_sample_loads_in_file_order():
    frame = ultrafeedback.load_prompts(ultrafeedback.sample_path())
    records = [json.loads(line) for line in ultrafeedback.sample_path().read_text().splitlines()]
    assert frame.prompt.tolist() == [r["prompt"] for r in records]
    assert frame.uid.tolist() == [r["prompt_id"] for r in records] and frame.uid.is_unique


def test_the_original_layout_and_duplicates(tmp_path):
    path = tmp_path / "ultrafeedback.jsonl"
    rows = [{"instruction": " say hi ", "source": "a"}, {"instruction": "say hi", "source": "b"},
            {"instruction": "count to three", "source": "c"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    frame = ultrafeedback.load_prompts(path)
    assert frame.prompt.tolist() == ["say hi", "count to three"] and frame.source.tolist() == ["a", "c"]
    assert frame.uid.str.len().eq(16).all()  # a stable hash of the text when no prompt_id is given


def test_the_hub_id_goes_through_datasets(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, *args, split=None):
        calls.append((name, split))
        return datasets.Dataset.from_list([{"prompt": "p1", "prompt_id": "x1"}, {"prompt": "p2", "prompt_id": "x2"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    frame = ultrafeedback.load_prompts("HuggingFaceH4/ultrafeedback_binarized")
    assert frame.uid.tolist() == ["x1", "x2"] and calls == [("HuggingFaceH4/ultrafeedback_binarized", "train_prefs")]


@pytest.mark.parametrize("line, message", [
    ('{"prompt": ""}', "empty"),
    ('{"source": "x"}', "missing"),
    ('{"prompt": 3}', "a int"),
    ('[1, 2]', "expected an object"),
])
def test_bad_records_are_named(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=rf"bad.jsonl.*{message}"):
        ultrafeedback.load_prompts(path)
