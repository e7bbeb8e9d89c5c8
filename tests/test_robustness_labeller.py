"""The RLAIF labeller's read-outs when a real model gives no probabilities (NaN, -inf, +inf rows):
unreadable pairs are counted, never taken for position bias; one unreadable swapped read does not
drop the position-bias figures; d-RLAIF gives unreadable read-outs a defined reward, never NaN.

Time is bounded by hypothesis deadlines (generous: each example is array arithmetic on a few rows).
"""

import math
from collections import Counter
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.judges import labeller as lb
from repro.studies.rlaif import stages as rl
from repro.studies.rlaif import study

TIMED = settings(max_examples=150, deadline=timedelta(seconds=2))
UNREADABLE_ROWS = [[math.nan, math.nan], [-math.inf, -math.inf], [math.inf, 0.0], [math.nan, -1.0],
                   [math.inf, math.inf]]


class Rows:
    """A generator whose read-outs are given row by row (in call order: the A, B reads, then B, A)."""

    def __init__(self, rows):
        self.rows, self.calls = [list(r) for r in rows], 0

    def score_next_token_logprobs(self, prompts, candidates, batch_size=None):
        out = []
        for _ in prompts:
            row = self.rows[self.calls % len(self.rows)]
            out.append(row if len(row) == len(candidates) else [row[0]] * len(candidates))
            self.calls += 1
        return np.array(out, dtype=float)

    def generate(self, prompts, config):
        return [["because"] * config.n for _ in prompts]


def pairs(n):
    return [(f"text {i}", f"summary a {i}", f"summary b {i}") for i in range(n)]


readable_row = st.tuples(st.floats(-30, 0), st.floats(-30, 0)).map(list)
any_row = st.one_of(readable_row, st.sampled_from(UNREADABLE_ROWS))


def test_one_unreadable_swapped_read_keeps_the_position_figures():
    # pairs 0-2: the first position wins in both orders; pair 3: the swapped read is unreadable
    first, second = [0.0, -3.0], [-3.0, 0.0]
    frame = lb.label_pairs(Rows([first, first, first, second, first, first, first, [math.nan, math.nan]]),
                           pairs(4)).frame
    assert frame.same_position.tolist()[:3] == [True, True, True] and frame.same_position.isna().tolist()[3]
    assert frame.label.tolist() == [0, 0, 0, -1]
    m = rl.alignment_metrics(frame.assign(choice=[0, 0, 0, 0]))
    assert m["unreadable"] == 1 and m["same_position_unreadable"] == 1
    assert m["same_position"] == 1.0 and m["same_position_first"] == 1.0 and m["same_position_second"] == 0.0
    assert m["alignment"] == pytest.approx(3 / 4)  # the unreadable pair is not aligned


def test_an_unreadable_pair_is_not_aligned_whichever_summary_the_human_chose():
    frame = lb.label_pairs(Rows([[math.nan, math.nan]]), pairs(2)).frame
    m = rl.alignment_metrics(frame.assign(choice=[0, 1]))
    assert m["unreadable"] == 2 and m["alignment"] == 0.0 and m["alignment_one_order"] == 0.0
    assert "same_position" not in m  # no swapped read-out at all: no figure (and no NaN in the results)


def test_frames_written_before_the_fix_are_read_right():
    # older labels.parquet files mark an unreadable pair as the same position
    frame = pd.DataFrame({"p_ab": [0.9, 0.9, math.nan], "p_ba": [0.1, 0.9, math.nan], "choice": [0, 0, 0]})
    frame["p_a"] = (frame.p_ab + frame.p_ba) / 2
    frame["same_position"] = [True, False, True]
    assert lb.same_position(frame).tolist()[:2] == [1.0, 0.0] and math.isnan(lb.same_position(frame)[2])
    m = rl.alignment_metrics(frame)
    assert m["same_position"] == 0.5 and m["same_position_unreadable"] == 1


@TIMED
@given(rows=st.lists(st.tuples(any_row, any_row), min_size=1, max_size=12), data=st.data())
def test_position_figures_are_shares_of_the_readable_pairs(rows, data):
    n = len(rows)
    frame = lb.label_pairs(Rows([ab for ab, _ in rows] + [ba for _, ba in rows]), pairs(n)).frame
    choice = data.draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
    both = frame.p_ab.notna() & frame.p_ba.notna()
    assert (frame.same_position.isna() == ~both).all()  # never a position reading without both orders
    assert ((frame.label == -1) == ~both).all()
    m = rl.alignment_metrics(frame.assign(choice=choice))
    assert m["unreadable"] == int((~both).sum())
    if frame.p_ba.notna().any():
        assert m["same_position_unreadable"] == int((~both).sum())
    if both.any():
        same = frame.same_position[both].astype(bool)
        assert m["same_position"] == pytest.approx(float(same.mean()))
        assert m["same_position_first"] + m["same_position_second"] == pytest.approx(m["same_position"])
    else:
        assert "same_position" not in m
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in m.values())
    assert 0 <= m["alignment"] <= float(both.mean())  # an unreadable pair is never aligned


@TIMED
@given(rows=st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-40, 0)),
                              min_size=10, max_size=10), min_size=1, max_size=8))
def test_direct_scores_are_always_rewards_in_range_and_unreadable_ones_are_counted(rows):
    tally = Counter()
    scores = lb.direct_scores(Rows(rows), [(f"t{i}", "s") for i in range(len(rows))], tally=tally)
    assert scores.shape == (len(rows),) and np.all(np.isfinite(scores)) and np.all(np.abs(scores) <= 1 + 1e-12)
    array = np.array(rows, dtype=float)
    with np.errstate(invalid="ignore"):
        unreadable = ~np.isfinite(np.exp(array - array.max(axis=1, keepdims=True)).sum(axis=1))
    assert tally == Counter(scored=len(rows), unreadable=int(unreadable.sum()))
    assert lb.UNREADABLE_REWARD == -1.0 and np.all(scores[unreadable] == lb.UNREADABLE_REWARD)


def test_direct_scores_of_unreadable_read_outs_are_the_lowest_reward():
    rows = [[0.0] * 10, [math.nan] * 10, [-math.inf] * 10, [0.0] * 9 + [50.0]]
    tally = Counter()
    scores = lb.direct_scores(Rows(rows), [("t", "s")] * 4, tally=tally)
    assert scores.tolist() == pytest.approx([0.0, -1.0, -1.0, 1.0])
    assert tally == Counter(scored=4, unreadable=2)
    assert lb.direct_scores(Rows(rows), [("t", "s")] * 4).tolist() == pytest.approx(scores.tolist())


def _runs(tmp_path, cells):
    rows = []
    for (labeller, code), frame in cells.items():
        folder = tmp_path / f"{labeller}-{code.replace('/', '_')}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "labels.parquet")
        rows.append({"labeller": labeller, "technique": code, "name": rl.Technique.parse(code).name, "seed": 0,
                     "stage": folder, "pairs_per_second": 10.0})
    return pd.DataFrame(rows)


def test_the_alignment_table_and_findings_leave_unreadable_pairs_out_of_position_bias(tmp_path):
    n = 40
    first, second, nan = [0.0, -3.0], [-3.0, 0.0], [math.nan, math.nan]
    # S reads content (never the same position); XS always picks the first position, and a quarter of
    # its swapped reads are unreadable
    s_frame = lb.label_pairs(Rows([first] * n + [second] * n), pairs(n)).frame
    xs_frame = lb.label_pairs(Rows([first] * n + [first] * (3 * n // 4) + [nan] * (n // 4)), pairs(n)).frame
    cells = {("S", "detailed+cot/0"): s_frame.assign(choice=0, id=range(n)),
             ("XS", "detailed+cot/0"): xs_frame.assign(choice=0, id=range(n))}
    runs = _runs(tmp_path, cells)
    table = study.alignment_table(runs).set_index("labeller")
    assert table.loc["XS", "same_position"] == 1.0 and table.loc["XS", "same_position_first"] == 1.0
    assert table.loc["XS", "unreadable"] == n // 4 and table.loc["S", "unreadable"] == 0
    assert table.loc["S", "same_position"] == 0.0
    assert table.loc["XS", "alignment"] == pytest.approx(3 / 4)
    pairs_frame = study.pair_agreement(runs)
    difference = study.paired_difference(pairs_frame, ("S", "detailed+cot/0"), ("XS", "detailed+cot/0"),
                                         "same_position")
    assert difference.value == -1.0 and difference.n == n - n // 4  # over the pairs read in both cells


def test_paper_scale_judgments_leave_unreadable_read_outs_out():
    """Comparing two policies with a labeller (paper scale): an unreadable read-out is no win for B."""
    posts = pd.DataFrame({"id": ["p0", "p1"], "title": ["t0", "t1"], "post": ["post zero", "post one"]})
    data = rl.SummaryData(comparisons=pd.DataFrame(), tldr_train=posts, tldr_eval=posts, key={})
    a = pd.DataFrame({"id": ["p0", "p1"], "summary": ["a0", "a1"], "characters": [2, 2]})
    b = pd.DataFrame({"id": ["p0", "p1"], "summary": ["bb0", "bb1"], "characters": [3, 3]})
    # the A, B reads of both posts, then the B, A reads: post 0 readable in both orders, post 1 in neither
    judge = Rows([[0.0, -3.0], [math.nan, math.nan], [0.0, -3.0], [math.nan, math.nan]])
    judgments = rl.labeller_judgments(a, b, data, judge, lb.LabelSpec())
    assert judgments.id.tolist() == ["p0", "p0"] and judgments.a_first.tolist() == [True, False]
    assert judgments.a_wins.dtype == bool
    assert rl.win_rate(judgments) in (0.0, 0.5, 1.0)
