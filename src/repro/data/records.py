"""Reading dataset records from local files or the Hugging Face hub, one record at a time, each with
where it came from ("FILE line N", "FILE row N", "FILE record N", "ID[split] row N"), so that every
loader's errors can name the file and the record. Every failure raises `repro.data.DataError`."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repro.data import DataError

#: A Hugging Face hub id ("owner/name"), tried only when no local path of that name exists.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def text_id(text: str) -> str:
    """A stable id for a text that has none of its own (16 hex digits of its SHA-1)."""
    import hashlib

    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def jsonl_records(path: Path) -> Iterator[tuple[Any, str]]:
    """(parsed JSON, 'file line n') for each non-blank line of a .jsonl or .jsonl.gz file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    seen = False
    line_no = 0
    try:
        with opener(path, "rb") as handle:
            for line_no, raw in enumerate(handle, 1):
                where = f"{path} line {line_no}"
                try:
                    line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
                                    "is the line truncated?") from None
                seen = True
                yield record, where
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: could not read the file after line {line_no} ({exc})") from None
    if not seen:
        raise DataError(f"{path}: no records (the file is empty)")


def parquet_records(path: Path) -> Iterator[tuple[Any, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    if not rows:
        raise DataError(f"{path}: no records (the table is empty)")
    for i, row in enumerate(rows):
        yield row, f"{path} row {i}"


def hub_records(name: str, split: str | None, config: str | None = None) -> Iterator[tuple[Any, str]]:
    import datasets

    try:
        loaded = (datasets.load_dataset(name, config, split=split) if config is not None
                  else datasets.load_dataset(name, split=split))
    except Exception as exc:  # network, authentication, unknown name or split: all are the user's to fix
        raise DataError(f"{name}: no such local path, and loading it from the Hugging Face hub failed "
                        f"({type(exc).__name__}: {exc})") from None
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(split, loaded)]
    for part, dataset in parts:
        for i, row in enumerate(dataset):
            yield row, f"{name}[{part}] row {i}"


def json_array_records(path: Path) -> Iterator[tuple[Any, str]]:
    """(record, 'file record n') for each element of a file holding one JSON array (AlpacaEval's format)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: could not read the file ({exc})") from None
    if not text.strip():
        raise DataError(f"{path}: no records (the file is empty)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                        "is the file truncated?") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of records, found a {type(data).__name__}")
    if not data:
        raise DataError(f"{path}: no records (the array is empty)")
    for i, record in enumerate(data):
        yield record, f"{path} record {i}"


def source_records(source: str | Path, *, suffixes: tuple[str, ...], what: str, hub_example: str,
                   split: str | None = None, config: str | None = None,
                   json_arrays: bool = False) -> Iterator[tuple[Any, str]]:
    """(record, where) of every record of a source, the one resolver of every loader: a file; every
    file under a folder whose name ends with one of ``suffixes`` (sorted); or, when no such path
    exists, a hub dataset id (``split`` and ``config`` select from it). ``.parquet`` files hold rows,
    ``.jsonl``/``.jsonl.gz`` one JSON record per line, ``.json`` a JSON array with ``json_arrays``
    and otherwise one record per line (OpenAI's ``batch*.json`` files). ``what`` and ``hub_example``
    name the data in the error messages."""
    path = Path(source)
    if path.exists():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes)) if path.is_dir() else [path]
        if not files:
            raise DataError(f"{path}: no {what} files ({', '.join(suffixes)}) in this folder")
        for file in files:
            if file.name.endswith(".parquet"):
                yield from parquet_records(file)
            elif file.name.endswith((".jsonl", ".jsonl.gz")) or (file.name.endswith(".json") and not json_arrays):
                yield from jsonl_records(file)
            elif file.name.endswith(".json"):
                yield from json_array_records(file)
            else:
                raise DataError(f"{file}: unknown file type; expected one of {', '.join(suffixes)}")
    elif isinstance(source, str) and HUB_ID.match(source) and not source.endswith(suffixes):
        yield from hub_records(source, split, config=config)
    else:
        raise DataError(f"{source}: no such file or folder (and not a hub dataset id like {hub_example!r})")
