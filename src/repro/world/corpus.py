"""The world's "web text": the pre-training corpus of the base models.

Like real web text, it holds answers of mixed quality, so that a base model samples responses that
vary and a judge has something to separate. Three kinds of documents:

- ``{"kind": "dialogue", "messages": [user prompt, assistant response], "family", "quality", "uid"}``:
  a task and a response written at a quality drawn from ``quality_weights``;
- ``{"kind": "text", "text": "here are some tasks : 1 . <prompt> 2 . <prompt> ..."}``: numbered lists
  of task prompts (later used to prompt a model for new tasks, few-shot);
- ``{"kind": "review", "task": task.to_record(), "response", "judgment", "score", "oracle"}``: a
  review of a response, as web text holds reviews: the response is written at a quality drawn from
  ``review_quality_weights`` (default: uniform over 0..5), ``oracle`` is its true score, ``score``
  the score a noisy reviewer writes (`repro.world.judging.noisy_score`: the true score with
  probability 0.5, else off by 1 (0.35) or 2 (0.15), up or down, reflected at 0 and 5), and
  ``judgment`` the reviewer's text: a justification consistent with ``score``, ending
  ``score : N .`` (`repro.world.judging.judgment`).

- ``{"kind": "listing", "text": "a list : 18 20 12 13 . the list in reverse : 13 12 20 18 ."}``: a
  list of items followed by the same items copied, reversed, sorted either way, or with one item left
  out, as web text holds tables and their sorted copies. These documents are what teaches a small
  model to copy from its context (the skill that sorting and editing a list rest on; a base trained
  without them never copies, see ``00_world``'s induction probe).

Each document's kind is drawn independently: a task list with probability ``text_fraction``
(default 0.15), a review with probability ``review_fraction`` (default 0.10), a listing with
probability ``listing_fraction`` (default 0.20), else a dialogue (0.55). With ``listing_fraction=0``
the corpus is the one of world-2, and with ``review_fraction=0`` as well the one of world-1, document
for document.

The chat formatting of ``messages``, and of reviews into a judge prompt, is not the world's job (the
models and judges packages own those templates).
"""

from __future__ import annotations

import random
from typing import Any

from .families import MAGNITUDE
from .judging import check_noise, judgment, noisy_score
from .lexicon import CATEGORIES, ITEM_WORDS
from .tasks import resolve_families, difficulty_sampler, make_task
from .writer import write_response

#: Quality mix of dialogue responses in the web corpus: about a third impeccable, the rest spread
#: over 0-4. A property of the world (web text is of mixed quality), not a tuned number.
DEFAULT_QUALITY_WEIGHTS: dict[int, float] = {0: 0.10, 1: 0.10, 2: 0.15, 3: 0.15, 4: 0.15, 5: 0.35}
#: Fraction of documents that are lists of tasks rather than dialogues.
DEFAULT_TEXT_FRACTION = 0.15
#: Fraction of documents that are reviews of a response (taken from the dialogues' share).
DEFAULT_REVIEW_FRACTION = 0.10
#: Fraction of documents that are listings (a list and a rearranged copy of it).
DEFAULT_LISTING_FRACTION = 0.20
#: Number of items in a listing (inclusive range).
LISTING_ITEMS = (4, 8)
LISTING_INTROS = ("a list :", "here is a list :", "the items :")
#: How a listing rearranges its list: the phrase that introduces the copy, for numbers and for words.
LISTING_FORMS = {
    "copy": ("the same list again :", "the same list again :"),
    "reverse": ("the list in reverse :", "the list in reverse :"),
    "ascending": ("the list from small to large :", "the list from a to z :"),
    "descending": ("the list from large to small :", "the list from z to a :"),
    "remove": ("the list without {0} :", "the list without {0} :"),
}
#: Every phrase a listing may emit (for `vocabulary`).
LISTING_PHRASES = LISTING_INTROS + tuple(p for pair in LISTING_FORMS.values() for p in pair)
#: Quality mix of reviewed responses: uniform, so that reviews of every score are common.
DEFAULT_REVIEW_QUALITY_WEIGHTS: dict[int, float] = {q: 1.0 for q in range(6)}
#: Number of prompts in a task-list document (inclusive range).
TASKS_PER_TEXT = (2, 4)
#: A task list stops before it would grow past this many words (it always holds one task).
MAX_TEXT_WORDS = 200
TEXT_INTROS = (
    "here are some tasks :", "a list of tasks :", "some questions to practice :", "examples of tasks :",
)


def _check_weights(weights: dict[int, float] | None, default: dict[int, float] = DEFAULT_QUALITY_WEIGHTS,
                   what: str = "quality_weights") -> tuple[list[int], list[float]]:
    weights = default if weights is None else weights
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"{what} must be a non-empty dict {{quality: weight}}, got {weights!r}")
    levels, values = [], []
    for q, w in sorted(weights.items()):
        if q not in range(6) or isinstance(q, bool):
            raise ValueError(f"{what}: keys must be qualities 0..5, got {q!r}")
        if not isinstance(w, (int, float)) or w < 0 or w != w:
            raise ValueError(f"{what}[{q}] must be a non-negative number, got {w!r}")
        levels.append(int(q))
        values.append(float(w))
    if sum(values) <= 0:
        raise ValueError(f"{what} must not all be zero, got {weights!r}")
    return levels, values


def _fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


def web_corpus(
    n_docs: int,
    seed: int,
    quality_weights: dict[int, float] | None = None,
    families: list[str] | tuple[str, ...] | None = None,
    difficulty: int | tuple[int, int] | None = None,
    text_fraction: float = DEFAULT_TEXT_FRACTION,
    review_fraction: float = DEFAULT_REVIEW_FRACTION,
    review_noise: dict[int, float] | None = None,
    review_quality_weights: dict[int, float] | None = None,
    listing_fraction: float = DEFAULT_LISTING_FRACTION,
) -> list[dict[str, Any]]:
    """A seeded list of ``n_docs`` web documents (see the module docstring).

    Args:
        n_docs: number of documents.
        seed: the same seed (and arguments) gives the same corpus.
        quality_weights: relative weight of each response quality 0..5 (missing qualities get 0);
            default `DEFAULT_QUALITY_WEIGHTS`.
        families: task families to draw from (default: all).
        difficulty: fixed level, inclusive ``(low, high)`` range, or ``None`` for 1..5.
        text_fraction: fraction of task-list documents, drawn per document.
        review_fraction: fraction of review documents, drawn per document.
        listing_fraction: fraction of listing documents, drawn per document (``text_fraction +
            review_fraction + listing_fraction`` must be at most 1; the rest are dialogues).
        review_noise: reviewer noise, relative weight of each offset size 0..3 between the score
            written and the true one; default `repro.world.judging.DEFAULT_REVIEW_NOISE`.
        review_quality_weights: relative weight of each true quality of reviewed responses; default
            `DEFAULT_REVIEW_QUALITY_WEIGHTS` (uniform).
    """
    if not isinstance(n_docs, int) or n_docs < 0:
        raise ValueError(f"n_docs must be a non-negative integer, got {n_docs!r}")
    text_fraction = _fraction(text_fraction, "text_fraction")
    review_fraction = _fraction(review_fraction, "review_fraction")
    listing_fraction = _fraction(listing_fraction, "listing_fraction")
    if text_fraction + review_fraction + listing_fraction > 1.0 + 1e-12:
        raise ValueError(f"text_fraction + review_fraction + listing_fraction must be at most 1, got "
                         f"{text_fraction} + {review_fraction} + {listing_fraction}")
    levels, weights = _check_weights(quality_weights)
    review_levels, review_weights = _check_weights(
        review_quality_weights, DEFAULT_REVIEW_QUALITY_WEIGHTS, "review_quality_weights")
    check_noise(review_noise)
    families = resolve_families(families)
    draw_difficulty = difficulty_sampler(difficulty)
    rng = random.Random(seed)

    docs: list[dict[str, Any]] = []
    for _ in range(n_docs):
        kind = rng.random()  # one draw per document: task list, review, or dialogue
        if kind < text_fraction:
            # half the lists keep to one family, the others mix
            one = rng.choice(families) if rng.random() < 0.5 else None
            text = rng.choice(TEXT_INTROS)
            for i in range(1, rng.randint(*TASKS_PER_TEXT) + 1):
                prompt = make_task(one or rng.choice(families), rng, draw_difficulty(rng)).prompt
                item = f"{text} {i} . {prompt}"
                if i > 1 and len(item.split()) > MAX_TEXT_WORDS:
                    break
                text = item
            docs.append({"kind": "text", "text": text})
        elif kind < text_fraction + review_fraction:
            task = make_task(rng.choice(families), rng, draw_difficulty(rng))
            quality = rng.choices(review_levels, weights=review_weights)[0]
            response = write_response(task, quality, rng)
            score = noisy_score(quality, rng, review_noise)
            docs.append({
                "kind": "review",
                "task": task.to_record(),
                "response": response,
                "judgment": judgment(task, response, score, rng),
                "score": score,
                "oracle": quality,
            })
        elif kind < text_fraction + review_fraction + listing_fraction:
            docs.append({"kind": "listing", "text": listing(rng, draw_difficulty(rng))})
        else:
            task = make_task(rng.choice(families), rng, draw_difficulty(rng))
            quality = rng.choices(levels, weights=weights)[0]
            response = write_response(task, quality, rng)
            docs.append({
                "kind": "dialogue",
                "messages": [{"role": "user", "content": task.prompt},
                             {"role": "assistant", "content": response}],
                "family": task.family,
                "quality": quality,
                "uid": task.uid,
            })
    return docs



def listing(rng: random.Random, difficulty: int) -> str:
    """A listing document: a list (numbers up to the difficulty's magnitude, distinct item words, or
    words of one category with repeats) and a copy of it, rearranged by one of `LISTING_FORMS`."""
    length = rng.randint(*LISTING_ITEMS)
    kind = rng.choices(("numbers", "items", "category"), weights=(2, 1, 1))[0]
    if kind == "numbers":
        items = [str(v) for v in rng.sample(range(MAGNITUDE[difficulty] + 1), length)]
    elif kind == "items":
        items = rng.sample(ITEM_WORDS, length)
    else:
        words = CATEGORIES[rng.choice(sorted(CATEGORIES))]
        items = [rng.choice(words) for _ in range(length)]
    form = rng.choice(sorted(LISTING_FORMS))
    phrase = LISTING_FORMS[form][kind != "numbers"]
    key = (lambda w: int(w)) if kind == "numbers" else None
    if form == "copy":
        copy = items
    elif form == "reverse":
        copy = items[::-1]
    elif form in ("ascending", "descending"):
        copy = sorted(items, key=key, reverse=form == "descending")
    else:
        gone = rng.choice(items)
        phrase, copy = phrase.format(gone), [w for w in items if w != gone]
    return f"{rng.choice(LISTING_INTROS)} {' '.join(items)} . {phrase} {' '.join(copy)} ."
