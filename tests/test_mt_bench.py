"""MT-Bench and Arena-Hard questions: the shipped samples, folders, the hub, and bad records named."""

import json

import pytest

from repro.data import DataError, mt_bench


def write(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_the_mt_bench_sample_loads_in_file_order():
    frame = mt_bench.load_mt_bench(mt_bench.mt_bench_sample_path())
    records = [json.loads(line) for line in mt_bench.mt_bench_sample_path().read_text().splitlines()]
    assert 8 <= len(frame) <= 10 and list(frame.columns[:4]) == ["question_id", "category", "turn_1", "turn_2"]
    assert frame.question_id.tolist() == [r["question_id"] for r in records] and frame.question_id.is_unique
    assert frame.turn_2.tolist() == [r["turns"][1] for r in records]
    with_reference = frame[frame.reference_1.notna()]
    assert set(with_reference.category) <= {"math", "reasoning", "coding"} and len(with_reference) >= 2
    assert frame.reference_2[frame.reference_1.isna()].isna().all()


def test_the_arena_hard_sample_loads_in_file_order():
    frame = mt_bench.load_arena_hard(mt_bench.arena_hard_sample_path())
    records = [json.loads(line) for line in mt_bench.arena_hard_sample_path().read_text().splitlines()]
    assert 8 <= len(frame) <= 10 and list(frame.columns[:3]) == ["uid", "category", "prompt"]
    assert frame.uid.tolist() == [r["question_id"] for r in records] and frame.uid.is_unique
    assert frame.prompt.tolist() == [r["turns"][0]["content"] for r in records]
    assert (frame.cluster != "").all()


def test_a_checkout_folder_reads_its_question_file_only(tmp_path):
    write(tmp_path / "question.jsonl", [{"question_id": 1, "category": "math", "turns": ["a", "b"]}])
    (tmp_path / "model_answer").mkdir()  # FastChat keeps answers beside the questions
    write(tmp_path / "model_answer" / "gpt.jsonl", [{"question_id": 1, "choices": []}])
    assert mt_bench.load_mt_bench(tmp_path).turn_1.tolist() == ["a"]
    other = tmp_path / "parts"
    other.mkdir()
    write(other / "a.jsonl", [{"question_id": "x", "category": "c", "turns": [{"content": "p1"}]}])
    write(other / "b.jsonl", [{"uid": "y", "category": "c", "prompt": " p2 "}])  # the later layout
    frame = mt_bench.load_arena_hard(other)
    assert frame.uid.tolist() == ["x", "y"] and frame.prompt.tolist() == ["p1", "p2"]
    assert frame.cluster.tolist() == ["", ""]


def test_hub_ids_go_through_datasets(monkeypatch):
    import datasets

    calls = []
    rows = {"HuggingFaceH4/mt_bench_prompts": [  # the hub copy spells the fields prompt_id / prompt
        {"prompt_id": 81, "category": "writing", "prompt": ["t1", "t2"], "reference": []}],
        "lmarena-ai/arena-hard-auto-v0.1": [
        {"question_id": "q1", "category": "arena-hard-v0.1", "cluster": "c", "turns": [{"content": "p"}]}]}

    def fake_load_dataset(name, *args, split=None):
        calls.append((name, split))
        return datasets.Dataset.from_list(rows[name])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    mt = mt_bench.load_mt_bench("HuggingFaceH4/mt_bench_prompts")
    assert mt.question_id.tolist() == [81] and mt.turn_2.tolist() == ["t2"] and mt.reference_1.isna().all()
    assert mt_bench.load_arena_hard("lmarena-ai/arena-hard-auto-v0.1").uid.tolist() == ["q1"]
    assert calls == [("HuggingFaceH4/mt_bench_prompts", "train"), ("lmarena-ai/arena-hard-auto-v0.1", "train")]


GOOD_MT = {"question_id": 1, "category": "writing", "turns": ["one", "two"]}


@pytest.mark.parametrize("line, message", [
    ({"category": "writing", "turns": ["a", "b"]}, "'question_id' or 'prompt_id' must be an integer, found missing"),
    ({"question_id": "2", "category": "writing", "turns": ["a", "b"]}, "must be an integer, found a str"),
    ({"question_id": True, "category": "writing", "turns": ["a", "b"]}, "must be an integer, found a bool"),
    ({"question_id": 2, "turns": ["a", "b"]}, "'category' must be a string, found missing"),
    ({"question_id": 2, "category": "x", "turns": "a b"}, "must be a list of two strings, found a str"),
    ({"question_id": 2, "category": "x", "turns": ["a"]}, "question 2 has 1 turn.*exactly 2"),
    ({"question_id": 2, "category": "x", "turns": ["a", "b", "c"]}, "question 2 has 3 turn.*exactly 2"),
    ({"question_id": 2, "category": "x", "turns": ["a", " "]}, "turn 2 of question 2 is empty"),
    ({"question_id": 2, "category": "x", "turns": ["a", 5]}, "turn 2 of question 2 must be a string"),
    ({"question_id": 2, "category": "x", "turns": ["a", "b"], "reference": "r"}, "'reference'.*found a str"),
    ({"question_id": 1, "category": "x", "turns": ["a", "b"]}, r"question_id 1 again \(first at .*line 1\)"),
    ("[1, 2]", "expected an object"),
    ('{"question_id": 2,', "not valid JSON"),
])
def test_bad_mt_bench_records_name_the_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "question.jsonl", [GOOD_MT, line])
    with pytest.raises(DataError, match=rf"question.jsonl line 2: .*{message}"):
        mt_bench.load_mt_bench(path)


GOOD_AH = {"question_id": "q1", "category": "arena-hard-v0.1", "cluster": "c", "turns": [{"content": "p"}]}


@pytest.mark.parametrize("line, message", [
    ({"category": "c", "turns": [{"content": "p"}]}, "'question_id' must be a string, found missing"),
    ({"question_id": "q2", "category": "c"}, "'turns' must be a list"),
    ({"question_id": "q2", "category": "c", "turns": []}, "question q2 has 0 turns"),
    ({"question_id": "q2", "category": "c", "turns": [{"content": "a"}, {"content": "b"}]}, "has 2 turns"),
    ({"question_id": "q2", "category": "c", "turns": ["p"]}, "must be an object with 'content'"),
    ({"question_id": "q2", "category": "c", "turns": [{"content": ""}]}, "content of question q2 is empty"),
    ({"question_id": "q2", "turns": [{"content": "p"}]}, "'category' must be a string, found missing"),
    ({"question_id": "q2", "category": "c", "cluster": 3, "turns": [{"content": "p"}]}, "'cluster' must be a string"),
    ({"uid": "q2", "category": "c"}, "'prompt' must be a string, found missing"),
    ({"question_id": "q1", "category": "c", "turns": [{"content": "other"}]}, "question_id 'q1' again"),
])
def test_bad_arena_hard_records_name_the_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "question.jsonl", [GOOD_AH, line])
    with pytest.raises(DataError, match=rf"question.jsonl line 2: .*{message}"):
        mt_bench.load_arena_hard(path)


def test_missing_sources_are_named(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        mt_bench.load_mt_bench(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="no MT-Bench question files"):
        mt_bench.load_mt_bench(tmp_path)
