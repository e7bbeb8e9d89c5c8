import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.judges.parsing import STATUSES, ParsedScore, ScoreTally, parse_score


@pytest.mark.parametrize(
    "text, value",
    [
        ("The response is relevant and complete.\nScore: 4", 4.0),
        ("the answer is right and short . score : 5", 5.0),
        ("the answer is right . score : 4 .", 4.0),
        ("SCORE:3", 3.0),
        ("Score:\n\t2", 2.0),
        ("Score: 4.5", 4.5),
        ("Score: 3.0 points", 3.0),
        ("Score: .5", 0.5),
        ("Score: **4**", 4.0),
        ('Score: "2"', 2.0),
        ("Score: [1]", 1.0),
        ("Score: 0", 0.0),
        ("score : 4 / 5", 4.0),
        ("Score: 4/5", 4.0),
        ("score : 3 out of 5 .", 3.0),
        ("score : 4 . 5", 4.0),  # world text: '.' ends the sentence
        ("Score: 2\nOn reflection the answer misses a step.\nScore: 3", 3.0),  # last one counts
        ("Score: +5", 5.0),
    ],
)
def test_reads_the_score(text, value):
    parsed = parse_score(text)
    assert parsed == ParsedScore(value, "ok", parsed.markers) and parsed.ok


@pytest.mark.parametrize(
    "text, status",
    [
        ("", "missing"),
        (None, "missing"),
        ("the answer is good , i give it a 4", "missing"),
        ("underscore: 3", "missing"),
        ("score : four", "non_numeric"),
        ("Score:", "non_numeric"),
        ("Score: 4\nScore: n/a", "non_numeric"),  # the last marker decides
        ("Score: 6", "out_of_range"),
        ("score : -1", "out_of_range"),
        ("Score: 5.5", "out_of_range"),
        ("Score: " + "9" * 5000, "out_of_range"),
        ("Score: 6/5", "out_of_range"),
        ("Score: 8/10", "wrong_scale"),
        ("score : 7 out of 10", "wrong_scale"),
        (42, "not_text"),
        (["Score: 4"], "not_text"),
    ],
)
def test_reports_why_there_is_no_score(text, status):
    parsed = parse_score(text)
    assert parsed.status == status and parsed.value is None and not parsed.ok


def test_bytes_custom_ranges_and_marker_count():
    assert parse_score(b"score : 3 \xff\xfe").value == 3.0
    assert parse_score(bytearray(b"Score: 2")).value == 2.0
    assert parse_score("Score: 8", low=1, high=10).value == 8.0
    assert parse_score("Score: 8/10", low=1, high=10).value == 8.0
    assert parse_score("Score: 0", low=1, high=10).status == "out_of_range"
    assert parse_score("score: 1 score: 2 score: 3").markers == 3
    with pytest.raises(ValueError, match="empty range"):
        parse_score("Score: 1", low=5, high=0)


def test_scan_is_capped_to_the_end_of_huge_inputs():
    huge = "filler " * 1_000_000 + "score : 4"
    assert parse_score(huge).value == 4.0
    # a marker before the scanned tail is not seen
    assert parse_score("score : 4" + " " * 200, max_chars=100).status == "missing"


def test_tally_counts_every_status():
    tally = ScoreTally()
    for text in ["score : 4", "score : 5", "nothing here", "score : 9", "score : x", None]:
        tally.parse(text)
    counts = tally.as_dict()
    assert counts == {"ok": 2, "missing": 2, "non_numeric": 1, "out_of_range": 1, "wrong_scale": 0,
                      "not_text": 0, "total": 6}
    assert tally.unparsable == 4 and tally.ok_fraction == pytest.approx(1 / 3)
    other = ScoreTally()
    other.add(parse_score("Score: 1"))
    tally.update(other)
    assert tally.total == 7 and tally.counts["ok"] == 3
    assert str(tally) == "3/7 scores parsed (missing 2, non_numeric 1, out_of_range 1)"
    assert ScoreTally().ok_fraction != ScoreTally().ok_fraction  # NaN before anything is counted


NUMBERISH = st.from_regex(r"[-+]?[0-9]{0,4}(\.[0-9]{0,3})?( ?(/|out of) ?[0-9]{1,3})?", fullmatch=True)
JUDGE_LIKE = st.tuples(st.text(max_size=40), st.sampled_from(["score:", "Score :", "SCORE : ", "score"]),
                       NUMBERISH, st.text(max_size=10)).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.binary(), JUDGE_LIKE, st.none(), st.integers()),
       low=st.integers(-3, 3), width=st.integers(0, 10))
def test_any_input_never_raises_and_stays_in_range(text, low, width):
    high = low + width
    parsed = parse_score(text, low, high)
    assert parsed.status in STATUSES
    if parsed.status == "ok":
        assert parsed.value is not None and low <= parsed.value <= high
    else:
        assert parsed.value is None


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(max_size=60), score=st.integers(0, 5), spaced=st.booleans(), upper=st.booleans())
def test_a_well_formed_final_line_is_always_read(prefix, score, spaced, upper):
    line = ("score : " if spaced else "score:") + str(score)
    parsed = parse_score(prefix + "\n" + (line.upper() if upper else line))
    assert parsed.status == "ok" and parsed.value == score
