"""The papers' reported numbers (``repro/evaluation/data/reported.yaml``), read for the book's tables.

The data file is the only place a paper's number is written; chapters ask for them here.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from importlib import resources
from typing import Any


@cache
def _data() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(resources.files("repro.evaluation").joinpath("data", "reported.yaml").read_text())


def paper(name: str) -> dict[str, Any]:
    """Title, authors, year and arXiv id of one paper (``self_rewarding``, ``rlaif``, ``eva``)."""
    try:
        return _data()["papers"][name]
    except KeyError:
        raise KeyError(f"no paper {name!r} in reported.yaml; papers: {sorted(_data()['papers'])}") from None


def entries(paper_name: str, metric: str) -> list[dict[str, Any]]:
    """Every entry of one paper for one metric (a copy, so callers cannot change the data)."""
    found = [dict(e) for e in _data()["reported"] if e["paper"] == paper_name and e["metric"] == metric]
    if not found:
        raise KeyError(f"reported.yaml has no {metric!r} for paper {paper_name!r}")
    return found


def values(paper_name: str, metric: str) -> dict[str, float]:
    """``{label: number}`` of a metric reported per model or setting (``values:`` entries), or
    ``{model: value}`` of single-value entries."""
    out: dict[str, float] = {}
    for entry in entries(paper_name, metric):
        if "values" in entry:
            out.update(entry["values"])
        elif "model" in entry:
            out[entry["model"]] = entry["value"]
    return out


def value(paper_name: str, metric: str) -> float:
    """The one number of a metric the paper reports once (a ``value:`` entry without a model)."""
    found = [e["value"] for e in entries(paper_name, metric) if "value" in e and "model" not in e]
    if len(found) != 1:
        raise KeyError(f"reported.yaml has no single value of {metric!r} for paper {paper_name!r}")
    return found[0]


def source(paper_name: str, metric: str) -> str:
    """Where the paper reports a metric, with the citation: "Yuan et al. 2024 (arXiv ...): ..."."""
    info = paper(paper_name)
    return f"{info['authors']} {info['year']} (arXiv {info['arxiv']}): {entries(paper_name, metric)[0]['source']}"


def head_to_head(paper_name: str = "self_rewarding") -> dict[str, dict[str, float]]:
    """``{pair: {win, tie, loss}}`` of the head-to-head entries, in percent."""
    return {e["pair"]: {k: e[k] for k in ("win", "tie", "loss")} for e in entries(paper_name, "head_to_head")}


def claim_entries() -> list[dict[str, Any]]:
    """The claims ledger's entries (``claims:``), copies; `repro.evaluation.claims` validates and reads them."""
    return [dict(e) for e in _data().get("claims", [])]


def gate_entries() -> list[dict[str, Any]]:
    """The gates on the base (``gates:``), copies; `repro.evaluation.gates` validates and reads them."""
    return [dict(e) for e in _data().get("gates", [])]


def control_rule() -> dict[str, Any]:
    """The rule every control is judged by (``control_rule:``: the interval's level and the win rate of chance)."""
    return dict(_data()["control_rule"])


def records(section: str, kind: type, error: type[Exception], **convert) -> list:
    """The entries of one ``reported.yaml`` section (``gates``, ``controls``) as instances of the dataclass
    ``kind``, one per entry, each with the dataclass's fields (``convert``: a function per field applied to
    its value). An entry that lacks a field raises ``error`` naming the entry and the field; so does an id
    given twice."""
    out = []
    for entry in _data().get(section, []):
        try:
            values = {f.name: entry[f.name] for f in dataclasses.fields(kind)}
        except KeyError as exc:
            raise error(f"{section[:-1]} {entry.get('id', '?')!r} in reported.yaml has no {exc.args[0]!r}") from None
        out.append(kind(**{k: convert[k](v) if k in convert else v for k, v in values.items()}))
    if len({r.id for r in out}) != len(out):
        raise error(f"reported.yaml names a {section[:-1]} twice")
    return out


def entry(section: str, entry_id: str, error: type[Exception]) -> dict[str, Any]:
    """The entry of ``section`` (``development``, ``sizing``) whose id is ``entry_id``, a copy; raises ``error``
    when the section has none."""
    for e in _data().get(section, []):
        if e["id"] == entry_id:
            return dict(e)
    raise error(f"no {section} entry {entry_id!r} in reported.yaml")


def development_entries() -> list[dict[str, Any]]:
    """The settings chosen on development data (``development:``), copies; `repro.evaluation.development`
    reads them."""
    return [dict(e) for e in _data().get("development", [])]


def sizing_entries() -> list[dict[str, Any]]:
    """How much work the intervals need (``sizing:``), copies; `repro.evaluation.sizing` reads them."""
    return [dict(e) for e in _data().get("sizing", [])]
