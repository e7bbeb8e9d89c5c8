"""The AlpacaEval loader: the shipped sample in the real schema, the hub path, and malformed files."""

import json

import pytest

from repro.data import DataError
from repro.data.alpaca_eval import load_alpaca_eval, sample_path


def test_the_sample_reads_as_prompts_with_reference_outputs():
    frame = load_alpaca_eval(sample_path())
    assert len(frame) == 6 and frame.uid.is_unique
    assert list(frame.columns) == ["uid", "family", "prompt", "reference", "generator"]
    assert frame.prompt[1].startswith("Explain in two sentences") and frame.family[1] == "koala"
    assert load_alpaca_eval(sample_path()).uid.tolist() == frame.uid.tolist()  # stable ids


def test_json_lines_read_the_same(tmp_path):
    records = json.loads(sample_path().read_text())
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    assert load_alpaca_eval(path).equals(load_alpaca_eval(sample_path()))


def test_the_hub_id_loads_the_gpt4_baseline_config(monkeypatch):
    import datasets

    calls = []

    def fake(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(json.loads(sample_path().read_text()))

    monkeypatch.setattr(datasets, "load_dataset", fake)
    frame = load_alpaca_eval("tatsu-lab/alpaca_eval")
    assert calls == [("tatsu-lab/alpaca_eval", "alpaca_eval_gpt4_baseline", "eval")] and len(frame) == 6


@pytest.mark.parametrize("content, message", [
    ("", "no records .the file is empty."),
    ("[]", "no records"),
    ('{"instruction": "x"}', "expected a JSON array"),
    ('[{"instruction": "a", "output": "b"}, {"output": "c"}]', "record 1: field 'instruction' must be a string, found missing"),
    ('[{"instruction": "a", "output": 3}]', "record 0: field 'output' must be a string, found a int"),
    ('[{"instruction": "a", "output": "b"}, {"instruction": "a", "output": "c"}]', "record 1: the same instruction as"),
    ('[{"instruction": "  ", "output": "b"}]', "record 0: empty 'instruction'"),
    ('[{"instruction": "a", "output": "b"}', "is the file truncated"),
    ('["just a string"]', "record 0: expected an object"),
])
def test_malformed_files_name_the_file_and_record(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        load_alpaca_eval(path)
    assert str(path) in str(info.value)


def test_bytes_that_are_not_utf8_and_missing_files(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"instruction": "caf\xe9", "output": "b"}]'.encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        load_alpaca_eval(path)
    with pytest.raises(DataError, match="no such file"):
        load_alpaca_eval(tmp_path / "absent.json")
