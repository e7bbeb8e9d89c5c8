"""eva (Ye et al., 2024): the creator's estimate, sample and mix steps (issue 5 groundwork).

The creator looks at a reward matrix ``R`` of shape ``(prompts, responses)``: for each prompt, the
rewards of ``n`` responses sampled from the current policy. A prompt is *informative* when its
responses differ in reward, since a preference pair built from it (best vs worst) teaches the
solver something. `INFORMATIVENESS` names the metrics, each a non-negative function of one row:

- ``reward_gap`` (the paper's default): ``max(r) - min(r)``;
- ``advantage``: ``max(r) - mean(r)``, how far the best response stands out;
- ``std``: the standard deviation of the row (population, ``ddof=0``);
- ``low_mean``: ``max over prompts of mean(r) - mean(r)``, so that prompts the policy does worst on
  come first;
- ``uniform``: 1 for every prompt (the baseline without a signal).

`select` keeps a fraction of the prompts: ``"sample"`` draws them without replacement with
probability proportional to informativeness (the paper's choice), ``"greedy"`` takes the top ones,
``"uniform"`` ignores informativeness. `mix` adds old prompts to the evolved ones (the paper: 80%
evolved, 20% old).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

INFORMATIVENESS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "reward_gap": lambda r: r.max(axis=1) - r.min(axis=1),
    "advantage": lambda r: r.max(axis=1) - r.mean(axis=1),
    "std": lambda r: r.std(axis=1),
    "low_mean": lambda r: r.mean(axis=1).max() - r.mean(axis=1),
    "uniform": lambda r: np.ones(r.shape[0]),
}
SELECTIONS = ("sample", "greedy", "uniform")


def informativeness(rewards, metric: str = "reward_gap") -> np.ndarray:
    """One non-negative informativeness per prompt (row) of a reward matrix (see the module)."""
    if metric not in INFORMATIVENESS:
        raise ValueError(f"unknown informativeness metric {metric!r}; valid: {', '.join(INFORMATIVENESS)}")
    matrix = np.asarray(rewards, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"rewards must be a non-empty (prompts, responses) matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("rewards must be finite (a NaN or inf reward cannot rank prompts)")
    return INFORMATIVENESS[metric](matrix)


def select(scores: Sequence[float], fraction: float = 0.25, *, how: str = "sample", seed: int = 0) -> np.ndarray:
    """Indices of the prompts kept: ``round(fraction * n)`` of them (at least one), in the order
    drawn (``"sample"``), by decreasing informativeness with ties by index (``"greedy"``), or at
    random (``"uniform"``). Sampling gives every prompt a tiny floor weight, so prompts without any
    reward spread can still be drawn once the informative ones run out."""
    values = np.asarray(scores, dtype=float)
    if how not in SELECTIONS:
        raise ValueError(f"unknown selection {how!r}; valid: {', '.join(SELECTIONS)}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if values.ndim != 1 or values.size == 0 or (values < 0).any() or not np.isfinite(values).all():
        raise ValueError("scores must be a non-empty list of finite, non-negative informativeness values")
    k = max(1, round(fraction * values.size))
    rng = np.random.default_rng(seed)
    if how == "greedy":
        return np.argsort(-values, kind="stable")[:k]
    if how == "uniform":
        return rng.choice(values.size, size=k, replace=False)
    weights = values + 1e-12 * max(values.max(), 1.0)
    return rng.choice(values.size, size=k, replace=False, p=weights / weights.sum())


def mix(evolved: Sequence, old: Sequence, *, evolved_share: float = 0.8, seed: int = 0) -> list:
    """The evolved prompts plus enough old prompts, drawn uniformly without replacement, that the
    evolved ones make up ``evolved_share`` of the result (as far as ``old`` allows)."""
    if not 0 < evolved_share <= 1:
        raise ValueError(f"evolved_share must be in (0, 1], got {evolved_share}")
    wanted = round(len(evolved) * (1 - evolved_share) / evolved_share)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(old), size=min(wanted, len(old)), replace=False) if len(old) else []
    return list(evolved) + [old[i] for i in picked]


__all__ = ["INFORMATIVENESS", "SELECTIONS", "informativeness", "mix", "select"]
