"""Work sized to the statistics: how many seeds an interval over seeds needs (``sizing:`` in ``reported.yaml``).

A claim measured over seeds takes one value per seed, a whole run, and reports the mean with a Student-t
interval (`repro.evaluation.stats.seed_ci`). Its half-width is ``t(0.975, S - 1) * sd / sqrt(S)``. Two kinds
of noise make up the seed-to-seed variance:

- **training** (variance ``sigma_T^2``): another seed trains another model;
- **evaluation** (``sigma_E^2``): the same model, evaluated again, samples other responses. Every seed reads
  the same evaluation prompts, so the prompts themselves add nothing: the intervals are conditional on the
  evaluation set. ``sigma_E^2`` shrinks as ``1 / f`` when the evaluation grows ``f``-fold (more prompts or
  more samples per prompt).

The predicted half-width of a design with ``S`` seeds and evaluation scale ``f`` is therefore
``t(0.975, S - 1) * sqrt((sigma_T^2 + sigma_E^2 / f) / S)``.

Both come from **development data**, never from a claim's held-out result:

- ``sigma_T^2 + sigma_E^2``: the seed variance of a development sweep's metric, pooled over its settings
  (`components`). A sweep of 12 settings x 3 seeds gives 24 degrees of freedom where one setting gives 2.
- ``sigma_E^2``: per run, the variance of the metric when each prompt's samples are drawn again from the
  run's own samples, the prompts fixed (`evaluation_variance`).

`seeds_needed` applies the rule: the fewest seeds whose predicted half-width, at the evaluation size the
study uses, is at most the target written in ``reported.yaml``. The prediction uses the point estimates of
the variances; it is a plan, not a guarantee, and the chapter shows the measured intervals beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from repro.errors import ReproError
from repro.evaluation import reported

#: Seeds the design table considers: a t interval needs 2; beyond 10 a chapter costs too much to matter here.
SEED_RANGE = tuple(range(2, 11))
#: Evaluation sizes the design table shows, as multiples of the study's own.
SCALES = (0.5, 1.0, 2.0, 4.0)


class SizingError(ReproError):
    """A ``sizing:`` entry is missing or malformed, or the data given to it cannot be sized."""


def entry(entry_id: str) -> dict[str, Any]:
    """One ``sizing:`` entry of ``reported.yaml``."""
    return reported.entry("sizing", entry_id, SizingError)


def _ragged(frame: pd.DataFrame, unit: str, value: str) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """A frame of (unit, value) rows as a padded matrix: units x most samples, NaN past each unit's count,
    and each unit's count of readable values."""
    frame = frame[[unit, value]].dropna(subset=[value])
    groups = frame.groupby(unit, sort=True)[value]
    counts = groups.size()
    matrix = np.full((len(counts), int(counts.max()) if len(counts) else 0), np.nan)
    rank = groups.cumcount().to_numpy()
    row = counts.index.get_indexer(frame[unit])
    matrix[row, rank] = frame[value].to_numpy(dtype=float)
    return counts.index, matrix, counts.to_numpy()


def _resampled_means(matrix: np.ndarray, counts: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``resamples`` x units: each unit's mean over its own values drawn again with replacement."""
    draws = np.floor(rng.random((resamples, *matrix.shape)) * counts[None, :, None]).astype(int)
    taken = np.take_along_axis(np.broadcast_to(matrix, draws.shape), draws, axis=2)
    used = np.arange(matrix.shape[1])[None, None, :] < counts[None, :, None]
    return np.where(used, taken, 0.0).sum(axis=2) / counts[None, :]


def _win_rate_of_means(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Win rate of A over B per row of unit means (a win 1, a tie half, a loss 0), as the head-to-head reads
    two models (`repro.evaluation.metrics.win_tie_loss` on the per-prompt mean gold scores)."""
    sign = np.sign(a - b)
    return (sign > 0).mean(axis=-1) + 0.5 * (sign == 0).mean(axis=-1)


def evaluation_variance(responses_a: pd.DataFrame, responses_b: pd.DataFrame, *, unit: str = "prompt_id",
                        value: str = "oracle", resamples: int = 1000, seed: int = 0) -> float:
    """The variance of A's win rate over B that comes from sampling responses, the prompts held fixed.

    Each model's responses (rows of ``unit`` and ``value``, several samples per unit) are drawn again with
    replacement within each unit, A's and B's independently, ``resamples`` times, and the win rate of the
    per-unit means (ties half) is recomputed. A plain bootstrap of ``k`` samples understates the variance of
    their mean by ``(k - 1) / k``; the result is scaled up by ``k / (k - 1)``, with ``k`` the median samples
    per unit. Units that either model lacks are left out, as the head-to-head leaves them out.
    Raises `SizingError` when a unit has fewer than 2 samples in the median (nothing to resample) or the two
    models share no unit.
    """
    units_a, matrix_a, counts_a = _ragged(responses_a, unit, value)
    units_b, matrix_b, counts_b = _ragged(responses_b, unit, value)
    common = units_a.intersection(units_b)
    if common.empty:
        raise SizingError("evaluation_variance: the two models share no evaluation unit")
    ia, ib = units_a.get_indexer(common), units_b.get_indexer(common)
    matrix_a, counts_a, matrix_b, counts_b = matrix_a[ia], counts_a[ia], matrix_b[ib], counts_b[ib]
    k = float(np.median(np.concatenate([counts_a, counts_b])))
    if k < 2:
        raise SizingError(f"evaluation_variance needs several samples per {unit}; the median is {k:g}")
    rng = np.random.default_rng(seed)
    rates = _win_rate_of_means(_resampled_means(matrix_a, counts_a, resamples, rng),
                               _resampled_means(matrix_b, counts_b, resamples, rng))
    return float(rates.var(ddof=1) * k / (k - 1))


@dataclass(frozen=True)
class Components:
    """The seed variance of a metric and its evaluation part.

    Attributes:
        seed_var: the variance over seeds, pooled over settings (training and evaluation noise together).
        df: its degrees of freedom (runs minus settings).
        eval_var: the mean, over runs, of the evaluation variance at the study's evaluation size.
        settings: how many settings were pooled.
    """

    seed_var: float
    df: int
    eval_var: float
    settings: int

    @property
    def train_var(self) -> float:
        """The training part: what the seed variance leaves after the evaluation noise (never below 0)."""
        return max(self.seed_var - self.eval_var, 0.0)

    @property
    def eval_share(self) -> float:
        """The share of the seed variance that evaluation noise explains (at most 1)."""
        return min(self.eval_var / self.seed_var, 1.0) if self.seed_var > 0 else float("nan")

    def half_width(self, seeds: int, scale: float = 1.0, level: float = 0.95) -> float:
        """The predicted half-width of the t interval over ``seeds`` seeds with the evaluation ``scale`` times
        the study's (``2`` = twice the prompts or samples)."""
        from scipy import stats

        if seeds < 2:
            raise SizingError(f"a t interval needs at least 2 seeds, got {seeds}")
        if scale <= 0:
            raise SizingError(f"the evaluation scale must be positive, got {scale}")
        spread = np.sqrt((self.train_var + min(self.eval_var, self.seed_var) / scale) / seeds)
        return float(stats.t.ppf((1 + level) / 2, seeds - 1) * spread)


def components(results: pd.DataFrame, keys: Sequence[str], metric: str, noise: str) -> Components:
    """The `Components` of ``metric`` in a sweep's per-run ``results``: one row per (setting, seed), the
    settings named by the ``keys`` columns, and each run's evaluation variance in the ``noise`` column.

    The seed variance is pooled over settings, weighting each by its degrees of freedom (its seeds minus
    one); a setting with one seed adds nothing. Raises `SizingError` when a column is missing or no setting
    has two seeds.
    """
    missing = [c for c in (*keys, metric, noise, "seed") if c not in results.columns]
    if missing:
        raise SizingError(f"the sweep's results have no column {', '.join(missing)}")
    data = results.dropna(subset=[metric])
    grouped = data.groupby(list(keys), sort=False)[metric]
    sizes, variances = grouped.size(), grouped.var(ddof=1)
    usable = sizes >= 2
    df = int((sizes[usable] - 1).sum())
    if df == 0:
        raise SizingError("no setting of the sweep has two seeds: its seed variance cannot be measured")
    seed_var = float(((sizes[usable] - 1) * variances[usable]).sum() / df)
    return Components(seed_var=seed_var, df=df, eval_var=float(data[noise].mean()), settings=int(usable.sum()))


def designs(parts: Components, *, seeds: Iterable[int] = SEED_RANGE, scales: Iterable[float] = SCALES,
            target: float | None = None, level: float = 0.95) -> pd.DataFrame:
    """The predicted half-width of every (seeds, evaluation scale) design, and whether it meets ``target``."""
    rows = [{"seeds": s, "scale": f, "half_width": parts.half_width(s, f, level)} for s in seeds for f in scales]
    table = pd.DataFrame(rows)
    if target is not None:
        table["meets"] = table.half_width <= target
    return table


def seeds_needed(parts: Components, target: float, *, scale: float = 1.0, seeds: Iterable[int] = SEED_RANGE,
                 level: float = 0.95) -> int | None:
    """The rule: the fewest seeds whose predicted half-width at evaluation ``scale`` is at most ``target``;
    None when no number of seeds in ``seeds`` reaches it."""
    if target <= 0:
        raise SizingError(f"the target half-width must be positive, got {target}")
    for s in sorted(seeds):
        if parts.half_width(s, scale, level) <= target:
            return s
    return None


@dataclass(frozen=True)
class Plan:
    """A chapter's seeds against the rule of a ``sizing:`` entry.

    Attributes:
        parts: the measured variances.
        target: the entry's target half-width.
        needed: the seeds the rule asks for (None: no number of seeds in `SEED_RANGE` reaches the target).
        current: the seeds the chapter runs now (its ``parameter``'s default).
        table: `designs` over seeds and evaluation scales.
    """

    parts: Components
    target: float
    needed: int | None
    current: int
    table: pd.DataFrame

    @property
    def current_half_width(self) -> float:
        """The predicted half-width of the chapter's own design (NaN below two seeds)."""
        return self.parts.half_width(self.current) if self.current >= 2 else float("nan")

    @property
    def agrees(self) -> bool:
        """The chapter runs exactly the seeds the rule asks for: not fewer (its intervals would miss the
        target) and not more (it would compute what its intervals do not need)."""
        return self.needed == self.current


def plan(results: pd.DataFrame, keys: Sequence[str], rule: dict[str, Any], current_seeds: int) -> Plan:
    """Apply the ``sizing:`` entry ``rule`` to a development sweep's per-run ``results`` (settings in the
    ``keys`` columns) for a chapter that runs ``current_seeds`` seeds."""
    parts = components(results, keys, rule["metric"], rule["noise"])
    target = float(rule["half_width"])
    return Plan(parts=parts, target=target, needed=seeds_needed(parts, target), current=int(current_seeds),
                table=designs(parts, target=target))
