"""Writing responses of a chosen true quality.

`write_response(task, quality, rng)` returns a plausible response whose `oracle_score` is exactly
``quality``. Styles vary (bare answers, lead-ins, chatter before and after, repetition) so that the
web corpus, and the models pre-trained on it, produce responses that differ in form as well as in
correctness:

    0  irrelevant: off-topic chatter, or the answer to some other task
    1  related but wrong: an answer with many errors, often after mentioning the task's items
    2  partial: an answer with two errors (at least half right)
    3  one small error
    4  the right answer, wrapped in chatter or repeated
    5  the right answer alone (optionally after "answer :" or "the answer is :")

None of the filler phrases contains a number or an item word, so they never change what the oracle
extracts. Every response is checked against the oracle before it is returned.
"""

from __future__ import annotations

import random

from .families import FAMILIES, Family, get_family
from .oracle import oracle_score
from .tasks import Task, make_task
from .text import join

CHATTER_BEFORE = (
    "sure .", "of course .", "happy to help .", "let me think about this .", "good question .",
    "okay , here you go .", "this one is easy .",
)
LEADS = (
    "here is the answer :", "the answer is :", "the result is :", "so the answer is :", "my answer :",
    "result :",
)
CHATTER_AFTER = (
    "i hope this helps .", "let me know if you want more .", "that is all .", "this was a fun task .",
    "i checked it twice .",
)
OFF_TOPIC = (
    "i do not know .", "i like to talk about the weather .", "that is a hard question , ask me later .",
    "let us talk about something else .", "the sun is warm today .", "i can not help with that .",
)
RELATED_WRONG = (
    "i think for {anchors} the answer is : {wrong} .",
    "about {anchors} : {wrong} .",
    "let me see , {anchors} . so the answer is : {wrong} .",
    "hmm , {anchors} . i guess : {wrong} .",
)
#: Every phrase the writer may emit (for `vocabulary`).
PHRASES = CHATTER_BEFORE + LEADS + CHATTER_AFTER + OFF_TOPIC + RELATED_WRONG + ("answer :",)

_MAX_TRIES = 50


def _concise(tokens: list[str], shape: str, rng: random.Random) -> str:
    """The answer alone, in one of the concise forms the oracle accepts."""
    body = join(tokens)
    if shape == "list" and rng.random() < 0.15:
        body = " , ".join(tokens)
    lead = rng.choice(("", "", "", "answer : ", "the answer is : "))
    end = rng.choice((" .", " .", " .", ""))
    return f"{lead}{body}{end}"


def _wrapped(tokens: list[str], rng: random.Random) -> str:
    """The answer with chatter around it, or repeated (never concise)."""
    body = join(tokens)
    style = rng.randrange(5)
    if style == 0:
        return f"{rng.choice(CHATTER_BEFORE)} {rng.choice(LEADS)} {body} ."
    if style == 1:
        return f"{body} . {rng.choice(CHATTER_AFTER)}"
    if style == 2:
        return f"{rng.choice(CHATTER_BEFORE)} {body} . {rng.choice(CHATTER_AFTER)}"
    if style == 3:
        return f"{body} . so the answer is : {body} ."
    return f"{rng.choice(LEADS)} {body} . {rng.choice(CHATTER_AFTER)}"


def _any_form(tokens: list[str], shape: str, rng: random.Random) -> str:
    return _concise(tokens, shape, rng) if rng.random() < 0.6 else _wrapped(tokens, rng)


def _irrelevant(task: Task, fam: Family, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return " ".join(rng.sample(OFF_TOPIC, rng.randint(1, 2)))
    other = make_task(rng.choice([f for f in FAMILIES if f != task.family]), rng, rng.randint(1, 3))
    return _any_form(other.answer.split()[:-1], get_family(other.family).shape, rng)


def _related_wrong(task: Task, fam: Family, rng: random.Random) -> str:
    units = fam.units(task.spec)
    wrong = fam.corrupt(task.spec, rng.randint(units // 2 + 1, units), rng)
    if rng.random() < 0.4:  # a confidently wrong answer
        return _any_form(wrong, fam.shape, rng)
    anchors = sorted(fam.anchors(task.spec))
    mentioned = rng.sample(anchors, min(len(anchors), rng.randint(1, 3)))
    return rng.choice(RELATED_WRONG).format(anchors=join(mentioned), wrong=join(wrong))


def _with_errors(k: int):
    def write(task: Task, fam: Family, rng: random.Random) -> str:
        return _any_form(fam.corrupt(task.spec, k, rng), fam.shape, rng)
    return write


def _complete(task: Task, fam: Family, rng: random.Random) -> str:
    return _wrapped(fam.solve(task.spec), rng)


def _impeccable(task: Task, fam: Family, rng: random.Random) -> str:
    return _concise(fam.solve(task.spec), fam.shape, rng)


_WRITERS = {
    0: _irrelevant, 1: _related_wrong, 2: _with_errors(2), 3: _with_errors(1), 4: _complete,
    5: _impeccable,
}


def write_response(task: Task, quality: int, rng: random.Random) -> str:
    """A response to ``task`` whose oracle score is exactly ``quality`` (0..5)."""
    if quality not in _WRITERS or isinstance(quality, bool):
        raise ValueError(f"quality must be an integer in 0..5, got {quality!r}")
    fam = get_family(task.family)
    for _ in range(_MAX_TRIES):
        text = _WRITERS[quality](task, fam, rng)
        if oracle_score(task, text) == quality:
            return text
    if quality == 0:  # off-topic chatter holds no answer token and no anchor: always 0
        return OFF_TOPIC[0]
    raise RuntimeError(f"could not write a quality-{quality} response for task {task.uid} ({task.family})")
