"""Confidence intervals for the numbers the book reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval."""

    value: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.low:.3g}, {self.high:.3g}]"

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}value": self.value, f"{prefix}low": self.low, f"{prefix}high": self.high,
                f"{prefix}n": self.n}


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap interval of ``statistic`` over the items in ``values`` (resampled with
    replacement, ``n_resamples`` times, with a fixed seed so the interval is reproducible)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    point = float(statistic(data))
    if data.size == 1:
        return Estimate(point, point, point, 1, level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(n_resamples, data.size))
    stats = np.apply_along_axis(statistic, 1, data[idx]) if statistic is not np.mean else data[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Estimate(point, float(low), float(high), int(data.size), level)


def seed_ci(values: Sequence[float] | np.ndarray, *, level: float = 0.95,
            bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean over seeds with a Student-t interval: ``mean +- t(level, n-1) * sd / sqrt(n)``.

    Each value is one seed's result (a whole run). With so few seeds a bootstrap over them would be
    far too narrow, so the exact t interval is used; it assumes roughly normal seed-to-seed
    variation. NaN values (a seed where the metric is undefined) are dropped and ``n`` counts the
    rest. One value gives a zero-width interval; none gives NaNs. ``bounds``: the range the quantity
    can take (``(0, 1)`` for a share); the interval is cut to it, as the t interval knows no range.
    """
    from scipy import stats

    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if data.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, level)
    point = float(data.mean())
    if data.size == 1:
        return Estimate(point, point, point, 1, level)
    half = float(stats.t.ppf((1 + level) / 2, data.size - 1) * data.std(ddof=1) / np.sqrt(data.size))
    low, high = point - half, point + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Estimate(point, low, high, int(data.size), level)


def verdict(estimate: Estimate, null: float, *, expect: str = "greater") -> str:
    """The written rule that turns a measurement over seeds into a verdict on a paper's claim.

    ``expect="greater"`` (or ``"less"``): the paper found the value above (below) ``null``. It is
    "reproduced" when the 95% interval lies entirely on that side, "opposite" when it lies entirely
    on the other side, and otherwise "not reproduced at this scale" (the seeds cannot tell it from
    no difference). ``expect="equal"``: the paper found no difference; "reproduced" when the interval
    contains ``null``, else "not reproduced at this scale" (a weak test with few seeds: a wide
    interval passes it). A NaN estimate or a single seed: "not testable".
    """
    if expect not in ("greater", "less", "equal"):
        raise ValueError(f"expect must be 'greater', 'less' or 'equal', got {expect!r}")
    if estimate.n < 2 or np.isnan(estimate.value):
        return "not testable"
    if expect == "equal":
        return "reproduced" if estimate.low <= null <= estimate.high else "not reproduced at this scale"
    above, below = estimate.low > null, estimate.high < null
    if expect == "less":
        above, below = below, above
    return "reproduced" if above else "opposite" if below else "not reproduced at this scale"
