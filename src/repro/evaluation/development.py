"""Settings chosen on development data (``development:`` in ``reported.yaml``).

A sweep runs one learner at several settings, each over seeds, and measures its positive control on
development prompts that no claim and no control reads. `choose` applies the rule written in
``reported.yaml`` before any sweep ran: the setting with the highest mean of the metric over seeds,
provided its 95% interval over seeds lies above 50% (else no setting is chosen, and the chapter says
so: the learner cannot beat its start on development data at any setting tried).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from repro.errors import ReproError
from repro.evaluation import reported
from repro.evaluation.stats import seed_ci

#: A chosen setting must beat its start: the interval of the metric above this.
CHANCE = 0.5


class DevelopmentError(ReproError):
    """A development entry of ``reported.yaml`` is missing, or a sweep's results cannot be read by it."""


def entry(entry_id: str) -> dict[str, Any]:
    """One ``development:`` entry of ``reported.yaml``."""
    return reported.entry("development", entry_id, DevelopmentError)


def settings_table(results: pd.DataFrame, keys: Sequence[str], metric: str = "win_rate") -> pd.DataFrame:
    """One row per setting (the ``keys`` columns): the metric's mean over seeds with a 95% t interval, the
    number of seeds, in the order the settings first appear."""
    missing = [k for k in (*keys, metric, "seed") if k not in results.columns]
    if missing:
        raise DevelopmentError(f"the sweep's results have no column {', '.join(missing)}")
    rows = []
    for setting, group in results.groupby(list(keys), sort=False):
        est = seed_ci(group.sort_values("seed")[metric], bounds=(0.0, 1.0))
        rows.append({**dict(zip(keys, setting if isinstance(setting, tuple) else (setting,))),
                     metric: est.value, "low": est.low, "high": est.high, "seeds": est.n})
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame, keys: Sequence[str], metric: str = "win_rate") -> dict[str, Any] | None:
    """The rule: the setting with the highest mean ``metric`` whose interval lies above 50% (the first in
    the table's order among equal means), as ``{key: value}``; None when no setting qualifies."""
    qualified = table[(table.low > CHANCE) & (table.seeds >= 2)]
    if qualified.empty:
        return None
    best = qualified.loc[qualified[metric].idxmax()]
    return {k: best[k].item() if hasattr(best[k], "item") else best[k] for k in keys}


def defaults_agree(chosen: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The chosen values that differ from a notebook's declared defaults: ``{key: (chosen, default)}``."""
    if not chosen:
        return {}
    return {k: (v, defaults.get(k)) for k, v in chosen.items() if defaults.get(k) != v}
