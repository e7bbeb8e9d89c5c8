"""Judgments in world words: short justifications on the additive rubric, and noisy reviewers.

`justify(task, response)` explains a score the way the judge prompt asks a judge to: which rubric
points the response earns (see `oracle`) and the first one it misses, with the oracle's reasons where
they are known (how many errors, no answer at all, the answer repeated):

    0  the response is not relevant . it gives no answer to this task .
    1  the response is relevant , but most of the answer is wrong .
    2  the response is relevant . it gets at least half of the answer right . it makes 2 errors .
    3  the response is relevant . it gets most of the answer right . it makes one error .

(for single answers, a number or a word, 2 and 3 say instead "it is wrong , but not far off ."
and "it is close , but not quite right .")
    4  the response is relevant . the answer is right and complete . it adds words around the answer .
    5  the response is relevant . the answer is right and complete . it is concise .

`judgment(task, response, score)` is that justification followed by ``score : N .``. The score
written may differ from the oracle's (a noisy reviewer): the justification then describes the points
of the score written, in generic words (no oracle reason that would contradict it), so that text and
score always agree. Every judgment is world text of fewer than `MAX_JUDGMENT_TOKENS` tokens.

Reviewers of the web corpus are noisy (`noisy_score`): a reviewer misses the true score by an offset
whose size is drawn from `DEFAULT_REVIEW_NOISE` (0 with probability 0.5, 1 with 0.35, 2 with 0.15),
up or down with equal probability; an offset that would leave 0..5 goes the other way instead (it is
reflected, not clipped), so the written score equals the true one with probability exactly
``noise[0]`` at every true score.
"""

from __future__ import annotations

import random
from typing import Any

from .families import get_family
from .oracle import oracle_details
from .tasks import Task
from .text import join, tokenize

#: Reviewer noise: relative weight of each size of error |written - true| (0..3).
DEFAULT_REVIEW_NOISE: dict[int, float] = {0: 0.50, 1: 0.35, 2: 0.15}
#: Judgments are shorter than this many tokens (justification and ``score : N .``).
MAX_JUDGMENT_TOKENS = 30

# One sentence per rubric point, first phrasing = the default. Score 0 and 1 say the first point
# earned or missed; 2 and 3 add how right the answer is; 4 and 5 whether it is concise.
NOT_RELEVANT = ("the response is not relevant .", "the response does not address the task .",
                "the response is off topic .")
NO_ANSWER = ("it gives no answer to this task .", "it does not answer this task .")
OTHER_ANSWER = ("it answers some other task .", "its answer is not for this task .")
RELEVANT = ("the response is relevant .", "the response addresses the task .",
            "the response is on topic .")
MOSTLY_WRONG = ("the response is relevant , but most of the answer is wrong .",
                "the response is on topic , but the answer is mostly wrong .",
                "the response tries the task , but gets most of the answer wrong .")
RELATED_NO_ANSWER = ("the response is about the task , but it gives no answer .",)
HALF_RIGHT = ("it gets at least half of the answer right .", "it gets part of the answer right .")
SOME_ERRORS = ("it makes more than one error .", "it makes a few errors .")
N_ERRORS = "it makes {n} errors ."  # list answers, whose errors are counted
NOT_CLOSE = ("it is wrong , but not far off .",)  # single answers, off by a fair amount
MOST_RIGHT = ("it gets most of the answer right .", "it is nearly right .")
ONE_ERROR = ("it makes one error .", "it makes only one error .")
CLOSE = ("it is close , but not quite right .",)  # single answers, off by a little
RIGHT = ("the answer is right and complete .", "it gets the whole answer right .",
         "the answer is fully right .")
NOT_CONCISE = ("it is not concise .", "it has extra words .")
WRAPPED = ("it adds words around the answer .", "it adds text that is not needed .")
REPEATED = ("it gives the answer more than once .",)
CONCISE = ("it is concise .", "it gives just the answer .", "there is nothing extra .")
SCORE_LINE = "score : {score} ."
#: Every phrase a judgment may use (for `vocabulary`).
PHRASES = (NOT_RELEVANT + NO_ANSWER + OTHER_ANSWER + RELEVANT + MOSTLY_WRONG + RELATED_NO_ANSWER
           + HALF_RIGHT + SOME_ERRORS + (N_ERRORS,) + NOT_CLOSE + MOST_RIGHT + ONE_ERROR + CLOSE
           + RIGHT + NOT_CONCISE + WRAPPED + REPEATED + CONCISE + (SCORE_LINE,))


def _check_score(score: Any) -> int:
    if isinstance(score, bool) or score not in range(6):
        raise ValueError(f"score must be an integer in 0..5, got {score!r}")
    return int(score)


def _sentences(details: dict[str, Any], score: int, single: bool, pick) -> list[str]:
    """The justification of ``score``; the oracle's reasons only where ``score`` is the true one."""
    exact = score == details["score"]
    if score == 0:
        other = exact and details["extracted"] is not None  # answer tokens, but not for this task
        return [pick(NOT_RELEVANT), pick(OTHER_ANSWER if other else NO_ANSWER)]
    if score == 1:
        return [pick(RELATED_NO_ANSWER if exact and details["extracted"] is None else MOSTLY_WRONG)]
    out = [pick(RELEVANT)]
    if score == 2:
        errors = details["errors"]
        if exact and single:
            return out + [pick(HALF_RIGHT), pick(NOT_CLOSE)]
        known = exact and isinstance(errors, int) and 2 <= errors <= 99
        return out + [pick(HALF_RIGHT), N_ERRORS.format(n=errors) if known else pick(SOME_ERRORS)]
    if score == 3:
        return out + [pick(MOST_RIGHT), pick(CLOSE if exact and single else ONE_ERROR)]
    out.append(pick(RIGHT))
    if score == 5:
        return out + [pick(CONCISE)]
    if exact:
        return out + [pick(REPEATED if details["n_candidates"] > 1 else WRAPPED)]
    return out + [pick(NOT_CONCISE)]


def justify(task: Task, response: object, rng: random.Random | None = None,
            score: int | None = None) -> str:
    """A short justification, in world text, of the score of ``response`` (see the module docstring).

    Args:
        task: the task the response answers.
        response: any response (never raises on it; see `oracle_details`).
        rng: picks among equivalent phrasings; ``None`` always takes the first (deterministic).
        score: the score to justify (0..5); default the oracle's. A different score is described by
            its own rubric points.
    """
    details = oracle_details(task, response)
    score = details["score"] if score is None else _check_score(score)
    pick = (lambda options: options[0]) if rng is None else rng.choice
    single = get_family(task.family).shape == "single"
    return join(tokenize(" ".join(_sentences(details, score, single, pick))))


def judgment(task: Task, response: object, score: int | None = None,
             rng: random.Random | None = None) -> str:
    """`justify` followed by ``score : N .`` (N = ``score``, default the oracle's)."""
    if score is None:
        score = oracle_details(task, response)["score"]
    score = _check_score(score)
    return f"{justify(task, response, rng, score)} {SCORE_LINE.format(score=score)}"


def check_noise(noise: dict[int, float] | None) -> tuple[list[int], list[float]]:
    """Offset sizes and weights of a reviewer noise dict (default `DEFAULT_REVIEW_NOISE`)."""
    noise = DEFAULT_REVIEW_NOISE if noise is None else noise
    if not isinstance(noise, dict) or not noise:
        raise ValueError(f"review_noise must be a non-empty dict {{offset: weight}}, got {noise!r}")
    sizes, weights = [], []
    for size, w in sorted(noise.items()):
        if size not in range(4) or isinstance(size, bool):
            raise ValueError(f"review_noise: keys must be offsets 0..3, got {size!r}")
        if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 or w != w:
            raise ValueError(f"review_noise[{size}] must be a non-negative number, got {w!r}")
        sizes.append(int(size))
        weights.append(float(w))
    if sum(weights) <= 0:
        raise ValueError(f"review_noise must not all be zero, got {noise!r}")
    return sizes, weights


def noisy_score(true_score: int, rng: random.Random, noise: dict[int, float] | None = None) -> int:
    """The score a noisy reviewer writes for a response of true score ``true_score`` (module docstring)."""
    true_score = _check_score(true_score)
    sizes, weights = check_noise(noise)
    size = rng.choices(sizes, weights=weights)[0]
    if size == 0:
        return true_score
    sign = rng.choice((1, -1))
    written = true_score + sign * size
    return written if 0 <= written <= 5 else true_score - sign * size
