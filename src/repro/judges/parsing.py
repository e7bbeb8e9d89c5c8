"""Reading the score out of an LLM-as-a-Judge answer.

The judge prompt asks for a short justification that ends with a line ``Score: <points>`` (0-5 on
the additive rubric). Large models write ``Score: 4``; the tiny world models write lowercase words
with spaces around punctuation, ``... score : 4 .``. ``parse_score`` reads both, and tells *why* it
could not read a score, so that unparsable judgments are counted and reported instead of turning
into a silent 0.

Rules (all case-insensitive, any whitespace around the colon):

- The marker is the word ``score`` followed by ``:``. Only the **last** marker counts: a judge may
  quote the rubric or change its mind, and the answer format puts the final score at the end.
- What follows the marker may be wrapped in markdown emphasis, quotes or a bracket (``**4**``,
  ``"4"``, ``[4]``), then must be a number: an integer (``4``), a decimal written without spaces
  (``4.5``, ``3.0``, ``.5``), optionally with a sign (``-1`` is read, then rejected as out of range)
  and an exponent (``4e0``, ``5E-1``, ``1.5e+0`` are read as 4, 0.5 and 1.5; ``4e5`` is out of range).
  A letter ``e`` not followed by digits is not an exponent: ``4eggs`` reads 4.
- ``4 . 5`` is read as 4 followed by a full stop: in world text ``.`` is a token of its own, and a
  score followed by the end of the sentence is far more common than a spaced-out decimal.
- A score written as a fraction of the scale, ``4/5``, ``4 / 5`` or ``4 out of 5``, is read as its
  numerator when the denominator is the top of the scale (``high``); any other denominator
  (``8/10``) is not rescaled but reported as ``wrong_scale``.
- Number words ("four") are not read: the judge is asked for digits.
- A number outside ``[low, high]`` gives no value (``out_of_range``).
- Input of any type never raises: ``None`` is ``missing``; bytes are decoded as UTF-8 with
  replacement; other non-text objects are ``not_text``. Only the last ``max_chars`` characters are
  scanned (the score line is at the end), which bounds the work on huge inputs; the scan is linear
  in the scanned text, whatever it holds (long runs of blanks or newlines after the marker included).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

#: Every status ``parse_score`` can return; only ``ok`` carries a value.
STATUSES = ("ok", "missing", "non_numeric", "out_of_range", "wrong_scale", "not_text")

#: How many characters from the end of the text are scanned by default.
MAX_SCAN_CHARS = 10_000

_MARKER = re.compile(r"\bscore\s*:", re.IGNORECASE)
# Every quantifier is possessive (``*+``, ``++``, ``?+``): no part of the text can be read in two ways
# (whitespace is not an emphasis mark, a sign or a digit), so backtracking could never find another
# match, and forbidding it keeps the match linear in the text. With plain ``\s*`` the three runs of
# whitespace below split a long run of blanks in cubically many ways before giving up.
_VALUE = re.compile(
    r"""\s*+[*_"'`(\[]*+\s*+                       # optional emphasis, quotes or bracket
        (?P<sign>[-+]?+)\s*+
        (?P<num>(?:[0-9]++(?:\.[0-9]++)?+|\.[0-9]++)  # 4, 4.5, .5 (no inner spaces)
                (?:e[-+]?+[0-9]++)?+)                  # exponent: 4e0, 5E-1, 1.5e+0
        (?:\s*+(?:/|out\s++of)\s*+(?P<den>[0-9]++(?:\.[0-9]++)?+))?  # 4/5, 4 out of 5
    """,
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True)
class ParsedScore:
    """The outcome of reading one judge answer.

    ``value`` is the score when ``status == "ok"`` and ``None`` otherwise; ``markers`` is how many
    ``score:`` markers the scanned text held (more than one is allowed; the last is read).
    """

    value: float | None
    status: str
    markers: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _as_text(text: object) -> str | None:
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text).decode("utf-8", errors="replace")
    return None


def parse_score(
    text: object,
    low: float = 0,
    high: float = 5,
    *,
    max_chars: int = MAX_SCAN_CHARS,
) -> ParsedScore:
    """Read the final ``Score: <points>`` of a judge answer (see the module docstring for the rules).

    Never raises on ``text``; raises ``ValueError`` only for an empty range (``low > high``) or a
    non-positive ``max_chars``. Returns a ``ParsedScore`` whose value is ``None`` unless the status is
    ``ok``, in which case ``low <= value <= high``.
    """
    if not low <= high:
        raise ValueError(f"parse_score: empty range [{low}, {high}]")
    if max_chars <= 0:
        raise ValueError(f"parse_score: max_chars must be positive, got {max_chars}")
    if text is None:
        return ParsedScore(None, "missing")
    as_text = _as_text(text)
    if as_text is None:
        return ParsedScore(None, "not_text")
    tail = as_text[-max_chars:]

    markers = list(_MARKER.finditer(tail))
    if not markers:
        return ParsedScore(None, "missing")
    count = len(markers)
    found = _VALUE.match(tail, markers[-1].end())
    if found is None:
        return ParsedScore(None, "non_numeric", count)

    value = float(found["num"])
    if found["sign"] == "-":
        value = -value
    if found["den"] is not None and float(found["den"]) != float(high):
        return ParsedScore(None, "wrong_scale", count)
    if not (math.isfinite(value) and low <= value <= high):
        return ParsedScore(None, "out_of_range", count)
    return ParsedScore(value, "ok", count)


@dataclass
class ScoreTally:
    """Counts of parse outcomes over many judge answers, for reporting how often parsing failed.

    >>> tally = ScoreTally()
    >>> _ = tally.parse("the answer is right . score : 4")
    >>> _ = tally.parse("i can not tell")
    >>> tally.as_dict()["ok"], tally.unparsable
    (1, 1)
    """

    counts: Counter = field(default_factory=Counter)

    def add(self, parsed: ParsedScore) -> ParsedScore:
        """Count one outcome; returns it unchanged."""
        self.counts[parsed.status] += 1
        return parsed

    def parse(self, text: object, low: float = 0, high: float = 5, **kwargs) -> ParsedScore:
        """``parse_score`` and count the outcome."""
        return self.add(parse_score(text, low, high, **kwargs))

    def update(self, other: ScoreTally) -> None:
        """Add the counts of another tally (e.g. from another batch)."""
        self.counts.update(other.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def unparsable(self) -> int:
        return self.total - self.counts["ok"]

    @property
    def ok_fraction(self) -> float:
        """Share of answers with a usable score (NaN before any answer is counted)."""
        return self.counts["ok"] / self.total if self.total else float("nan")

    def as_dict(self) -> dict[str, int]:
        """Count per status (every status listed, zeros included) plus ``total``."""
        return {**{s: self.counts[s] for s in STATUSES}, "total": self.total}

    def __str__(self) -> str:
        failed = ", ".join(f"{s} {self.counts[s]}" for s in STATUSES[1:] if self.counts[s])
        return f"{self.counts['ok']}/{self.total} scores parsed" + (f" ({failed})" if failed else "")


__all__ = ["MAX_SCAN_CHARS", "STATUSES", "ParsedScore", "ScoreTally", "parse_score"]
