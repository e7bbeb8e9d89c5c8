"""The world's "web text": the pre-training corpus of the base models.

Like real web text, it holds answers of mixed quality, so that a base model samples responses that
vary and a judge has something to separate. Two kinds of documents:

- ``{"kind": "dialogue", "messages": [user prompt, assistant response], "family", "quality", "uid"}``:
  a task and a response written at a quality drawn from ``quality_weights``;
- ``{"kind": "text", "text": "here are some tasks : 1 . <prompt> 2 . <prompt> ..."}``: numbered lists
  of task prompts (later used to prompt a model for new tasks, few-shot).

The chat formatting of ``messages`` is the models package's job.
"""

from __future__ import annotations

import random
from typing import Any

from .tasks import resolve_families, difficulty_sampler, make_task
from .writer import write_response

#: Quality mix of dialogue responses in the web corpus: about a third impeccable, the rest spread
#: over 0-4. A property of the world (web text is of mixed quality), not a tuned number.
DEFAULT_QUALITY_WEIGHTS: dict[int, float] = {0: 0.10, 1: 0.10, 2: 0.15, 3: 0.15, 4: 0.15, 5: 0.35}
#: Fraction of documents that are lists of tasks rather than dialogues.
DEFAULT_TEXT_FRACTION = 0.15
#: Number of prompts in a task-list document (inclusive range).
TASKS_PER_TEXT = (2, 4)
#: A task list stops before it would grow past this many words (it always holds one task).
MAX_TEXT_WORDS = 200
TEXT_INTROS = (
    "here are some tasks :", "a list of tasks :", "some questions to practice :", "examples of tasks :",
)


def _check_weights(weights: dict[int, float] | None) -> tuple[list[int], list[float]]:
    weights = DEFAULT_QUALITY_WEIGHTS if weights is None else weights
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"quality_weights must be a non-empty dict {{quality: weight}}, got {weights!r}")
    levels, values = [], []
    for q, w in sorted(weights.items()):
        if q not in range(6) or isinstance(q, bool):
            raise ValueError(f"quality_weights: keys must be qualities 0..5, got {q!r}")
        if not isinstance(w, (int, float)) or w < 0 or w != w:
            raise ValueError(f"quality_weights[{q}] must be a non-negative number, got {w!r}")
        levels.append(int(q))
        values.append(float(w))
    if sum(values) <= 0:
        raise ValueError(f"quality_weights must not all be zero, got {weights!r}")
    return levels, values


def web_corpus(
    n_docs: int,
    seed: int,
    quality_weights: dict[int, float] | None = None,
    families: list[str] | tuple[str, ...] | None = None,
    difficulty: int | tuple[int, int] | None = None,
    text_fraction: float = DEFAULT_TEXT_FRACTION,
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
    """
    if not isinstance(n_docs, int) or n_docs < 0:
        raise ValueError(f"n_docs must be a non-negative integer, got {n_docs!r}")
    if not 0.0 <= text_fraction <= 1.0:
        raise ValueError(f"text_fraction must be in [0, 1], got {text_fraction!r}")
    levels, weights = _check_weights(quality_weights)
    families = resolve_families(families)
    draw_difficulty = difficulty_sampler(difficulty)
    rng = random.Random(seed)

    docs: list[dict[str, Any]] = []
    for _ in range(n_docs):
        if rng.random() < text_fraction:
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

