"""Text conventions of the world, and the small string tools the rest of the package shares.

World text is lowercase, words separated by single spaces, punctuation marks are tokens of their own
and numbers are digit strings between 0 and 999, one token each:

    sort these numbers from small to large : 12 7 30 .

`tokenize` is the tolerant reader used on *responses* (which may come from a model and contain
anything); `join` is the writer used for everything the world itself emits.
"""

from __future__ import annotations

import re

#: Punctuation marks the world writes; each is a token of its own. (`tokenize` also splits off '!'.)
PUNCTUATION = (".", ",", ":", "?", ";")
#: Numbers the world emits are 0..MAX_NUMBER, written as plain digit strings.
MAX_NUMBER = 999

_PUNCT_RE = re.compile(r"([.,:?;!])")


def tokenize(text: object) -> list[str]:
    """Split any text into world-style tokens; never raises.

    Lowercases, separates punctuation from words and splits on whitespace. Non-string input is
    converted first (bytes are decoded as UTF-8 with replacement, ``None`` is the empty string).
    """
    if text is None:
        return []
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    return _PUNCT_RE.sub(r" \1 ", text.lower()).split()


def join(tokens: list[str] | tuple[str, ...]) -> str:
    """Write tokens as world text: single spaces between tokens."""
    return " ".join(str(t) for t in tokens)


def as_number(token: str) -> int | None:
    """The value of a plain ASCII digit token (at most 6 digits), else ``None``.

    Unicode digits such as '²' or '٣' and absurdly long digit strings are not numbers of the world.
    """
    if token.isascii() and token.isdigit() and len(token) <= 6:
        return int(token)
    return None


def canonical(token: str) -> str:
    """A token in canonical form: numbers without leading zeros ('07' -> '7'), others unchanged."""
    value = as_number(token)
    return str(value) if value is not None else token


def edit_distance(a: list[str], b: list[str]) -> int:
    """Optimal-string-alignment distance between two token lists.

    Counts insertions, deletions, substitutions and swaps of two neighbouring tokens, one error each,
    so that swapping two adjacent items of a sorted list is a single error.
    """
    n, m = len(a), len(b)
    prev2: list[int] = []
    prev = list(range(m + 1))
    for i in range(1, n + 1):
        cur = [i] + [0] * m
        for j in range(1, m + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[m]


def split_on(tokens: list[str], separators) -> list[list[str]]:
    """``tokens`` cut at every separator (dropped), empty pieces left out."""
    out, current = [], []
    for token in tokens:
        if token in separators:
            if current:
                out.append(current)
            current = []
        else:
            current.append(token)
    if current:
        out.append(current)
    return out
