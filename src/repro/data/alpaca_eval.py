"""AlpacaEval evaluation prompts with a reference model's outputs (the paper-scale evaluation set).

AlpacaEval 2.0 ships its 805 instructions with the reference model's outputs (GPT-4 Turbo) as one JSON
array of records ``{"instruction", "output", "generator", "dataset"}`` (the hub dataset
``tatsu-lab/alpaca_eval``, config ``alpaca_eval_gpt4_baseline``, split ``eval``). `load_alpaca_eval`
reads that file, a JSON-lines file of the same records, or the hub id, and returns one row per
instruction: ``uid`` (a stable hash of the instruction), ``family`` (the source ``dataset``),
``prompt``, ``reference`` (the reference model's output) and ``generator``.

A small file in the real schema ships with the package (`sample_path`), written by this project for
the tests; its outputs are not GPT-4's. Malformed input raises `repro.data.DataError` naming the
file and the record.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from repro.data import DataError
from repro.data.records import source_records, text_id

REQUIRED = ("instruction", "output")
HUB_CONFIG, HUB_SPLIT = "alpaca_eval_gpt4_baseline", "eval"
SUFFIXES = (".json", ".jsonl", ".jsonl.gz", ".parquet")


def sample_path() -> Path:
    """The AlpacaEval-schema sample shipped with the package."""
    return Path(str(resources.files("repro.data").joinpath("samples", "alpaca_eval_sample.json")))


def _records(source: str | Path):
    return source_records(source, suffixes=SUFFIXES, what="AlpacaEval", hub_example="tatsu-lab/alpaca_eval",
                          split=HUB_SPLIT, config=HUB_CONFIG, json_arrays=True)


def load_alpaca_eval(source: str | Path) -> pd.DataFrame:
    """Read AlpacaEval records (see the module docstring); instructions must be non-empty and unique."""
    rows, seen = [], {}
    for record, where in _records(source):
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected an object with {', '.join(REQUIRED)}, found {type(record).__name__}")
        for key in REQUIRED:
            if not isinstance(record.get(key), str):
                found = "missing" if key not in record else f"a {type(record[key]).__name__}"
                raise DataError(f"{where}: field {key!r} must be a string, found {found}")
        instruction = record["instruction"].strip()
        if not instruction:
            raise DataError(f"{where}: empty 'instruction'")
        if instruction in seen:
            raise DataError(f"{where}: the same instruction as {seen[instruction]}")
        seen[instruction] = where
        rows.append({"uid": text_id(instruction), "family": str(record.get("dataset") or ""), "prompt": instruction,
                     "reference": record["output"], "generator": str(record.get("generator") or "")})
    return pd.DataFrame(rows, columns=["uid", "family", "prompt", "reference", "generator"])


__all__ = ["load_alpaca_eval", "sample_path"]
