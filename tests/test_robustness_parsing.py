"""The score reader against what real judge models write: long runs of blanks or newlines around the
score (read in linear time) and numbers in exponent notation (read as their value).

Time is bounded two ways, neither a tight wall-clock limit: hypothesis ``deadline`` (generous: the
reader takes microseconds, the old backtracking scan took seconds on 1,000 blanks and hours on 10,000)
and the growth from n to 4n characters on 100k-character inputs (best of several runs).
"""

import time
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.judges.parsing import parse_score

WHITESPACE = [" ", "\n", "\t", "\r", "\r\n", "\x0b", "\x0c", "\xa0", "\u2003", "\u3000"]
blanks = st.lists(st.tuples(st.sampled_from(WHITESPACE), st.integers(1, 4_000)), min_size=1, max_size=4).map(
    lambda runs: "".join(c * k for c, k in runs))
maybe_blanks = st.one_of(st.just(""), blanks)
TIMED = settings(max_examples=60, deadline=timedelta(seconds=2))


@pytest.mark.parametrize(
    "text, value",
    [
        ("Score: 4e0", 4.0),
        ("Score: 5E-1", 0.5),
        ("Score: 1.5e+0", 1.5),
        ("score : 2.5E0 / 5", 2.5),
        ("Score: **3e0**", 3.0),
        ("Score: .5e1", 5.0),
        ("Score: 1e-400", 0.0),  # underflows to 0, which is on the scale
        ("Score: 4eggs", 4.0),  # an e without digits is no exponent
        ("Score: 4e", 4.0),
        ("score : 4 e0", 4.0),  # an exponent is written without spaces
    ],
)
def test_exponent_notation_is_read_as_its_value(text, value):
    parsed = parse_score(text)
    assert parsed.ok and parsed.value == value


@pytest.mark.parametrize("text", ["Score: 4e5", "Score: 1e999", "Score: 6E0", "Score: -1e0", "Score: 5.1e0"])
def test_exponent_notation_out_of_range_is_unparsable(text):
    parsed = parse_score(text)
    assert parsed.status == "out_of_range" and parsed.value is None


@settings(max_examples=200, deadline=timedelta(seconds=1))
@given(x=st.floats(0, 5), style=st.sampled_from(["{:e}", "{:E}", "{:.2e}", "{:.1E}", "{!r}"]),
       sign=st.sampled_from(["", "+"]))
def test_any_in_range_number_in_any_notation_reads_as_its_value(x, style, sign):
    written = style.format(x)
    parsed = parse_score(f"The summary is fine.\nScore: {sign}{written}")
    assert parsed.ok and parsed.value == float(written)


@settings(max_examples=100, deadline=timedelta(seconds=1))
@given(x=st.floats(5, 1e300, exclude_min=True), style=st.sampled_from(["{:e}", "{:E}", "{!r}"]))
def test_any_number_above_the_scale_in_exponent_notation_is_out_of_range(x, style):
    written = style.format(x)
    if float(written) <= 5:  # rounding to the written digits can land on the top of the scale
        return
    assert parse_score(f"Score: {written}").status == "out_of_range"


@TIMED
@given(before=maybe_blanks, between=maybe_blanks, after=maybe_blanks, wrap=st.sampled_from(["", "**", '"', "[", "`"]),
       value=st.integers(0, 5), exponent=st.sampled_from(["", "e0", "E+0", "e-0"]))
def test_blank_runs_around_the_score_are_read_quickly_and_right(before, between, after, wrap, value, exponent):
    text = f"Answer.{before}Score{between}:{after}{wrap}{value}{exponent}{wrap[::-1].replace('[', ']')}"
    parsed = parse_score(text, max_chars=len(text))
    assert parsed.ok and parsed.value == value


@TIMED
@given(run=blanks, tail=st.sampled_from(["", "x", "four", "*", "+", "-", "/", "out of", ".", "e", "**-", "e5", "/5"]),
       layout=st.integers(0, 4))
def test_blank_runs_without_a_value_are_refused_quickly(run, tail, layout):
    text = ["Score:" + run + tail,                     # blanks, then no number
            "Score: *" + run + "*" + run + "+" + run + tail,  # blanks between wrappers and sign
            "score" + run + tail,                      # no colon after the marker word
            "Score: 4" + run + "out" + run + tail,     # a number, then blanks that lead nowhere
            ("score " + run[:50]) * 200 + tail][layout]
    parsed = parse_score(text, max_chars=len(text))
    assert parsed.status in ("missing", "non_numeric", "ok")  # "Score: 4 ..." reads 4, the rest refuse
    assert parsed.ok == (layout == 3)


def _best_time(text: str, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        parse_score(text, max_chars=len(text))
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("shape", [
    lambda w: "Score:" + w + "x",
    lambda w: "Score:" + w,
    lambda w: "Score:" + w + "4",
    lambda w: "score" + w + ":" + w + "**" + w + "-" + w + "x",
    lambda w: "Score: 4" + w + "out" + w + "of" + w + "x",
])
@pytest.mark.parametrize("blank", [" ", "\n", "\r\n\t "])
def test_the_scan_is_linear_in_the_length_of_a_blank_run(shape, blank):
    # a guard first: the old backtracking scan needed seconds on 1,000 blanks (hours on 100k)
    assert _best_time(shape(blank * (1_000 // len(blank))), repeats=1) < 0.25
    n = 100_000 // len(blank)
    small, large = _best_time(shape(blank * n)), _best_time(shape(blank * 4 * n))
    assert small < 1.0, f"100k blanks took {small:.3f} s"
    assert large < 12 * small + 0.01, f"4x the text took {large / small:.1f}x the time (linear: about 4x)"
