"""Head-to-head outcomes, win rates, and reward-modelling metrics against a gold ranking.

Two families of numbers from the Self-Rewarding paper live here.

**Head-to-head** (model A vs model B on the same prompts). ``win_tie_loss`` compares two lists of
gold scores (e.g. the oracle's quality of each model's response). ``win_tie_loss_both_orders``
combines the verdicts of a pairwise judge asked twice, once with A shown first and once with B
shown first; the paper counts a disagreement between the two orders as a tie. ``win_rate`` turns
outcomes into one number (a tie is worth ``tie_value``) and ``win_rate_ci`` adds a bootstrap
interval over prompts.

**Reward modelling** (how well a judge ranks several responses to the same prompt, compared with a
gold ranking: human ranks in oasst1, the oracle here). The data are in *long* form: one row per
response with a prompt id, a gold score (higher is better) and a judge score (higher is better;
``NaN``/``None`` when the judge's output could not be parsed). Definitions, per prompt unless said
otherwise:

- *pairwise accuracy*: over all pairs of responses to the same prompt whose gold scores differ,
  pooled over prompts, the fraction the judge orders the same way. A pair the judge scores equally
  earns ``tie_credit`` (default 0.5: what a coin-flip tie-break would earn on average; 0 counts
  ties as errors; ``None`` leaves such pairs out and counts them).
- *5-best %*: the paper's reading, "how often the responses the model scores a perfect 5 out of 5
  are the ones humans rank highest": among responses whose judge score is at least ``top_score``
  (5 on the 0-5 rubric), the fraction that are a best response of their prompt by gold score
  (gold ties at the top all count as best). It is a precision; it is ``NaN`` when the judge never
  gives a perfect score. The prompt-level variant, "is the judge's favourite the gold best?", is
  ``best_pick_accuracy``.
- *exact match %*: the fraction of prompts where the judge's ranking of the responses is exactly
  the gold ranking (same order and same ties; a judge tie between responses whose gold scores
  differ breaks the match).
- *Spearman* and *Kendall tau*: rank correlations computed per prompt and averaged over prompts
  (macro average). Ties get average ranks (Spearman) and the tau-b correction (Kendall). A
  correlation is undefined when either ranking is constant; such prompts are skipped and counted
  (or scored 0 with ``constant_judge="zero"``, the stricter choice).

Which prompts are scored: every metric needs at least two responses with at least two distinct gold
scores; other prompts are skipped and counted in ``Metric.skipped``.

Missing judge scores are never silently zero. ``missing="lowest"`` (default) ranks a missing score
below every parsed score of its prompt (and equal to other missing ones), so an unparsable judgment
costs the judge what a very low score would; ``missing="exclude"`` drops those responses first
(which can leave a prompt with too few responses to score). Either way the count of missing scores
is reported.

scipy is not a dependency of the project, so the rank statistics are computed with numpy; prompts
have a handful of responses, so the O(n^2) pair loops are cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from repro.evaluation.stats import Estimate, bootstrap_ci

MissingPolicy = Literal["lowest", "exclude"]
ConstantJudgePolicy = Literal["skip", "zero"]

WIN, TIE, LOSS = 1, 0, -1


# --------------------------------------------------------------------------------------------------
# Head-to-head


@dataclass(frozen=True)
class WinTieLoss:
    """Per-prompt outcomes of model A against model B (+1 A wins, 0 tie, -1 B wins) and their tallies."""

    outcomes: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def wins(self) -> int:
        return sum(1 for o in self.outcomes if o == WIN)

    @property
    def ties(self) -> int:
        return sum(1 for o in self.outcomes if o == TIE)

    @property
    def losses(self) -> int:
        return sum(1 for o in self.outcomes if o == LOSS)

    @property
    def win(self) -> float:
        """Fraction of prompts A wins (NaN when there are no prompts)."""
        return self.wins / self.n if self.n else float("nan")

    @property
    def tie(self) -> float:
        return self.ties / self.n if self.n else float("nan")

    @property
    def loss(self) -> float:
        return self.losses / self.n if self.n else float("nan")

    def as_dict(self) -> dict[str, float]:
        """Counts and fractions, e.g. for one row of a results table."""
        return {"n": self.n, "wins": self.wins, "ties": self.ties, "losses": self.losses,
                "win": self.win, "tie": self.tie, "loss": self.loss}

    def __str__(self) -> str:
        return f"{100 * self.win:.1f} / {100 * self.tie:.1f} / {100 * self.loss:.1f} (n={self.n})"


def _as_float_array(values: Iterable[float | None], name: str) -> np.ndarray:
    """A 1-d float array; ``None`` becomes NaN. Raises ``ValueError`` naming ``name`` otherwise."""
    values = list(values)
    try:
        return np.array([np.nan if v is None else v for v in values], dtype=float).reshape(len(values))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a flat sequence of numbers ({exc})") from None


def win_tie_loss(scores_a: Sequence[float], scores_b: Sequence[float]) -> WinTieLoss:
    """Compare two models prompt by prompt from gold scores of their responses.

    ``scores_a[i]`` and ``scores_b[i]`` are the gold scores of A's and B's responses to prompt ``i``;
    the higher score wins and equal scores tie. Raises ``ValueError`` if the lengths differ or a
    score is missing (NaN/None): a gold score must exist for every response.
    """
    a = _as_float_array(scores_a, "scores_a")
    b = _as_float_array(scores_b, "scores_b")
    if a.shape != b.shape:
        raise ValueError(f"win_tie_loss: {a.size} scores for A but {b.size} for B")
    bad = np.flatnonzero(np.isnan(a) | np.isnan(b))
    if bad.size:
        raise ValueError(f"win_tie_loss: missing gold score at prompt index {int(bad[0])}")
    return WinTieLoss(tuple(int(s) for s in np.sign(a - b)))


def _check_verdicts(values: Sequence[int], name: str) -> list[int]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or v not in (WIN, TIE, LOSS):
            raise ValueError(f"{name}[{i}] = {v!r}: a verdict must be +1 (A wins), 0 (tie) or -1 (B wins)")
        out.append(int(v))
    return out


def win_tie_loss_both_orders(pref_ab: Sequence[int], pref_ba: Sequence[int]) -> WinTieLoss:
    """Combine a pairwise judge's verdicts from both presentation orders, disagreement = tie.

    ``pref_ab[i]`` is the verdict on prompt ``i`` with A's response shown first, ``pref_ba[i]`` the
    verdict with B's shown first; both are written from A's point of view (+1 A better, 0 tie,
    -1 B better), so a judge without position bias gives equal values. A prompt is a win only if
    both orders say A, a loss only if both say B; anything else (opposite verdicts, or a tie in
    either order) is a tie.
    """
    ab = _check_verdicts(pref_ab, "pref_ab")
    ba = _check_verdicts(pref_ba, "pref_ba")
    if len(ab) != len(ba):
        raise ValueError(f"win_tie_loss_both_orders: {len(ab)} verdicts in A-first order but {len(ba)} in B-first")
    return WinTieLoss(tuple(x if x == y and x != TIE else TIE for x, y in zip(ab, ba)))


def _points(outcomes: WinTieLoss | Sequence[int], tie_value: float) -> np.ndarray:
    if not 0.0 <= tie_value <= 1.0:
        raise ValueError(f"tie_value must lie in [0, 1], got {tie_value}")
    values = outcomes.outcomes if isinstance(outcomes, WinTieLoss) else _check_verdicts(outcomes, "outcomes")
    table = {WIN: 1.0, TIE: tie_value, LOSS: 0.0}
    return np.array([table[o] for o in values], dtype=float)


def win_rate(outcomes: WinTieLoss | Sequence[int], tie_value: float = 0.5) -> float:
    """Mean points of A per prompt: a win is 1, a tie ``tie_value`` (default half), a loss 0.

    ``outcomes`` is a ``WinTieLoss`` or a sequence of +1/0/-1. Returns NaN for no prompts.
    """
    points = _points(outcomes, tie_value)
    return float(points.mean()) if points.size else float("nan")


def win_rate_ci(
    outcomes: WinTieLoss | Sequence[int],
    tie_value: float = 0.5,
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """``win_rate`` with a percentile bootstrap interval over prompts (``repro.evaluation.stats``)."""
    return bootstrap_ci(_points(outcomes, tie_value), level=level, n_resamples=n_resamples, seed=seed)


# --------------------------------------------------------------------------------------------------
# Reward modelling against a gold ranking


@dataclass(frozen=True)
class Metric:
    """One reward-modelling metric.

    ``value`` is NaN when nothing could be scored. ``n`` counts the units the value averages over
    (pairs for pairwise accuracy, responses with a perfect judge score for 5-best, prompts for the
    rest); ``skipped`` counts the units left out (prompts, or judge-tied pairs when
    ``tie_credit=None``).
    """

    value: float
    n: int
    skipped: int = 0


@dataclass(frozen=True)
class _Prompt:
    """The responses to one prompt after the missing-score policy: gold and judge, aligned."""

    gold: np.ndarray
    judge: np.ndarray  # missing scores already replaced (-inf) or dropped
    judge_raw: np.ndarray  # as given, NaN where missing


def _check_missing(missing: str) -> None:
    if missing not in ("lowest", "exclude"):
        raise ValueError(f"missing must be 'lowest' or 'exclude', got {missing!r}")


def _group(gold, judge, prompt_ids, missing: MissingPolicy) -> tuple[list[_Prompt], int]:
    """Split long-form columns into prompts (in first-seen order); also return the missing count."""
    _check_missing(missing)
    g = _as_float_array(gold, "gold")
    j = _as_float_array(judge, "judge")
    ids = list(prompt_ids)
    if not (g.size == j.size == len(ids)):
        raise ValueError(f"gold ({g.size}), judge ({j.size}) and prompt_ids ({len(ids)}) differ in length")
    bad = np.flatnonzero(np.isnan(g))
    if bad.size:
        raise ValueError(f"gold score missing for prompt {ids[int(bad[0])]!r} (row {int(bad[0])})")
    rows: dict[object, list[int]] = {}
    for i, pid in enumerate(ids):
        rows.setdefault(pid, []).append(i)
    prompts = []
    for idx in rows.values():
        pg, pj = g[idx], j[idx]
        lost = np.isnan(pj)
        if missing == "exclude":
            prompts.append(_Prompt(pg[~lost], pj[~lost], pj[~lost]))
        else:
            prompts.append(_Prompt(pg, np.where(lost, -np.inf, pj), pj))
    return prompts, int(np.isnan(j).sum())


def _scorable(p: _Prompt) -> bool:
    """At least two responses with at least two distinct gold scores."""
    return p.gold.size >= 2 and np.unique(p.gold).size >= 2


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (works with -inf)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return (starts + (counts + 1) / 2.0)[inverse]


def _pair_signs(x: np.ndarray) -> np.ndarray:
    """sign(x_i - x_j) for every pair i < j (computed on ranks, so -inf is safe)."""
    r = _average_ranks(x)
    i, j = np.triu_indices(r.size, k=1)
    return np.sign(r[i] - r[j])


def pairwise_accuracy(
    gold: Sequence[float],
    judge: Sequence[float | None],
    prompt_ids: Sequence[object],
    *,
    tie_credit: float | None = 0.5,
    missing: MissingPolicy = "lowest",
) -> Metric:
    """Fraction of gold-ordered pairs (same prompt, different gold scores) the judge orders alike.

    Pairs are pooled over prompts. A judge tie earns ``tie_credit`` (0.5 by default, 0 to count it as
    an error); with ``tie_credit=None`` judge-tied pairs are left out and counted in ``skipped``.
    ``n`` is the number of pairs counted. Prompts without a gold-ordered pair contribute nothing.
    """
    if tie_credit is not None and not 0.0 <= tie_credit <= 1.0:
        raise ValueError(f"tie_credit must lie in [0, 1] or be None, got {tie_credit}")
    prompts, _ = _group(gold, judge, prompt_ids, missing)
    earned, counted, tied = 0.0, 0, 0
    for p in prompts:
        if p.gold.size < 2:
            continue
        sg, sj = _pair_signs(p.gold), _pair_signs(p.judge)
        ordered = sg != 0
        agree = int(np.sum(ordered & (sg == sj)))
        ties = int(np.sum(ordered & (sj == 0)))
        if tie_credit is None:
            earned += agree
            counted += int(ordered.sum()) - ties
            tied += ties
        else:
            earned += agree + tie_credit * ties
            counted += int(ordered.sum())
    return Metric(earned / counted if counted else float("nan"), counted, tied)


def five_best_pct(
    gold: Sequence[float],
    judge: Sequence[float | None],
    prompt_ids: Sequence[object],
    *,
    top_score: float = 5.0,
    missing: MissingPolicy = "lowest",
) -> Metric:
    """Of the responses the judge gives a perfect score (``>= top_score``), the fraction that are a
    gold-best response of their prompt.

    Only prompts with at least two distinct gold scores take part (elsewhere every response is
    trivially "best"); ``skipped`` counts the other prompts. ``n`` is the number of perfect-scored
    responses; the value is NaN when there are none. Missing judge scores are never perfect.
    """
    prompts, _ = _group(gold, judge, prompt_ids, missing)
    hits, perfect, skipped = 0, 0, 0
    for p in prompts:
        if not _scorable(p):
            skipped += 1
            continue
        top = p.judge_raw >= top_score  # NaN (missing) compares False
        perfect += int(top.sum())
        hits += int(np.sum(top & (p.gold == p.gold.max())))
    return Metric(hits / perfect if perfect else float("nan"), perfect, skipped)


def best_pick_accuracy(
    gold: Sequence[float],
    judge: Sequence[float | None],
    prompt_ids: Sequence[object],
    *,
    missing: MissingPolicy = "lowest",
) -> Metric:
    """Per prompt, is the judge's highest-scored response a gold-best one? Averaged over prompts.

    When several responses share the judge's top score, the prompt earns the fraction of them that
    are gold-best (the expected result of breaking the tie at random). ``n`` counts scored prompts.
    """
    prompts, _ = _group(gold, judge, prompt_ids, missing)
    return _mean_over_prompts(prompts, lambda p: float(np.mean(p.gold[p.judge == p.judge.max()] == p.gold.max())))


def exact_match_pct(
    gold: Sequence[float],
    judge: Sequence[float | None],
    prompt_ids: Sequence[object],
    *,
    missing: MissingPolicy = "lowest",
) -> Metric:
    """Fraction of prompts whose judge ranking equals the gold ranking exactly (order and ties)."""
    prompts, _ = _group(gold, judge, prompt_ids, missing)
    return _mean_over_prompts(prompts, lambda p: float(np.array_equal(_pair_signs(p.gold), _pair_signs(p.judge))))


def _mean_over_prompts(prompts, score_one) -> Metric:
    """The mean of ``score_one(prompt)`` over scorable prompts; prompts that are not scorable, or for
    which ``score_one`` returns None, are counted as skipped."""
    values, skipped = [], 0
    for p in prompts:
        value = score_one(p) if _scorable(p) else None
        if value is None:
            skipped += 1
        else:
            values.append(value)
    return Metric(float(np.mean(values)) if values else float("nan"), len(values), skipped)


def _spearman_one(g: np.ndarray, j: np.ndarray) -> float:
    rg, rj = _average_ranks(g), _average_ranks(j)
    rg, rj = rg - rg.mean(), rj - rj.mean()
    return float(np.sum(rg * rj) / np.sqrt(np.sum(rg**2) * np.sum(rj**2)))


def _kendall_one(g: np.ndarray, j: np.ndarray) -> float:
    sg, sj = _pair_signs(g), _pair_signs(j)
    return float(np.sum(sg * sj) / np.sqrt(np.sum(sg**2) * np.sum(sj**2)))


def _mean_correlation(gold, judge, prompt_ids, one, missing, constant_judge) -> Metric:
    if constant_judge not in ("skip", "zero"):
        raise ValueError(f"constant_judge must be 'skip' or 'zero', got {constant_judge!r}")
    prompts, _ = _group(gold, judge, prompt_ids, missing)

    def score_one(p):
        if np.unique(p.judge).size < 2:  # a constant judge has no ranking to correlate
            return 0.0 if constant_judge == "zero" else None
        return one(p.gold, p.judge)

    return _mean_over_prompts(prompts, score_one)


def spearman(
    gold: Sequence[float],
    judge: Sequence[float | None],
    prompt_ids: Sequence[object],
    *,
    missing: MissingPolicy = "lowest",
    constant_judge: ConstantJudgePolicy = "skip",
) -> Metric:
    """Spearman rank correlation between gold and judge per prompt, averaged over prompts.

    Prompts where the gold or the judge scores are all equal have no correlation: they are skipped
    (``constant_judge="skip"``) or, for a constant judge, scored 0 (``"zero"``).
    """
    return _mean_correlation(gold, judge, prompt_ids, _spearman_one, missing, constant_judge)


def kendall_tau(
    gold: Sequence[float],
    judge: Sequence[float | None],
    prompt_ids: Sequence[object],
    *,
    missing: MissingPolicy = "lowest",
    constant_judge: ConstantJudgePolicy = "skip",
) -> Metric:
    """Kendall's tau-b between gold and judge per prompt, averaged over prompts (skips as ``spearman``)."""
    return _mean_correlation(gold, judge, prompt_ids, _kendall_one, missing, constant_judge)


@dataclass(frozen=True)
class RewardModelReport:
    """All reward-modelling metrics of one judge on one evaluation set, with the counts behind them."""

    pairwise_accuracy: Metric
    five_best: Metric
    best_pick: Metric
    exact_match: Metric
    spearman: Metric
    kendall_tau: Metric
    n_prompts: int
    n_responses: int
    n_missing_judge: int
    missing: str

    def as_dict(self) -> dict[str, float | int | str]:
        """A flat dict: each metric's value, plus ``<metric>_n`` / ``<metric>_skipped`` and the counts."""
        out: dict[str, float | int | str] = {}
        for name in ("pairwise_accuracy", "five_best", "best_pick", "exact_match", "spearman", "kendall_tau"):
            metric: Metric = getattr(self, name)
            out[name] = metric.value
            out[f"{name}_n"] = metric.n
            out[f"{name}_skipped"] = metric.skipped
        out.update(n_prompts=self.n_prompts, n_responses=self.n_responses,
                   n_missing_judge=self.n_missing_judge, missing=self.missing)
        return out


REPORT_COLUMNS = ("prompt_id", "response_id", "gold", "judge")


def reward_model_report(
    frame,
    *,
    tie_credit: float | None = 0.5,
    top_score: float = 5.0,
    missing: MissingPolicy = "lowest",
    constant_judge: ConstantJudgePolicy = "skip",
) -> RewardModelReport:
    """Every reward-modelling metric from a long DataFrame with columns ``prompt_id``,
    ``response_id``, ``gold`` and ``judge`` (one row per response; ``judge`` NaN/None when the
    judge's score could not be parsed). Raises ``ValueError`` for missing columns, a repeated
    (prompt_id, response_id) pair or a missing gold score. Options as in the single metrics.
    """
    absent = [c for c in REPORT_COLUMNS if c not in frame.columns]
    if absent:
        raise ValueError(f"reward_model_report: frame lacks column(s) {absent}; expected {list(REPORT_COLUMNS)}")
    duplicated = frame.duplicated(subset=["prompt_id", "response_id"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise ValueError(f"reward_model_report: response {row['response_id']!r} of prompt "
                         f"{row['prompt_id']!r} appears more than once")
    gold = frame["gold"].astype(float).to_numpy()
    judge = frame["judge"].astype(float).to_numpy()  # None -> NaN
    ids = frame["prompt_id"].tolist()
    args = (gold, judge, ids)
    return RewardModelReport(
        pairwise_accuracy=pairwise_accuracy(*args, tie_credit=tie_credit, missing=missing),
        five_best=five_best_pct(*args, top_score=top_score, missing=missing),
        best_pick=best_pick_accuracy(*args, missing=missing),
        exact_match=exact_match_pct(*args, missing=missing),
        spearman=spearman(*args, missing=missing, constant_judge=constant_judge),
        kendall_tau=kendall_tau(*args, missing=missing, constant_judge=constant_judge),
        n_prompts=len(set(ids)),
        n_responses=len(frame),
        n_missing_judge=int(np.isnan(judge).sum()),
        missing=missing,
    )


__all__ = [
    "Metric", "RewardModelReport", "WinTieLoss", "best_pick_accuracy", "exact_match_pct",
    "five_best_pct", "kendall_tau", "pairwise_accuracy", "reward_model_report", "spearman",
    "win_rate", "win_rate_ci", "win_tie_loss", "win_tie_loss_both_orders",
]
