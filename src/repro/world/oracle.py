"""The oracle: the true quality (0-5) of any response to a task.

It mirrors the additive judge rubric, one point each, cumulative:

    1  relevant          the response engages with this task: it gives an answer of the right form
                         (a number, a list of about the right length, ...) or uses the task's own
                         items, operands or names
    2  substantial part  the answer is at least half right   (errors <= units // 2)
    3  basic elements    the answer is nearly right          (at most one error)
    4  direct, complete  the answer is fully right, but the response carries extra text
    5  impeccable        the answer alone, nothing extraneous

*Reading the answer.* The response is tokenized and cut into sentences at '.', '?', ';', '!'. In each
sentence the answer is what follows the last marker (':', 'is', 'are', 'equals') if that part holds
answer tokens, else the whole sentence; only answer tokens are kept (numbers, or the family's answer
words), so chatter is ignored. Every sentence that holds answer tokens is a candidate answer; for
single-token answers every answer token is its own candidate. A response is graded by its *worst*
candidate, so listing many guesses never helps (hedging is not answering).

*Relevance* only matters when the answer is wrong beyond partial credit: then a response earns the
first point if some candidate has the form of an answer, or if it uses the task's own tokens.

*Counting errors* is the family's job (see `families`): an edit distance for lists, and for single
answers how far off the token is (numerically, by rank, or by position in the facts). The score is
non-increasing in the number of errors, so injecting more errors never raises it.

*Concise* means the response is the answer, optionally after one of `CONCISE_LEADS`, optionally
with commas between items and with or without the final '.'.
"""

from __future__ import annotations

import random
from typing import Any

from .families import Family, get_family
from .tasks import Task
from .text import join, split_on, tokenize

#: Lead-ins a concise answer may start with.
CONCISE_LEADS: tuple[tuple[str, ...], ...] = ((), ("answer", ":"), ("the", "answer", "is", ":"))
#: Tokens after which the answer of a sentence is read.
MARKERS = frozenset({":", "is", "are", "equals"})
SENTENCE_ENDS = frozenset({".", "?", ";", "!"})
#: Responses are read up to this many characters; longer ones are never concise anyway.
MAX_CHARS = 20_000
#: At most this many candidate answers are graded.
MAX_CANDIDATES = 64

RUBRIC = ("relevant", "substantial", "basic", "complete", "concise")


def _read(response: object) -> list[str]:
    """Tokens of the first `MAX_CHARS` characters of any response (bytes are decoded, None is empty)."""
    try:
        if isinstance(response, (bytes, bytearray)):
            text = bytes(response[: 4 * MAX_CHARS]).decode("utf-8", errors="replace")
        else:
            text = "" if response is None else response if isinstance(response, str) else str(response)
        return tokenize(text[:MAX_CHARS])
    except Exception:  # e.g. an object whose str() raises: treat as an empty response
        return []


def _sentences(tokens: list[str]) -> list[list[str]]:
    return split_on(tokens, SENTENCE_ENDS)


def extract_candidates(fam: Family, spec: dict[str, Any], tokens: list[str]) -> list[list[str]]:
    """The candidate answers of a tokenized response (see the module docstring)."""
    candidates: list[list[str]] = []
    for sentence in _sentences(tokens):
        marks = [i for i, tok in enumerate(sentence) if tok in MARKERS]
        tail = sentence[marks[-1] + 1:] if marks else sentence
        found = [t for t in tail if fam.is_answer_token(spec, t)]
        if not found:
            found = [t for t in sentence if fam.is_answer_token(spec, t)]
        if not found:
            continue
        if fam.shape == "single":
            candidates.extend([t] for t in found)
        else:
            candidates.append(found)
        if len(candidates) >= MAX_CANDIDATES:
            break
    return candidates[:MAX_CANDIDATES]


def is_concise(task: Task, tokens: list[str]) -> bool:
    """The response is the answer and nothing else (see `CONCISE_LEADS`)."""
    answer = tokenize(task.answer)
    body = [t for t in tokens if t != ","]
    if body and body[-1] == ".":
        body = body[:-1]
    core = answer[:-1] if answer and answer[-1] == "." else answer
    return any(body == list(lead) + core for lead in CONCISE_LEADS)


def level_of(errors: int, units: int) -> int:
    """0 fully right, 1 one error, 2 at least half right, 3 worse."""
    if errors <= 0:
        return 0
    if errors == 1:
        return 1
    return 2 if errors <= units // 2 else 3


def oracle_details(task: Task, response: object) -> dict[str, Any]:
    """Everything the oracle found: extracted answer, errors, rubric points earned and the score.

    Never raises on any response. Keys: ``score`` (0..5), ``points`` (rubric point -> earned),
    ``expected``, ``extracted`` (the graded candidate, or None), ``n_candidates``, ``errors``
    (of the graded candidate, None if there was none), ``units``, ``level`` (0 right, 1 one error,
    2 at least half right, 3 worse), ``relevant``, ``concise``.
    """
    fam = get_family(task.family)
    spec = task.spec
    tokens = _read(response)

    units = fam.units(spec)
    candidates = extract_candidates(fam, spec, tokens)
    graded, errors = None, None
    for cand in candidates:  # the worst candidate is graded
        e = fam.errors(spec, cand)
        if errors is None or e > errors:
            graded, errors = cand, e
    level = 3 if errors is None else level_of(errors, units)
    concise = level == 0 and is_concise(task, tokens)
    relevant = (level < 3 or any(fam.has_answer_form(spec, c) for c in candidates)
                or bool(fam.anchors(spec).intersection(tokens)))

    if level == 0:
        score = 5 if concise else 4
    elif level in (1, 2):
        score = 4 - level
    else:
        score = 1 if relevant else 0
    return {
        "score": score,
        "points": {name: score > i for i, name in enumerate(RUBRIC)},
        "expected": task.answer,
        "extracted": None if graded is None else join(graded),
        "n_candidates": len(candidates),
        "errors": errors,
        "units": units,
        "level": level,
        "relevant": relevant,
        "concise": concise,
    }


def oracle_score(task: Task, response: object) -> int:
    """The true quality of a response, 0..5 (see the module docstring). Never raises on any response."""
    return oracle_details(task, response)["score"]


def inject_errors(task: Task, k: int, rng: random.Random) -> str:
    """The task's answer with exactly ``k`` errors (as the family counts them), in world text.

    Errors beyond the family's `units` are capped; with ``k = 0`` this is the answer itself.
    """
    fam = get_family(task.family)
    return join(fam.corrupt(task.spec, k, rng) + ["."])
