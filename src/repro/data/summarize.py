"""Summarisation preference data in OpenAI's "summarize from feedback" schemas (the RLAIF study).

Two datasets, each read from local files or the Hugging Face hub:

- **Comparisons** (``openai/summarize_from_feedback``, config ``comparisons``; OpenAI's
  ``comparisons/batch*.json`` JSON-lines files): one record per human comparison::

      {"info": {"id", "post", "title", "subreddit", "site", "article"},
       "summaries": [{"text", "policy", "note"}, {"text", "policy", "note"}],
       "choice": 0 or 1, "worker", "batch", "split", "extra": {"confidence": 1-9}}

  `load_comparisons` returns one row per comparison: ``id, subreddit, title, post, summary_0,
  summary_1, policy_0, policy_1, choice, worker, batch, split, confidence``. Records of news articles
  (CNN/Daily Mail batches: ``article`` and no ``post``) are not Reddit TL;DR data; they are left out
  and counted in ``frame.attrs["without_post"]``.
- **Filtered TL;DR** (OpenAI's ``tldr_3_filtered/{train,valid,test}.jsonl``): ``{"id", "subreddit",
  "title", "post", "summary"}``; `load_tldr` returns those columns.

`evaluation_split` is the RLAIF paper's evaluation set: 15% of the comparisons of the train split,
kept only where the rater was confident (1, 2, 8 or 9 on the 1-9 scale); split by post, so that no
post is both in the evaluation set and in the remaining comparisons. `tldr_prompt` writes the
common TL;DR prompt format.

Small files in these schemas ship with the package (`sample_path`), written by this project for the
tests: their texts are not Reddit's. Every malformed record raises `repro.data.DataError` naming the
file and the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from repro.data import DataError
from repro.data.records import source_records

COMPARISON_COLUMNS = ["id", "subreddit", "title", "post", "summary_0", "summary_1", "policy_0", "policy_1",
                      "choice", "worker", "batch", "split", "confidence"]
TLDR_COLUMNS = ["id", "subreddit", "title", "post", "summary"]
#: The hub's comparisons dataset and its config.
COMPARISONS_CONFIG = "comparisons"
#: The RLAIF paper's evaluation filter: confident ratings only.
CONFIDENT = (1, 2, 8, 9)
SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")


def sample_path(name: str = "comparisons") -> Path:
    """A sample shipped with the package: ``"comparisons"`` or ``"tldr"``."""
    files = {"comparisons": "summarize_comparisons_sample.jsonl", "tldr": "tldr_filtered_sample.jsonl"}
    if name not in files:
        raise ValueError(f"no sample {name!r}; samples: {', '.join(files)}")
    return Path(str(resources.files("repro.data").joinpath("samples", files[name])))


def _records(source: str | Path, split: str | None, config: str | None) -> Iterator[tuple[Any, str]]:
    # OpenAI's comparison files are named batch*.json but hold one JSON object per line
    return source_records(source, suffixes=SUFFIXES, what="data", hub_example="openai/summarize_from_feedback",
                          split=split, config=config)


def _text(mapping: dict, key: str, where: str, *, optional: bool = False) -> str | None:
    value = mapping.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        found = "missing" if key not in mapping else f"a {type(value).__name__}"
        raise DataError(f"{where}: field {key!r} must be a string, found {found}")
    return value


def _int(value: Any) -> int | None:
    """An int from JSON or parquet (whole floats accepted, bools not); None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def comparison_row(record: Any, where: str) -> dict[str, Any] | None:
    """One validated comparison record as a row (None for a news article without a post)."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a comparison object, found {type(record).__name__}")
    info = record.get("info")
    if not isinstance(info, dict):
        raise DataError(f"{where}: field 'info' must be an object with id, post, title, subreddit")
    if info.get("post") is None and info.get("article") is not None:
        return None
    summaries = record.get("summaries")
    if not isinstance(summaries, list) or len(summaries) != 2 or not all(isinstance(s, dict) for s in summaries):
        raise DataError(f"{where}: field 'summaries' must be a list of two objects with text and policy")
    choice = _int(record.get("choice"))
    if choice not in (0, 1):
        raise DataError(f"{where}: field 'choice' must be 0 or 1, found {record.get('choice')!r}")
    extra = record.get("extra") or {}
    if not isinstance(extra, dict):
        raise DataError(f"{where}: field 'extra' must be an object, found {type(extra).__name__}")
    confidence = extra.get("confidence")
    if confidence is not None:
        confidence = _int(confidence)
        if confidence is None or not 1 <= confidence <= 9:
            raise DataError(f"{where}: extra.confidence must be an integer from 1 to 9, found {extra['confidence']!r}")
    row = {"id": _text(info, "id", f"{where} info"), "subreddit": _text(info, "subreddit", f"{where} info", optional=True),
           "title": _text(info, "title", f"{where} info", optional=True), "post": _text(info, "post", f"{where} info")}
    for i, summary in enumerate(summaries):
        row[f"summary_{i}"] = _text(summary, "text", f"{where} summaries[{i}]")
        row[f"policy_{i}"] = _text(summary, "policy", f"{where} summaries[{i}]", optional=True)
    row.update(choice=choice, worker=_text(record, "worker", where, optional=True),
               batch=_text(record, "batch", where, optional=True), split=_text(record, "split", where),
               confidence=confidence)
    return row


def load_comparisons(source: str | Path, *, split: str | None = None) -> pd.DataFrame:
    """Human comparisons of two summaries (see the module docstring). ``split`` selects a hub split
    (``train``, ``validation``); the records' own ``split`` field is kept as a column."""
    rows, skipped = [], 0
    for record, where in _records(source, split, COMPARISONS_CONFIG):
        row = comparison_row(record, where)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    frame = pd.DataFrame(rows, columns=COMPARISON_COLUMNS).astype({"confidence": "Int64", "choice": int})
    frame.attrs["without_post"] = skipped
    return frame


def load_tldr(source: str | Path, *, split: str | None = None) -> pd.DataFrame:
    """Filtered TL;DR posts with their reference summaries; ids must be unique."""
    rows, seen = [], {}
    for record, where in _records(source, split, None):
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a TL;DR object, found {type(record).__name__}")
        row = {key: _text(record, key, where, optional=key in ("subreddit", "title")) for key in TLDR_COLUMNS}
        if row["id"] in seen:
            raise DataError(f"{where}: id {row['id']!r} again (first at {seen[row['id']]})")
        seen[row["id"]] = where
        rows.append(row)
    return pd.DataFrame(rows, columns=TLDR_COLUMNS)


def tldr_prompt(subreddit: str | None, title: str | None, post: str) -> str:
    """The TL;DR prompt format of the summarisation literature (the policy completes after "TL;DR:")."""
    return f"SUBREDDIT: r/{subreddit or ''}\nTITLE: {title or ''}\nPOST: {post.strip()}\nTL;DR:"


def evaluation_split(comparisons: pd.DataFrame, *, fraction: float = 0.15, confidences=CONFIDENT,
                     split: str = "train", seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The RLAIF paper's evaluation set and what remains for training: ``fraction`` of the posts of
    the ``split`` comparisons are set aside (with every comparison of theirs), and of those only the
    confident ones (``confidences``) are kept for evaluation. Returns ``(rest, evaluation)``."""
    import numpy as np

    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    pool = comparisons[comparisons.split == split]
    if pool.empty:
        raise DataError(f"no comparisons of split {split!r} (splits present: {sorted(set(comparisons.split))})")
    posts = pool.id.drop_duplicates().to_numpy()
    rng = np.random.default_rng(seed)
    held = set(posts[rng.permutation(len(posts))[: max(1, round(fraction * len(posts)))]])
    aside = pool[pool.id.isin(held)]
    evaluation = aside[aside.confidence.isin(list(confidences))]
    rest = pool[~pool.id.isin(held)]
    return rest.reset_index(drop=True), evaluation.reset_index(drop=True)


__all__ = ["CONFIDENT", "evaluation_split", "load_comparisons", "load_tldr", "sample_path", "tldr_prompt"]
