"""Open Assistant (oasst1) messages: loading, IFT examples, EFT candidates and a leak-free split.

oasst1 is a forest of conversation trees. Each message row carries ``message_id``, ``parent_id``
(``None`` for the prompt at the root of a tree), ``message_tree_id`` (the root's id), ``text``,
``role`` (``"prompter"`` or ``"assistant"``), ``lang``, ``rank`` (0 = best among the ranked replies
to the same parent, ``None`` when unranked), ``deleted``, ``review_result``, ``synthetic``,
``tree_state`` and more (user ids, dates, emojis, labels, detoxify scores) that this module keeps
out of the way. The Self-Rewarding paper builds two seed sets from it:

- **IFT**: first-turn conversations (root prompt -> its rank-0 assistant reply) in English;
- **EFT**: root prompts with several human-ranked replies, which the SFT model then judges;
  a judgment is kept when its score ranking agrees with the human ranking. No prompt of EFT is
  in IFT.

Sources ``load_oasst_messages`` reads:

- a ``.jsonl`` / ``.jsonl.gz`` file of flat message rows (the Hugging Face ``OpenAssistant/oasst1``
  schema, or the project's ``*.messages.jsonl`` exports), or of tree records (``*.trees.jsonl``:
  ``{"message_tree_id", "tree_state", "prompt": {message, "replies": [...]}}``), which are flattened;
- a ``.parquet`` file of flat rows (the hub's own files);
- a folder: every such file under it, in sorted path order;
- a hub id such as ``OpenAssistant/oasst1`` (only when no local path of that name exists), through
  ``datasets.load_dataset``; all splits are read unless ``split`` names one.

Every malformed input raises ``repro.data.DataError`` naming the file and the line (or row) at
fault: unreadable or empty files, bad JSON or UTF-8, text with a lone surrogate (an emoji cut in half),
values nested too deeply (`repro.data.records.checked_record`), missing or mistyped fields, repeated ids.

A small file in the real flat schema ships with the package (``sample_path()``), written for the
tests and the tiny profile: ten trees, English plus Spanish and German, deleted messages, unranked
replies, second turns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from repro.data import DataError
from repro.data.records import source_records

ROLES = ("prompter", "assistant")
#: File endings read from a folder, and their reader.
SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")



@dataclass(frozen=True)
class OasstMessage:
    """One oasst1 message, with the fields the study uses. ``where`` says where it was read from."""

    message_id: str
    parent_id: str | None
    message_tree_id: str
    text: str
    role: str
    lang: str | None
    rank: int | None
    deleted: bool
    review_result: bool | None
    synthetic: bool
    tree_state: str | None
    where: str = ""

    @property
    def is_root(self) -> bool:
        return self.parent_id is None


# --------------------------------------------------------------------------------------------------
# Reading and validating rows


def _get(row: dict, key: str, kinds: tuple[type, ...], where: str, *, required: bool = False,
         default: Any = None) -> Any:
    """``row[key]`` checked against ``kinds`` (``None`` allowed unless required); bools are not ints."""
    if key not in row or row[key] is None:
        if required:
            raise DataError(f"{where}: missing field {key!r}")
        return default
    value = row[key]
    if isinstance(value, bool) and bool not in kinds:
        raise DataError(f"{where}: field {key!r} should be {_names(kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise DataError(f"{where}: field {key!r} should be {_names(kinds)}, got "
                        f"{type(value).__name__} {_short(value)}")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rank(row: dict, where: str) -> int | None:
    """The rank as an int; parquet and pandas give floats (NaN for missing), which are accepted when whole."""
    value = _get(row, "rank", (int, float), where)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer():
            raise DataError(f"{where}: field 'rank' should be a whole number, got {value!r}")
        value = int(value)
    if value is not None and value < 0:
        raise DataError(f"{where}: field 'rank' should be >= 0, got {value}")
    return value


def _message(row: Any, where: str, *, parent_id: Any = ..., tree: dict | None = None) -> OasstMessage:
    """Validate one flat row. ``parent_id``/``tree`` come from the enclosing tree record, if any."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__} {_short(row)}")
    message_id = _get(row, "message_id", (str,), where, required=True)
    if not message_id:
        raise DataError(f"{where}: field 'message_id' is empty")
    where = f"{where} (message {message_id})"
    role = _get(row, "role", (str,), where, required=True)
    if role not in ROLES:
        raise DataError(f"{where}: field 'role' should be one of {ROLES}, got {role!r}")
    given_parent = _get(row, "parent_id", (str,), where)
    if parent_id is not ...:
        if given_parent is not None and given_parent != parent_id:
            raise DataError(f"{where}: parent_id {given_parent!r} contradicts the tree, which nests it "
                            f"under {parent_id!r}")
        given_parent = parent_id
    tree = tree or {}
    return OasstMessage(
        message_id=message_id,
        parent_id=given_parent,
        message_tree_id=_get(row, "message_tree_id", (str,), where, default=tree.get("message_tree_id")),
        text=_get(row, "text", (str,), where, required=True),
        role=role,
        lang=_get(row, "lang", (str,), where),
        rank=_rank(row, where),
        deleted=_get(row, "deleted", (bool,), where, default=False),
        review_result=_get(row, "review_result", (bool,), where),
        synthetic=_get(row, "synthetic", (bool,), where, default=False),
        tree_state=_get(row, "tree_state", (str,), where, default=tree.get("tree_state")),
        where=where,
    )


def _messages_of_record(record: Any, where: str) -> Iterator[OasstMessage]:
    """A flat row gives one message; a tree record (``"prompt"`` with nested ``"replies"``) gives all
    of its messages, parents before children."""
    if isinstance(record, dict) and "message_id" not in record and isinstance(record.get("prompt"), dict):
        tree = {"message_tree_id": _get(record, "message_tree_id", (str,), where),
                "tree_state": _get(record, "tree_state", (str,), where)}
        stack: list[tuple[Any, str, Any]] = [(record["prompt"], "prompt", None)]
        while stack:
            node, path, parent = stack.pop()
            message = _message(node, f"{where} at {path}", parent_id=parent, tree=tree)
            if tree["message_tree_id"] is None:  # the root's id names its tree
                tree["message_tree_id"] = message.message_id
                message = _replace_tree_id(message, message.message_id)
            yield message
            replies = node.get("replies") or []
            if not isinstance(replies, list):
                raise DataError(f"{where} at {path}: field 'replies' should be a list")
            for i in reversed(range(len(replies))):
                stack.append((replies[i], f"{path}.replies[{i}]", message.message_id))
    else:
        yield _message(record, where)


def _replace_tree_id(message: OasstMessage, tree_id: str) -> OasstMessage:
    return replace(message, message_tree_id=tree_id)


def _records(source: str | Path, split: str | None) -> Iterator[tuple[Any, str]]:
    return source_records(source, suffixes=SUFFIXES, what="oasst", hub_example="OpenAssistant/oasst1", split=split)


def load_oasst_messages(source: str | Path, *, split: str | None = None) -> list[OasstMessage]:
    """Read and validate oasst1 messages from a file, a folder or a hub id (see the module docstring).

    Messages come back in the order read. ``split`` selects one split of a hub dataset (all splits
    when ``None``; ignored for local files). A flat row without ``message_tree_id`` gets it from its
    ancestors. Raises ``DataError`` naming the file and record for any malformed input, for a
    repeated ``message_id``, and for a message whose tree cannot be determined.
    """
    messages: list[OasstMessage] = []
    first_seen: dict[str, str] = {}
    for record, where in _records(source, split):
        for message in _messages_of_record(record, where):
            if message.message_id in first_seen:
                raise DataError(f"{message.where}: message_id repeats the one at {first_seen[message.message_id]}")
            first_seen[message.message_id] = message.where
            messages.append(message)
    return _fill_tree_ids(messages)


def _fill_tree_ids(messages: list[OasstMessage]) -> list[OasstMessage]:
    """Give messages without ``message_tree_id`` the id of their root (a root's tree id is its own id)."""
    if all(m.message_tree_id is not None for m in messages):
        return messages
    by_id = {m.message_id: m for m in messages}

    def tree_of(m: OasstMessage) -> str:
        seen = set()
        while m.message_tree_id is None:
            if m.parent_id is None:
                return m.message_id
            if m.message_id in seen or m.parent_id not in by_id:
                raise DataError(f"{m.where}: no message_tree_id, and its root cannot be found "
                                f"(parent {m.parent_id!r} is missing or the parents form a cycle)")
            seen.add(m.message_id)
            m = by_id[m.parent_id]
        return m.message_tree_id

    return [m if m.message_tree_id is not None else _replace_tree_id(m, tree_of(m)) for m in messages]


def sample_path() -> Path:
    """The oasst1-schema sample shipped with the package (``repro/data/samples/oasst1_sample.jsonl``)."""
    return Path(str(resources.files("repro.data").joinpath("samples", "oasst1_sample.jsonl")))


# --------------------------------------------------------------------------------------------------
# IFT examples and EFT candidates


def _usable(message: OasstMessage, lang: str | None) -> bool:
    """Not deleted, not rejected in review, not synthetic, non-empty, and in ``lang`` (any if None)."""
    return (not message.deleted and message.review_result is not False and not message.synthetic
            and bool(message.text.strip()) and (lang is None or message.lang == lang))


def _first_turns(messages: Iterable[OasstMessage], lang: str | None
                 ) -> Iterator[tuple[OasstMessage, list[OasstMessage]]]:
    """Each usable root prompt with its usable direct assistant replies, in input order."""
    messages = list(messages)
    replies: dict[str, list[OasstMessage]] = {}
    for m in messages:
        if m.parent_id is not None and m.role == "assistant" and _usable(m, lang):
            replies.setdefault(m.parent_id, []).append(m)
    for m in messages:
        if m.is_root and m.role == "prompter" and _usable(m, lang):
            yield m, replies.get(m.message_id, [])


def ift_examples(messages: Iterable[OasstMessage], lang: str | None = "en",
                 limit: int | None = None) -> list[dict[str, Any]]:
    """First-turn instruction examples: each root prompt with its rank-0 assistant reply.

    Both messages must be usable (not deleted, not rejected in review, not synthetic, non-empty) and
    in ``lang`` (``None``: any language). Prompts without a usable rank-0 reply are left out. Records
    are in trl's conversational prompt-completion format, plus ids::

        {"id": <reply message_id>, "message_tree_id": ...,
         "prompt": [{"role": "user", "content": ...}],
         "completion": [{"role": "assistant", "content": ...}]}

    ``limit`` keeps the first ``limit`` examples in input order (use ``split_by_tree`` to sample).
    """
    out = []
    for prompt, replies in _first_turns(messages, lang):
        best = [r for r in replies if r.rank == 0]
        if not best:
            continue
        out.append({
            "id": best[0].message_id,
            "message_tree_id": prompt.message_tree_id,
            "prompt": [{"role": "user", "content": prompt.text}],
            "completion": [{"role": "assistant", "content": best[0].text}],
        })
        if limit is not None and len(out) >= limit:
            break
    return out


@dataclass(frozen=True)
class RankedReply:
    """An assistant reply with its human rank among its siblings (0 = best)."""

    message_id: str
    text: str
    rank: int


@dataclass(frozen=True)
class EftCandidate:
    """A root prompt with several human-ranked replies, best first: the raw material of EFT data."""

    prompt_id: str
    message_tree_id: str
    prompt: str
    replies: tuple[RankedReply, ...]

    def as_record(self) -> dict[str, Any]:
        """A plain dict (for JSON, parquet or ``datasets``)."""
        return {"prompt_id": self.prompt_id, "message_tree_id": self.message_tree_id, "prompt": self.prompt,
                "replies": [{"message_id": r.message_id, "text": r.text, "rank": r.rank} for r in self.replies]}


def eft_candidates(messages: Iterable[OasstMessage], lang: str | None = "en",
                   min_replies: int = 2) -> list[EftCandidate]:
    """Root prompts with at least ``min_replies`` usable, ranked direct assistant replies.

    Usable as in ``ift_examples``; unranked replies (``rank`` None) are left out. Replies are sorted
    by rank, best first; ranks keep their original values, so gaps (a deleted reply's rank) remain.
    """
    if min_replies < 1:
        raise ValueError(f"min_replies must be at least 1, got {min_replies}")
    out = []
    for prompt, replies in _first_turns(messages, lang):
        ranked = sorted((r for r in replies if r.rank is not None), key=lambda r: r.rank)
        if len(ranked) >= min_replies:
            out.append(EftCandidate(prompt.message_id, prompt.message_tree_id, prompt.text,
                                    tuple(RankedReply(r.message_id, r.text, r.rank) for r in ranked)))
    return out


# --------------------------------------------------------------------------------------------------
# Splitting without leaks


@dataclass(frozen=True)
class OasstSplit:
    """IFT examples, EFT train and EFT eval candidates, no conversation tree in two of them."""

    ift: list[dict[str, Any]]
    eft_train: list[EftCandidate]
    eft_eval: list[EftCandidate]

    def counts(self) -> dict[str, int]:
        return {"ift": len(self.ift), "eft_train": len(self.eft_train), "eft_eval": len(self.eft_eval)}


def _tree_of(item: dict[str, Any] | EftCandidate, where: str) -> str:
    if isinstance(item, EftCandidate):
        return item.message_tree_id
    tree = item.get("message_tree_id") if isinstance(item, dict) else None
    if not isinstance(tree, str):
        raise DataError(f"{where}: the record has no 'message_tree_id' to split by")
    return tree


def overlapping_trees(*groups: Sequence[dict[str, Any] | EftCandidate]) -> set[str]:
    """Tree ids that occur in more than one of ``groups`` (empty when the groups are disjoint)."""
    seen: dict[str, int] = {}
    shared = set()
    for g, group in enumerate(groups):
        for i, item in enumerate(group):
            tree = _tree_of(item, f"group {g} item {i}")
            if seen.setdefault(tree, g) != g:
                shared.add(tree)
    return shared


def split_by_tree(
    ift: Sequence[dict[str, Any]],
    eft: Sequence[EftCandidate],
    *,
    eval_fraction: float = 0.25,
    n_eft_train: int | None = None,
    n_eft_eval: int | None = None,
    n_ift: int | None = None,
    seed: int = 0,
) -> OasstSplit:
    """Split into IFT, EFT train and EFT eval with no ``message_tree_id`` in two parts.

    EFT candidates are the scarcer resource (a prompt with several ranked replies usually also has a
    rank-0 IFT example), so they are assigned first: the candidates are shuffled with ``seed``; the
    first ``n_eft_eval`` (default: ``round(eval_fraction * len(eft))``) go to eval, the next
    ``n_eft_train`` (default: all the rest) to train. IFT examples from any tree used by EFT are then
    removed, and ``n_ift`` of the remainder (default all) are drawn with the same generator. Every
    part keeps the input order. Raises ``DataError`` when more items are asked for than exist.
    """
    import numpy as np

    if not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction must lie in [0, 1], got {eval_fraction}")
    rng = np.random.default_rng(seed)

    # Group EFT candidates by tree so that one tree never lands on both sides (oasst has one root per
    # tree, but records may have been concatenated from several loads).
    trees: dict[str, list[int]] = {}
    for i, candidate in enumerate(eft):
        trees.setdefault(_tree_of(candidate, f"eft item {i}"), []).append(i)
    order = [list(trees.values())[k] for k in rng.permutation(len(trees))]
    n_eval = round(eval_fraction * len(order)) if n_eft_eval is None else n_eft_eval
    n_train = len(order) - n_eval if n_eft_train is None else n_eft_train
    if n_eval < 0 or n_train < 0 or n_eval + n_train > len(order):
        raise DataError(f"asked for {n_eval} EFT eval + {n_train} EFT train prompts, but only "
                        f"{len(order)} EFT trees are available")
    eval_idx = sorted(i for group in order[:n_eval] for i in group)
    train_idx = sorted(i for group in order[n_eval:n_eval + n_train] for i in group)

    used = {_tree_of(eft[i], f"eft item {i}") for i in eval_idx + train_idx}
    free = [i for i, example in enumerate(ift) if _tree_of(example, f"ift item {i}") not in used]
    if n_ift is None:
        ift_idx = free
    else:
        if not 0 <= n_ift <= len(free):
            raise DataError(f"asked for {n_ift} IFT examples, but only {len(free)} remain after "
                            f"setting aside the {len(used)} trees used for EFT")
        ift_idx = sorted(free[k] for k in rng.permutation(len(free))[:n_ift])

    split = OasstSplit([ift[i] for i in ift_idx], [eft[i] for i in train_idx], [eft[i] for i in eval_idx])
    assert not overlapping_trees(split.ift, split.eft_train, split.eft_eval)
    return split


__all__ = [
    "EftCandidate", "OasstMessage", "OasstSplit", "RankedReply", "eft_candidates", "ift_examples",
    "load_oasst_messages", "overlapping_trees", "sample_path", "split_by_tree",
]
