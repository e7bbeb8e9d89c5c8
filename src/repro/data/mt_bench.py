"""MT-Bench and Arena-Hard questions, eva's evaluation sets at paper scale (issue 5).

Both benchmarks ship their questions as a ``question.jsonl`` file. Sources are read like every other
loader here (`repro.data.records.source_records`): a file (JSON lines or parquet), a folder of them,
or a Hugging Face hub id. A folder that holds a ``question.jsonl`` (a FastChat ``data/mt_bench`` or an
``arena-hard-auto`` ``data/arena-hard-v0.1`` checkout, whose ``model_answer/`` and ``model_judgment/``
subfolders hold other records) is read from that file alone.

- **MT-Bench** (FastChat ``data/mt_bench/question.jsonl``): ``{"question_id": int, "category": str,
  "turns": [str, str], "reference": [str, ...]}``, the reference answers present only for the math,
  reasoning and coding questions. The hub copy ``HuggingFaceH4/mt_bench_prompts`` names the fields
  ``prompt_id`` and ``prompt``; both spellings are read. `load_mt_bench` returns one row per question:
  ``question_id``, ``category``, ``turn_1``, ``turn_2``, and ``reference_1`` / ``reference_2`` (None
  without a reference).
- **Arena-Hard** (``arena-hard-auto`` ``data/arena-hard-v0.1/question.jsonl``, hub
  ``lmarena-ai/arena-hard-auto-v0.1``): ``{"question_id": str, "category": str, "cluster": str,
  "turns": [{"content": str}]}``, one turn per question. `load_arena_hard` returns ``uid``,
  ``category``, ``prompt`` and ``cluster`` (empty when absent). Records in the later layout
  (``{"uid": str, "category": str, "prompt": str}``) are read too.

Malformed input raises `repro.data.DataError` naming the file and the line (or row): a missing field,
a field of the wrong type, an MT-Bench question without exactly two turns, an Arena-Hard question with
more than one turn, a question id seen twice. Small samples in both schemas ship with the package
(`mt_bench_sample_path`, `arena_hard_sample_path`), written by this project: they are not the
benchmarks' questions.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from repro.data import DataError
from repro.data.records import source_records

SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
QUESTION_FILE = "question.jsonl"
HUB_SPLIT = "train"
MT_BENCH_COLUMNS = ["question_id", "category", "turn_1", "turn_2", "reference_1", "reference_2"]
ARENA_HARD_COLUMNS = ["uid", "category", "prompt", "cluster"]


def mt_bench_sample_path() -> Path:
    """The MT-Bench-schema sample shipped with the package."""
    return Path(str(resources.files("repro.data").joinpath("samples", "mt_bench_sample.jsonl")))


def arena_hard_sample_path() -> Path:
    """The Arena-Hard-schema sample shipped with the package."""
    return Path(str(resources.files("repro.data").joinpath("samples", "arena_hard_sample.jsonl")))


def _records(source: str | Path, what: str, hub_example: str, split: str | None):
    path = Path(source)
    if path.is_dir() and (path / QUESTION_FILE).is_file():
        source = path / QUESTION_FILE
    return source_records(source, suffixes=SUFFIXES, what=what, hub_example=hub_example, split=split)


def _found(record: dict, key: str) -> str:
    return "missing" if key not in record else f"a {type(record[key]).__name__}"


def _field(record: dict, where: str, keys: tuple[str, ...], kind: type | tuple[type, ...], what: str) -> Any:
    """The first of ``keys`` present in ``record``, checked to be of ``kind`` (bools are no ints)."""
    key = next((k for k in keys if k in record), keys[0])
    value = record.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(repr(k) for k in keys)
        raise DataError(f"{where}: field {names} must be {what}, found {_found(record, key)}")
    return value


def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: {name} must be a string, found a {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: {name} is empty")
    return value.strip()


def _object(record: Any, where: str, fields: str) -> dict:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object with {fields}, found {type(record).__name__}")
    return record


def load_mt_bench(source: str | Path, *, split: str | None = HUB_SPLIT) -> pd.DataFrame:
    """MT-Bench questions (see the module docstring), in file order: exactly two turns each, ids unique."""
    rows, seen = [], {}
    for record, where in _records(source, "MT-Bench question", "HuggingFaceH4/mt_bench_prompts", split):
        record = _object(record, where, "'question_id', 'category' and 'turns'")
        qid = _field(record, where, ("question_id", "prompt_id"), int, "an integer")
        category = _field(record, where, ("category",), str, "a string")
        turns = _field(record, where, ("turns", "prompt"), (list, tuple), "a list of two strings")
        if len(turns) != 2:
            raise DataError(f"{where}: question {qid} has {len(turns)} turn(s); MT-Bench questions have exactly 2")
        turn_1, turn_2 = (_text(t, where, f"turn {i} of question {qid}") for i, t in enumerate(turns, 1))
        reference = record.get("reference")
        if reference is None:
            reference = []
        if not isinstance(reference, (list, tuple)) or len(reference) > 2:
            found = f"{len(reference)} items" if isinstance(reference, (list, tuple)) else f"a {type(reference).__name__}"
            raise DataError(f"{where}: field 'reference' of question {qid} must be a list of at most 2 strings, "
                            f"found {found}")
        reference = [_text(r, where, f"reference {i} of question {qid}") for i, r in enumerate(reference, 1)]
        if qid in seen:
            raise DataError(f"{where}: question_id {qid} again (first at {seen[qid]})")
        seen[qid] = where
        rows.append({"question_id": int(qid), "category": category, "turn_1": turn_1, "turn_2": turn_2,
                     "reference_1": reference[0] if reference else None,
                     "reference_2": reference[1] if len(reference) > 1 else None})
    return pd.DataFrame(rows, columns=MT_BENCH_COLUMNS)


def load_arena_hard(source: str | Path, *, split: str | None = HUB_SPLIT) -> pd.DataFrame:
    """Arena-Hard questions (see the module docstring), in file order: one turn each, ids unique."""
    rows, seen = [], {}
    for record, where in _records(source, "Arena-Hard question", "lmarena-ai/arena-hard-auto-v0.1", split):
        record = _object(record, where, "'question_id', 'category' and 'turns'")
        if "turns" in record or "uid" not in record:
            uid = _field(record, where, ("question_id",), (str, int), "a string")
            turns = _field(record, where, ("turns",), (list, tuple), "a list with one {'content': str} turn")
            if len(turns) != 1:
                raise DataError(f"{where}: question {uid} has {len(turns)} turns; Arena-Hard questions have one")
            turn = turns[0]
            if not isinstance(turn, dict) or "content" not in turn:
                raise DataError(f"{where}: the turn of question {uid} must be an object with 'content', "
                                f"found {turn!r:.80}")
            prompt = _text(turn["content"], where, f"the content of question {uid}")
        else:  # the later layout: uid and prompt
            uid = _field(record, where, ("uid",), str, "a string")
            prompt = _text(_field(record, where, ("prompt",), str, "a string"), where, f"the prompt of question {uid}")
        uid = str(uid).strip()
        if not uid:
            raise DataError(f"{where}: empty question id")
        category = _field(record, where, ("category",), str, "a string")
        cluster = record.get("cluster") or record.get("subcategory") or ""
        if not isinstance(cluster, str):
            raise DataError(f"{where}: field 'cluster' must be a string, found a {type(cluster).__name__}")
        if uid in seen:
            raise DataError(f"{where}: question_id {uid!r} again (first at {seen[uid]})")
        seen[uid] = where
        rows.append({"uid": uid, "category": category, "prompt": prompt, "cluster": cluster})
    return pd.DataFrame(rows, columns=ARENA_HARD_COLUMNS)


__all__ = ["arena_hard_sample_path", "load_arena_hard", "load_mt_bench", "mt_bench_sample_path"]
