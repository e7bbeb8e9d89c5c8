"""Every dataset loader against bad files: property-based tests (hypothesis) over the record schemas,
and a fixed matrix of broken files.

The one property: a loader either returns its records or raises `repro.data.DataError` whose message
names the file, and never raises anything else (a ``KeyError``, ``TypeError``, ``AttributeError``,
``UnicodeDecodeError``... would be a crash, not a message). Valid records built from each schema are
read back whole.
"""

import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repro.data import DataError, alpaca_eval, mt_bench, oasst, records, summarize, ultrafeedback

# name -> (loader, shipped sample, file suffix, JSON array file?)
LOADERS = {
    "oasst": (oasst.load_oasst_messages, oasst.sample_path(), ".jsonl", False),
    "comparisons": (summarize.load_comparisons, summarize.sample_path("comparisons"), ".jsonl", False),
    "tldr": (summarize.load_tldr, summarize.sample_path("tldr"), ".jsonl", False),
    "ultrafeedback": (ultrafeedback.load_prompts, ultrafeedback.sample_path(), ".jsonl", False),
    "alpaca_eval": (alpaca_eval.load_alpaca_eval, alpaca_eval.sample_path(), ".json", True),
    "mt_bench": (mt_bench.load_mt_bench, mt_bench.mt_bench_sample_path(), ".jsonl", False),
    "arena_hard": (mt_bench.load_arena_hard, mt_bench.arena_hard_sample_path(), ".jsonl", False),
}
NAMES = sorted(LOADERS)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def sample_records(name: str) -> list:
    _, path, _, array = LOADERS[name]
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if array else [json.loads(line) for line in text.splitlines() if line.strip()]


def write(folder: Path, name: str, records: list) -> Path:
    _, _, suffix, array = LOADERS[name]
    path = folder / f"{name}{suffix}"
    path.write_text(json.dumps(records) if array else "".join(json.dumps(r) + "\n" for r in records),
                    encoding="utf-8")
    return path


def loads_or_names_the_file(name: str, path: Path):
    """Run the loader: its records, or None after a DataError that names the file. Anything else fails."""
    loader = LOADERS[name][0]
    try:
        return loader(path)
    except DataError as exc:
        assert str(path) in str(exc), f"{name}: the message does not name the file: {exc}"
        assert "\n" not in str(exc).strip()
        return None


# -- property: arbitrary JSON in place of any field ------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _paths(value, prefix=()):
    """Every path to a value inside a record (keys of objects, indices of lists)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, prefix + (i,))


def _replace(record, path, new, delete):
    if not path:
        return new
    parent = record
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return record


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_any_field_replaced_by_any_json_is_read_or_refused_by_name(name, data, tmp_path_factory):
    records = json.loads(json.dumps(sample_records(name)))
    index = data.draw(st.integers(0, len(records) - 1), label="record")
    path = data.draw(st.sampled_from(list(_paths(records[index]))), label="path")
    delete = data.draw(st.booleans(), label="delete")
    records[index] = _replace(records[index], path, data.draw(json_values, label="value"), delete)
    loads_or_names_the_file(name, write(tmp_path_factory.mktemp(name), name, records))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(lines=st.lists(json_values, max_size=4))
def test_files_of_arbitrary_json_records_are_read_or_refused_by_name(name, lines, tmp_path_factory):
    loads_or_names_the_file(name, write(tmp_path_factory.mktemp(name), name, lines))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(content=st.binary(max_size=300))
def test_files_of_arbitrary_bytes_are_read_or_refused_by_name(name, content, tmp_path_factory):
    path = tmp_path_factory.mktemp(name) / f"{name}{LOADERS[name][2]}"
    path.write_bytes(content)
    loads_or_names_the_file(name, path)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_a_file_cut_anywhere_is_read_or_refused_by_name(name, data, tmp_path_factory):
    content = LOADERS[name][1].read_bytes()
    cut = data.draw(st.integers(0, len(content)), label="cut")
    path = tmp_path_factory.mktemp(name) / f"{name}{LOADERS[name][2]}"
    path.write_bytes(content[:cut])
    loaded = loads_or_names_the_file(name, path)
    if loaded is not None and not LOADERS[name][3]:  # what a cut jsonl file keeps: the whole lines before the cut
        whole = content[:cut].count(b"\n") + (1 if content[:cut].endswith(b"}") else 0)
        assert len(loaded) <= whole


# -- property: valid records of each schema are read back whole ------------------------------------
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(str.strip)


@FUZZ
@given(rows=st.lists(st.tuples(words, words, words), min_size=1, max_size=6, unique_by=lambda r: r[0]))
def test_valid_tldr_records_are_read_whole(rows, tmp_path_factory):
    records = [{"id": i, "subreddit": s, "title": t, "post": p, "summary": t + p}
               for i, (p, s, t) in zip((r[0] for r in rows), rows)]
    frame = loads_or_names_the_file("tldr", write(tmp_path_factory.mktemp("tldr"), "tldr", records))
    assert frame is not None and list(frame["id"]) == [r["id"] for r in records]
    assert list(frame["post"]) == [r["post"] for r in records]


@FUZZ
@given(rows=st.lists(st.tuples(words, words, st.sampled_from([0, 1]), st.integers(1, 9) | st.none()),
                     min_size=1, max_size=6))
def test_valid_comparisons_are_read_whole(rows, tmp_path_factory):
    records = [{"info": {"id": f"t3_{i}", "post": post, "title": None, "subreddit": None},
                "summaries": [{"text": summary, "policy": "a"}, {"text": summary[::-1], "policy": "b"}],
                "choice": choice, "worker": "w", "batch": "b", "split": "train", "extra": {"confidence": confidence}}
               for i, (post, summary, choice, confidence) in enumerate(rows)]
    frame = loads_or_names_the_file("comparisons", write(tmp_path_factory.mktemp("cmp"), "comparisons", records))
    assert frame is not None and list(frame["choice"]) == [r[2] for r in rows]
    assert [None if pd.isna(c) else c for c in frame["confidence"]] == [r[3] for r in rows]


@FUZZ
@given(prompts=st.lists(words, min_size=1, max_size=8))
def test_valid_ultrafeedback_prompts_are_read_with_duplicates_dropped(prompts, tmp_path_factory):
    frame = loads_or_names_the_file("ultrafeedback", write(tmp_path_factory.mktemp("uf"), "ultrafeedback",
                                                           [{"prompt": p} for p in prompts]))
    assert frame is not None and list(frame["prompt"]) == list(dict.fromkeys(p.strip() for p in prompts))


@FUZZ
@given(rows=st.lists(st.tuples(words, words), min_size=1, max_size=6, unique_by=lambda r: r[0].strip()))
def test_valid_alpaca_eval_records_are_read_whole(rows, tmp_path_factory):
    records = [{"instruction": i, "output": o, "dataset": "d"} for i, o in rows]
    frame = loads_or_names_the_file("alpaca_eval", write(tmp_path_factory.mktemp("ae"), "alpaca_eval", records))
    assert frame is not None and len(frame) == len(rows)


@FUZZ
@given(rows=st.lists(st.tuples(st.integers(0, 10**6), words, words), min_size=1, max_size=6, unique_by=lambda r: r[0]))
def test_valid_mt_bench_questions_are_read_whole(rows, tmp_path_factory):
    records = [{"question_id": q, "category": "writing", "turns": [a, b]} for q, a, b in rows]
    frame = loads_or_names_the_file("mt_bench", write(tmp_path_factory.mktemp("mt"), "mt_bench", records))
    assert frame is not None and len(frame) == len(rows)


# -- a fixed matrix of broken files ----------------------------------------------------------------
def _broken(name: str, kind: str, folder: Path) -> tuple[Path, str]:
    """A broken file of ``kind`` for loader ``name`` and what its message must say."""
    _, sample, suffix, array = LOADERS[name]
    path = folder / f"{name}{suffix}"
    records = sample_records(name)
    if kind == "empty":
        path.write_bytes(b"")
        return path, "no records"
    if kind == "blank lines":
        path.write_text("\n  \n\n")
        return path, "no records"
    if kind == "not UTF-8":
        path.write_bytes(sample.read_bytes()[:40] + b"\xff\xfe\xfa" + sample.read_bytes()[40:])
        return path, "not valid UTF-8"
    if kind == "truncated":
        text = sample.read_bytes().rstrip()
        path.write_bytes(text[: len(text) - 7])
        return path, "truncated"
    if kind == "not an object":
        write(folder, name, [*records[:1], ["a", "list"], *records[1:]])
        return path, "expected"
    if kind == "missing field":
        field = {"oasst": "message_id", "comparisons": "summaries", "tldr": "post", "ultrafeedback": "prompt",
                 "alpaca_eval": "instruction", "mt_bench": "turns", "arena_hard": "turns"}[name]
        broken = dict(records[0])
        broken.pop(field)
        write(folder, name, [broken, *records[1:]])
        return path, "prompt" if name == "ultrafeedback" else field
    if kind == "wrong type":
        field = {"oasst": "text", "comparisons": "choice", "tldr": "post", "ultrafeedback": "prompt",
                 "alpaca_eval": "output", "mt_bench": "turns", "arena_hard": "turns"}[name]
        broken = dict(records[0])
        broken[field] = 12.5
        write(folder, name, [broken, *records[1:]])
        return path, field
    if kind == "duplicated id":
        write(folder, name, [*records, records[0]])
        return path, {"oasst": "repeats", "alpaca_eval": "the same instruction as"}.get(name, "again")
    raise AssertionError(kind)


KINDS = ["empty", "blank lines", "not UTF-8", "truncated", "not an object", "missing field", "wrong type",
         "duplicated id"]
# Duplicates are not errors everywhere: a comparison may be labelled twice (two workers, two judgments),
# and UltraFeedback's loader drops a repeated prompt (tested above).
NOT_ERRORS = {("comparisons", "duplicated id"), ("ultrafeedback", "duplicated id")}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", NAMES)
def test_each_kind_of_broken_file_is_refused_naming_file_and_record(name, kind, tmp_path):
    path, message = _broken(name, kind, tmp_path)
    before = path.read_bytes()
    if (name, kind) in NOT_ERRORS:
        assert loads_or_names_the_file(name, path) is not None
        return
    with pytest.raises(DataError) as info:
        LOADERS[name][0](path)
    text = str(info.value)
    assert str(path) in text and message in text, text
    if kind not in ("empty", "blank lines"):
        assert any(w in text for w in (" line ", " record ", " at byte ")), text  # which record, or where
    assert path.read_bytes() == before  # the input is never touched


def test_a_folder_of_files_names_the_bad_one(tmp_path):
    folder = tmp_path / "tldr"
    folder.mkdir()
    shutil.copy(LOADERS["tldr"][1], folder / "a.jsonl")
    (folder / "b.jsonl").write_text('{"id": "x", "post": "p", "summary": "s"}\n{"id": "y", "post": 3}\n')
    with pytest.raises(DataError, match=r"b\.jsonl line 2: field 'post' must be a string"):
        summarize.load_tldr(folder)


# -- what real dumps contain: values nested without end, and emojis cut in half ----------------------
# Time is bounded by hypothesis deadlines (generous: each file is read in milliseconds) and by the
# growth from n to 4n levels of nesting, which must stay linear.
ROBUST = settings(max_examples=40, deadline=timedelta(seconds=5),
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
PLACEHOLDER = "__replaced_by_the_test__"


def write_text_with(folder: Path, name: str, records: list, raw_json: str) -> Path:
    """``write``, then the JSON text of the placeholder value replaced by ``raw_json`` (a text that
    json.dumps could not write itself, e.g. nesting 100k levels deep)."""
    path = write(folder, name, records)
    text = path.read_text(encoding="utf-8")
    assert text.count(json.dumps(PLACEHOLDER)) == 1
    path.write_text(text.replace(json.dumps(PLACEHOLDER), raw_json), encoding="utf-8")
    return path


def deep_json(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a": ' * depth + "1" + "}" * depth
    return '[{"a": ' * (depth // 2) + '"x"' + "}]" * (depth // 2)


def refused_naming_the_record(name: str, path: Path) -> str:
    """The loader must refuse the file with a DataError naming the file and the record, on one printable line."""
    with pytest.raises(DataError) as info:
        LOADERS[name][0](path)
    text = str(info.value)
    assert str(path) in text and any(w in text for w in (" line ", " record ", " row ")), text
    assert "\n" not in text.strip()
    text.encode("utf-8")  # the message itself can be printed and logged
    return text


@pytest.mark.parametrize("name", NAMES)
@ROBUST
@given(data=st.data(), depth=st.sampled_from([records.MAX_DEPTH + 1, 300, 999, 1_000, 5_000, 100_000]),
       kind=st.sampled_from(["list", "object", "mixed"]))
def test_a_value_nested_without_end_is_refused_by_name(name, data, depth, kind, tmp_path_factory):
    rows = json.loads(json.dumps(sample_records(name)))
    index = data.draw(st.integers(0, len(rows) - 1), label="record")
    path = data.draw(st.sampled_from(list(_paths(rows[index]))[1:]), label="path")
    rows[index] = _replace(rows[index], path, PLACEHOLDER, False)
    file = write_text_with(tmp_path_factory.mktemp(name), name, rows, deep_json(depth, kind))
    text = refused_naming_the_record(name, file)
    assert "deeper than" in text and (f" line {index + 1}" in text or f" record {index}" in text), text


@pytest.mark.parametrize("name", NAMES)
@ROBUST
@given(data=st.data(), depth=st.integers(1, 40))
def test_a_value_nested_a_little_is_read_or_refused_by_name(name, data, depth, tmp_path_factory):
    rows = json.loads(json.dumps(sample_records(name)))
    index = data.draw(st.integers(0, len(rows) - 1), label="record")
    path = data.draw(st.sampled_from(list(_paths(rows[index]))[1:]), label="path")
    rows[index] = _replace(rows[index], path, PLACEHOLDER, False)
    loads_or_names_the_file(name, write_text_with(tmp_path_factory.mktemp(name), name, rows,
                                                  deep_json(depth, data.draw(st.sampled_from(["list", "object"])))))


lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)
around = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@pytest.mark.parametrize("name", NAMES)
@ROBUST
@given(data=st.data(), before=around, surrogate=lone_surrogates, after=around, in_key=st.booleans())
def test_a_lone_surrogate_anywhere_is_refused_by_name(name, data, before, surrogate, after, in_key,
                                                      tmp_path_factory):
    rows = json.loads(json.dumps(sample_records(name)))
    index = data.draw(st.integers(0, len(rows) - 1), label="record")
    broken = before + surrogate + after
    if in_key:
        rows[index][broken] = "an extra field"
    else:
        texts = [p for p in _paths(rows[index]) if p and isinstance(_get_path(rows[index], p), str)]
        path = data.draw(st.sampled_from(texts), label="path")
        rows[index] = _replace(rows[index], path, broken, False)
    # json.dumps writes the surrogate as the escape \udXXX, as a truncating exporter would
    file = write(tmp_path_factory.mktemp(name), name, rows)
    assert "\\ud" in file.read_text(encoding="ascii")
    text = refused_naming_the_record(name, file)
    assert "lone surrogate" in text and (f" line {index + 1}" in text or f" record {index}" in text), text


def _get_path(record, path):
    for step in path:
        record = record[step]
    return record


@pytest.mark.parametrize("name", NAMES)
def test_a_whole_emoji_written_as_an_escaped_pair_is_kept(name, tmp_path):
    rows = json.loads(json.dumps(sample_records(name)))
    texts = [p for p in _paths(rows[0]) if p and isinstance(_get_path(rows[0], p), str)]
    field = {"oasst": ("text",), "comparisons": ("info", "post"), "tldr": ("post",), "ultrafeedback": ("prompt",),
             "alpaca_eval": ("output",), "mt_bench": ("turns", 0), "arena_hard": ("turns", 0, "content")}[name]
    assert field in texts
    rows[0] = _replace(rows[0], field, _get_path(rows[0], field) + " \U0001F600", False)
    file = write(tmp_path, name, rows)
    assert "\\ud83d\\ude00" in file.read_text(encoding="ascii")
    loaded = LOADERS[name][0](file)
    everything = repr(loaded.to_dict() if isinstance(loaded, pd.DataFrame) else loaded)
    assert "\U0001F600" in everything


def _load_seconds(name: str, path: Path, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with pytest.raises(DataError):
            LOADERS[name][0](path)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", ["oasst", "alpaca_eval"])  # one JSON-lines and the JSON-array reader
def test_refusing_deep_nesting_takes_linear_time(name, tmp_path):
    rows = json.loads(json.dumps(sample_records(name)))
    rows[-1] = _replace(rows[-1], ("output",) if name == "alpaca_eval" else ("text",), PLACEHOLDER, False)
    files = {}
    for depth in (100_000, 400_000):
        (tmp_path / str(depth)).mkdir()
        files[depth] = write_text_with(tmp_path / str(depth), name, rows, deep_json(depth, "list"))
    small, large = _load_seconds(name, files[100_000]), _load_seconds(name, files[400_000])
    assert small < 2.0, f"100k levels took {small:.2f} s"
    assert large < 12 * small + 0.05, f"4x the nesting took {large / small:.1f}x the time (linear: about 4x)"


def test_parquet_text_that_is_not_utf8_is_refused_naming_the_row(tmp_path):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = [b"fine", b"an emoji cut \xf0\x9f", b"fine too"]
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int32)
    post = pa.Array.from_buffers(pa.string(), 3, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))])
    path = tmp_path / "tldr.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "post": post, "summary": ["s", "s", "s"]}), path)
    with pytest.raises(DataError, match=r"tldr\.parquet row 1: a text value is not valid UTF-8"):
        summarize.load_tldr(path)


def test_parquet_nested_without_end_is_refused_by_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    deep = "x"
    for _ in range(records.MAX_DEPTH + 50):
        deep = [deep]
    path = tmp_path / "tldr.parquet"
    pq.write_table(pa.table({"id": ["a"], "post": [deep], "summary": ["s"]}), path)
    with pytest.raises(DataError, match=r"tldr\.parquet"):
        summarize.load_tldr(path)


@pytest.mark.parametrize("fault", ["surrogate", "deep", "undecodable"])
def test_hub_rows_with_broken_text_are_refused_naming_the_row(monkeypatch, fault):
    import datasets

    good = {"id": "a", "post": "p", "summary": "s"}

    def rows():
        yield good
        if fault == "undecodable":
            raise UnicodeDecodeError("utf-8", b"\xf0\x9f", 0, 2, "unexpected end of data")
        if fault == "surrogate":
            yield {**good, "id": "b", "post": "cut \ud83d"}
        else:
            deep = "x"
            for _ in range(records.MAX_DEPTH + 5):
                deep = [deep]
            yield {**good, "id": "b", "post": deep}

    monkeypatch.setattr(datasets, "load_dataset", lambda name, *args, split=None: rows())
    with pytest.raises(DataError, match=r"owner/tldr\[train\] row 1: ") as info:
        summarize.load_tldr("owner/tldr", split="train")
    str(info.value).encode("utf-8")


@settings(max_examples=100, deadline=timedelta(seconds=1))
@given(text=st.text(max_size=40))
def test_text_ids_exist_for_any_text_and_are_unchanged_for_valid_text(text):
    import hashlib

    assert len(records.text_id(text)) == 16  # a lone surrogate included: no UnicodeEncodeError
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert records.text_id(text) == hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
