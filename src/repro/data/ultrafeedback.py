"""UltraFeedback prompts, eva's training prompts at paper scale (issue 5 groundwork).

eva draws its prompts from UltraFeedback. Two layouts are read, from files (JSON lines or parquet),
folders of them, or the hub:

- the binarised set (``HuggingFaceH4/ultrafeedback_binarized``, split ``train_prefs``): records with
  ``prompt`` and ``prompt_id`` (and chosen/rejected conversations, not needed here);
- the original release (``openbmb/UltraFeedback``): records with ``instruction`` and ``source``.

`load_prompts` returns one row per prompt: ``uid`` (``prompt_id``, or a stable hash of the text),
``source`` and ``prompt``. A prompt seen twice is kept once (the original release repeats some);
an empty or missing prompt raises `repro.data.DataError` naming the file and the record. A small
file in the binarised schema ships with the package (`sample_path`), written by this project.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from repro.data import DataError
from repro.data.records import source_records, text_id

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")
HUB_SPLIT = "train_prefs"


def sample_path() -> Path:
    """The UltraFeedback-schema sample shipped with the package."""
    return Path(str(resources.files("repro.data").joinpath("samples", "ultrafeedback_sample.jsonl")))


def load_prompts(source: str | Path, *, split: str | None = HUB_SPLIT) -> pd.DataFrame:
    """UltraFeedback prompts (see the module docstring), in file order, duplicates dropped."""
    rows, seen = [], set()
    for record, where in source_records(source, suffixes=SUFFIXES, what="UltraFeedback",
                                        hub_example="HuggingFaceH4/ultrafeedback_binarized", split=split):
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected an object with 'prompt' or 'instruction', found {type(record).__name__}")
        key = "prompt" if "prompt" in record else "instruction"
        text = record.get(key)
        if not isinstance(text, str) or not text.strip():
            found = "missing" if key not in record else "empty" if isinstance(text, str) else f"a {type(text).__name__}"
            raise DataError(f"{where}: field 'prompt' (or 'instruction') must be a non-empty string, found {found}")
        text = text.strip()
        if text in seen:
            continue
        seen.add(text)
        uid = record.get("prompt_id")
        rows.append({"uid": str(uid) if uid else text_id(text), "source": str(record.get("source") or ""),
                     "prompt": text})
    if not rows:
        raise DataError(f"{source}: no prompts")
    return pd.DataFrame(rows, columns=["uid", "source", "prompt"])


__all__ = ["load_prompts", "sample_path"]
