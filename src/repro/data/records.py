"""Reading dataset records from local files or the Hugging Face hub, one record at a time, each with
where it came from ("FILE line N", "FILE row N", "FILE record N", "ID[split] row N"), so that every
loader's errors can name the file and the record. Every failure raises `repro.data.DataError`.

Every record is checked before a loader sees it (`checked_record`): values nested deeper than
`MAX_DEPTH` levels, and text holding a lone surrogate (half of a UTF-16 pair, e.g. an emoji cut in
two and written as the JSON escape ``\\ud83d``), are refused like bytes that are not UTF-8: such text
cannot be written as UTF-8 again, and such nesting would overflow the stack of whatever reads it next.
"""

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
#: How deeply a record's values may nest (the record itself is level 1). Real records nest a few
#: levels (an oasst tree record two per conversation turn); far deeper nesting is malformed input.
MAX_DEPTH = 200
#: Rows converted from parquet at a time (a bad row is then looked for within its chunk only).
PARQUET_CHUNK = 4096
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_BLANKS = re.compile(r"[ \t\n\r]*")


def text_id(text: str) -> str:
    """A stable id for a text that has none of its own (16 hex digits of its SHA-1 of the UTF-8 text;
    a lone surrogate, which UTF-8 cannot encode, is hashed as its surrogate bytes instead of raising)."""
    import hashlib

    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _field_path(path: tuple) -> str:
    """``("summaries", 0, "text")`` as ``field summaries[0].text`` (keys that are not names quoted and
    escaped, so that the message is one printable line); ``()`` as ``the record``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif isinstance(step, str) and step.isidentifier() and step.isascii():
            out += f".{step}" if out else step
        else:
            out += f"[{step!r}]"
    return f"field {out}" if out else "the record"


def _lone_surrogate(text: str) -> str | None:
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    return found.group() if found else None


def checked_record(record: Any, where: str) -> Any:
    """``record`` unchanged, after checking all of it without recursion: raises `DataError` naming the
    record and the field for a value nested deeper than `MAX_DEPTH` levels, or for a lone surrogate in
    a string (a value or a key). Linear in the size of the record."""
    stack: list[tuple[Any, int, tuple]] = [(record, 1, ())]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            bad = _lone_surrogate(value)
            if bad is not None:
                raise DataError(f"{where}: {_field_path(path)} holds a lone surrogate {bad!r} (half of a "
                                "character, e.g. an emoji cut in two): not valid Unicode, cannot be written as UTF-8")
            continue
        if isinstance(value, dict):
            items: Any = value.items()
        elif isinstance(value, (list, tuple)):
            items = enumerate(value)
        else:
            continue
        if depth > MAX_DEPTH:
            shown = _field_path(path[:4]) + ("..." if len(path) > 4 else "")
            raise DataError(f"{where}: {shown} nests deeper than {MAX_DEPTH} levels")
        for key, item in items:
            if isinstance(key, str) and _lone_surrogate(key) is not None:
                raise DataError(f"{where}: a key in {_field_path(path)} holds a lone surrogate "
                                f"{_lone_surrogate(key)!r} (half of a character): not valid Unicode")
            if isinstance(item, (str, dict, list, tuple)):
                stack.append((item, depth + 1, path + (key,)))
    return record


def _too_deep(where: str) -> DataError:
    return DataError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels (too deep to read)")


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
                except RecursionError:
                    raise _too_deep(where) from None
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
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    if not table.num_rows:
        raise DataError(f"{path}: no records (the table is empty)")
    for start in range(0, table.num_rows, PARQUET_CHUNK):
        try:
            rows = _python_rows(table.slice(start, PARQUET_CHUNK))
        except _ConversionError:  # find the row at fault, one at a time
            for i in range(start, min(start + PARQUET_CHUNK, table.num_rows)):
                try:
                    _python_rows(table.slice(i, 1))
                except _ConversionError as exc:
                    raise DataError(f"{path} row {i}: {exc}") from None
            raise DataError(f"{path}: rows {start} to {start + PARQUET_CHUNK - 1} cannot be read") from None
        for i, row in enumerate(rows, start):
            yield row, f"{path} row {i}"


class _ConversionError(Exception):
    """A value that cannot become Python: text that is not UTF-8, or nesting too deep to convert."""


def _python_rows(table) -> list:
    try:
        return table.to_pylist()
    except UnicodeDecodeError as exc:
        raise _ConversionError(f"a text value is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise _ConversionError(f"values nested deeper than {MAX_DEPTH} levels (too deep to read)") from None


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
        i = 0
        try:
            for row in dataset:
                yield row, f"{name}[{part}] row {i}"
                i += 1
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}[{part}] row {i}: a text value is not valid UTF-8 "
                            f"({exc.reason} at byte {exc.start})") from None
        except RecursionError:
            raise _too_deep(f"{name}[{part}] row {i}") from None


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
    except RecursionError:
        index = _too_deep_element(text)
        raise _too_deep(f"{path}" if index is None else f"{path} record {index}") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of records, found a {type(data).__name__}")
    if not data:
        raise DataError(f"{path}: no records (the array is empty)")
    for i, record in enumerate(data):
        yield record, f"{path} record {i}"


def _too_deep_element(text: str) -> int | None:
    """Which element of the JSON array ``text`` is nested too deeply to parse (None if not found):
    the elements are parsed one at a time, so each is read once."""
    decoder = json.JSONDecoder()
    pos = _JSON_BLANKS.match(text).end()
    if not text.startswith("[", pos):
        return None
    pos = _JSON_BLANKS.match(text, pos + 1).end()
    index = 0
    while pos < len(text):
        try:
            _, pos = decoder.raw_decode(text, pos)
        except RecursionError:
            return index
        except json.JSONDecodeError:
            return None
        pos = _JSON_BLANKS.match(text, pos).end()
        if not text.startswith(",", pos):
            return None
        pos = _JSON_BLANKS.match(text, pos + 1).end()
        index += 1
    return None


def source_records(source: str | Path, *, suffixes: tuple[str, ...], what: str, hub_example: str,
                   split: str | None = None, config: str | None = None,
                   json_arrays: bool = False) -> Iterator[tuple[Any, str]]:
    """(record, where) of every record of a source, the one resolver of every loader: a file; every
    file under a folder whose name ends with one of ``suffixes`` (sorted); or, when no such path
    exists, a hub dataset id (``split`` and ``config`` select from it). ``.parquet`` files hold rows,
    ``.jsonl``/``.jsonl.gz`` one JSON record per line, ``.json`` a JSON array with ``json_arrays``
    and otherwise one record per line (OpenAI's ``batch*.json`` files). ``what`` and ``hub_example``
    name the data in the error messages. Every record is `checked_record` first."""
    for record, where in _source_records(source, suffixes=suffixes, what=what, hub_example=hub_example,
                                         split=split, config=config, json_arrays=json_arrays):
        yield checked_record(record, where), where


def _source_records(source: str | Path, *, suffixes: tuple[str, ...], what: str, hub_example: str,
                    split: str | None, config: str | None, json_arrays: bool) -> Iterator[tuple[Any, str]]:
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
