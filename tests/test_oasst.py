import gzip
import json

import pandas as pd
import pytest

from repro.data import DataError
from repro.data.oasst import (
    EftCandidate,
    eft_candidates,
    ift_examples,
    load_oasst_messages,
    overlapping_trees,
    sample_path,
    split_by_tree,
)
from repro.errors import ReproError

SAMPLE = sample_path()


def sample_rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def write_rows(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def key(messages):
    return [(m.message_id, m.parent_id, m.message_tree_id, m.text, m.rank, m.deleted) for m in messages]


@pytest.fixture(scope="module")
def messages():
    return load_oasst_messages(SAMPLE)


# --- the shipped sample ---------------------------------------------------------------------------


def test_sample_is_in_the_oasst1_flat_schema(messages):
    rows = sample_rows()
    expected = {"message_id", "parent_id", "user_id", "created_date", "text", "role", "lang", "review_count",
                "review_result", "deleted", "rank", "synthetic", "model_name", "detoxify", "message_tree_id",
                "tree_state", "emojis", "labels"}
    assert all(set(r) == expected for r in rows)
    assert len(messages) == len(rows) == 41
    assert len({m.message_tree_id for m in messages}) == 10
    assert {m.lang for m in messages} == {"en", "es", "de"}
    assert any(m.deleted for m in messages) and any(m.rank is None and m.role == "assistant" for m in messages)
    roots = {m.message_id for m in messages if m.is_root}
    assert roots == {m.message_tree_id for m in messages}


def test_ift_examples_are_first_turn_rank0_english(messages):
    examples = ift_examples(messages)
    assert [e["prompt"][0]["content"] for e in examples] == [
        "How do I brew a good cup of green tea?",
        "Explain photosynthesis to a ten year old.",
        "What is the difference between a list and a tuple in Python?",
        "Suggest a name for a small grey cat.",
        "Why is the sky blue?",
    ]  # not: deleted prompt, deleted rank-0 reply, unranked replies, Spanish, German
    first = examples[0]
    assert set(first) == {"id", "message_tree_id", "prompt", "completion"}
    assert first["prompt"][0]["role"] == "user" and first["completion"][0]["role"] == "assistant"
    assert first["completion"][0]["content"].startswith("Heat water to about 80 C")
    by_id = {m.message_id: m for m in messages}
    for e in examples:  # the completion is a direct, rank-0 reply to a root prompt
        reply = by_id[e["id"]]
        assert reply.rank == 0 and by_id[reply.parent_id].is_root
    assert len(ift_examples(messages, lang=None)) == 7
    spanish = ift_examples(messages, lang="es")
    assert [e["prompt"][0]["content"] for e in spanish] == ["¿Cuál es la capital de Australia?"]
    assert len(ift_examples(messages, limit=2)) == 2


def test_eft_candidates_keep_ranked_usable_replies_best_first(messages):
    candidates = eft_candidates(messages)
    assert [[r.rank for r in c.replies] for c in candidates] == [[0, 1, 2], [0, 1], [0, 1, 2], [1, 2], [0, 1, 2]]
    texts = [r.text for c in candidates for r in c.replies]
    assert "just google it" not in texts  # deleted reply
    assert "sky blue because blue" not in texts  # rejected in review
    assert not any("second time" in c.prompt for c in candidates)  # second turns are not prompts
    assert len(eft_candidates(messages, min_replies=3)) == 3
    assert len(eft_candidates(messages, lang=None)) == 7
    record = candidates[0].as_record()
    assert record["replies"][0]["rank"] == 0 and json.loads(json.dumps(record)) == record


def test_split_has_no_tree_in_two_parts(messages):
    ift, eft = ift_examples(messages, lang=None), eft_candidates(messages, lang=None)
    split = split_by_tree(ift, eft, n_eft_eval=2, n_eft_train=3, seed=1)
    assert (len(split.eft_train), len(split.eft_eval)) == (3, 2)
    used = {c.message_tree_id for c in split.eft_train + split.eft_eval}
    assert split.ift == [e for e in ift if e["message_tree_id"] not in used]  # all the rest, in order
    assert not overlapping_trees(split.ift, split.eft_train, split.eft_eval)
    assert overlapping_trees(ift, eft)  # without the split they do share trees
    assert split == split_by_tree(ift, eft, n_eft_eval=2, n_eft_train=3, seed=1)
    default = split_by_tree(ift, eft)  # 25% of 7 EFT trees for eval, the rest for train
    assert default.counts() == {"ift": 1, "eft_train": 5, "eft_eval": 2}  # every EFT tree used
    assert default.ift[0]["prompt"][0]["content"] == "Suggest a name for a small grey cat."
    assert len(split_by_tree(ift, eft, n_eft_eval=1, n_eft_train=1, n_ift=3).ift) == 3
    with pytest.raises(DataError, match=r"asked for 8 IFT examples, but only [56] remain"):
        split_by_tree(ift, eft, n_eft_eval=1, n_eft_train=1, n_ift=8)
    with pytest.raises(DataError, match="only 7 EFT trees"):
        split_by_tree(ift, eft, n_eft_eval=4, n_eft_train=4)
    with pytest.raises(DataError, match="no 'message_tree_id'"):
        split_by_tree([{"prompt": []}], eft)


def test_split_keeps_duplicate_tree_candidates_together(messages):
    eft = eft_candidates(messages)
    doubled = eft + [EftCandidate("x", eft[0].message_tree_id, "again", eft[0].replies)]
    split = split_by_tree([], doubled, eval_fraction=0.5, seed=3)
    assert not overlapping_trees(split.eft_train, split.eft_eval)
    assert len(split.eft_train) + len(split.eft_eval) == 6


# --- other formats --------------------------------------------------------------------------------


def test_gzip_parquet_and_folder_give_the_same_messages(tmp_path, messages):
    gz = tmp_path / "oasst.jsonl.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    assert key(load_oasst_messages(gz)) == key(messages)

    parquet = tmp_path / "oasst.parquet"
    pd.DataFrame(sample_rows()).to_parquet(parquet)  # rank becomes float with NaN, as on the hub
    assert key(load_oasst_messages(parquet)) == key(messages)

    folder = tmp_path / "parts"
    folder.mkdir()
    rows = sample_rows()
    write_rows(folder / "a.jsonl", rows[:20])
    write_rows(folder / "b.jsonl", rows[20:])
    (folder / "notes.txt").write_text("ignored")
    assert key(load_oasst_messages(folder)) == key(messages)


def to_trees(rows):
    """The sample as tree records (``*.trees.jsonl``), children nested under ``replies``."""
    nodes = {r["message_id"]: {k: v for k, v in r.items() if k not in ("message_tree_id", "tree_state")}
             for r in rows}
    trees = []
    for r in rows:
        node = nodes[r["message_id"]]
        if r["parent_id"] is None:
            trees.append({"message_tree_id": r["message_tree_id"], "tree_state": r["tree_state"], "prompt": node})
        else:
            nodes[r["parent_id"]].setdefault("replies", []).append(node)
    return trees


def test_tree_exports_are_flattened(tmp_path, messages):
    path = tmp_path / "oasst.trees.jsonl"
    trees = to_trees(sample_rows())
    del trees[0]["message_tree_id"]  # the root's id stands in for a missing tree id
    write_rows(path, trees)
    loaded = load_oasst_messages(path)
    assert sorted(key(loaded)) == sorted(key(messages))
    assert ift_examples(loaded) == ift_examples(messages)

    trees[1]["prompt"]["replies"][0]["parent_id"] = "somewhere-else"
    write_rows(path, trees)
    with pytest.raises(DataError, match=r"line 2 at prompt\.replies\[0\].*contradicts the tree"):
        load_oasst_messages(path)


def test_missing_tree_ids_are_derived_from_parents(tmp_path, messages):
    rows = sample_rows()
    for r in rows:
        del r["message_tree_id"]
    path = tmp_path / "no_tree_ids.jsonl"
    write_rows(path, rows)
    assert key(load_oasst_messages(path)) == key(messages)
    write_rows(path, rows[1:])  # the first root is gone: its children cannot find their tree
    with pytest.raises(DataError, match="root cannot be found"):
        load_oasst_messages(path)


def test_hub_ids_go_through_datasets(monkeypatch, messages):
    import datasets

    calls = []

    def fake_load_dataset(name, split=None):
        calls.append((name, split))
        rows = sample_rows()
        return datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:30]),
                                     "validation": datasets.Dataset.from_list(rows[30:])})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = load_oasst_messages("OpenAssistant/oasst1")
    assert calls == [("OpenAssistant/oasst1", None)]
    assert key(loaded) == key(messages)
    assert loaded[30].where.startswith("OpenAssistant/oasst1[validation] row 0")

    def failing(name, split=None):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", failing)
    with pytest.raises(DataError, match="OpenAssistant/oasst1: no such local path.*no network"):
        load_oasst_messages("OpenAssistant/oasst1", split="train")


# --- malformed input ------------------------------------------------------------------------------


def broken_copy(tmp_path, edit, name="broken.jsonl"):
    rows = sample_rows()
    edit(rows)
    path = tmp_path / name
    write_rows(path, rows)
    return path


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda rows: rows[2].pop("text"), r"line 3 \(message [0-9a-f-]+\): missing field 'text'"),
        (lambda rows: rows[0].pop("message_id"), r"line 1: missing field 'message_id'"),
        (lambda rows: rows[4].update(rank="first"), r"line 5 .*'rank' should be int or float, got str"),
        (lambda rows: rows[4].update(rank=1.5), r"line 5 .*whole number"),
        (lambda rows: rows[4].update(rank=True), r"line 5 .*'rank' should be int or float, got True"),
        (lambda rows: rows[4].update(rank=-1), r"line 5 .*>= 0"),
        (lambda rows: rows[5].update(role="bot"), r"line 6 .*'role' should be one of"),
        (lambda rows: rows[6].update(deleted="no"), r"line 7 .*'deleted' should be bool"),
        (lambda rows: rows[7].update(text=["a", "list"]), r"line 8 .*'text' should be str, got list"),
        (lambda rows: rows[8].update(parent_id=17), r"line 9 .*'parent_id' should be str"),
        (lambda rows: rows.insert(3, ["not", "an", "object"]), r"line 4: expected a JSON object, got list"),
        (lambda rows: rows.append(dict(rows[0])), r"line 42 .*repeats the one at .*line 1"),
    ],
)
def test_malformed_records_name_file_and_line(tmp_path, edit, pattern):
    path = broken_copy(tmp_path, edit)
    with pytest.raises(DataError, match=pattern) as caught:
        load_oasst_messages(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ReproError) and caught.value.exit_code == 2


def test_truncated_json_line(tmp_path):
    data = SAMPLE.read_bytes()
    path = tmp_path / "truncated.jsonl"
    path.write_bytes(data[: len(data) - 200])  # cut the last record in half
    with pytest.raises(DataError, match=r"truncated\.jsonl line 41: not valid JSON.*truncated"):
        load_oasst_messages(path)


def test_non_utf8_bytes(tmp_path):
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    assert b"Put a tea bag" in lines[2]
    lines[2] = lines[2].replace(b"Put a tea bag", b"Put a t\xe9a bag")  # a latin-1 byte
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b"".join(lines))
    with pytest.raises(DataError, match=r"latin1\.jsonl line 3: not valid UTF-8"):
        load_oasst_messages(path)


def test_empty_unreadable_and_absent_sources(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jsonl: no records"):
        load_oasst_messages(empty)
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n  \n")
    with pytest.raises(DataError, match="no records"):
        load_oasst_messages(blank)
    bad_gz = tmp_path / "bad.jsonl.gz"
    bad_gz.write_bytes(b"definitely not gzip")
    with pytest.raises(DataError, match=r"bad\.jsonl\.gz: could not read"):
        load_oasst_messages(bad_gz)
    cut_gz = tmp_path / "cut.jsonl.gz"
    cut_gz.write_bytes(gzip.compress(SAMPLE.read_bytes())[:300])
    with pytest.raises(DataError, match=r"cut\.jsonl\.gz"):
        load_oasst_messages(cut_gz)
    bad_parquet = tmp_path / "bad.parquet"
    bad_parquet.write_bytes(b"PAR1 nope")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable parquet"):
        load_oasst_messages(bad_parquet)
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(DataError, match="no oasst files"):
        load_oasst_messages(nothing)
    with pytest.raises(DataError, match="no such file or folder"):
        load_oasst_messages(tmp_path / "absent.jsonl")
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n")
    with pytest.raises(DataError, match="unknown file type"):
        load_oasst_messages(csv)
