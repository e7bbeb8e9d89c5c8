"""The verifiable world: instruction tasks whose answers can be checked, and an oracle that knows
the true quality of any response.

    >>> import random
    >>> from repro.world import make_task, oracle_score, write_response
    >>> task = make_task("sort", random.Random(0), difficulty=1)
    >>> oracle_score(task, task.answer)
    5

Modules: `text` (text conventions), `lexicon` (words), `families` (the task families: sampling,
phrasing, solving, grading hooks), `tasks` (the `Task` record and samplers), `oracle` (the 0-5
score), `writer` (responses of a chosen quality), `parse` (prompts read back into tasks),
`judging` (justifications, judgments and noisy reviewers), `corpus` (pre-training web text), `mutations`
(eva's in-depth and in-breadth evolutions), `vocab`
(vocabulary and `WORLD_VERSION`).
"""

from .corpus import (
    DEFAULT_LISTING_FRACTION,
    DEFAULT_QUALITY_WEIGHTS,
    DEFAULT_REVIEW_FRACTION,
    DEFAULT_REVIEW_QUALITY_WEIGHTS,
    DEFAULT_TEXT_FRACTION,
    web_corpus,
)
from .families import DIFFICULTIES, FAMILIES, get_family
from .judging import DEFAULT_REVIEW_NOISE, judgment, justify, noisy_score
from .oracle import inject_errors, oracle_details, oracle_score
from .parse import parse_prompt, split_task_list
from .tasks import DEFAULT_DIFFICULTY, Task, make_task, sample_tasks, task_from_spec, task_uid
from .text import join, tokenize
from .vocab import WORLD_VERSION, vocabulary
from .writer import write_response

__all__ = [
    "DEFAULT_DIFFICULTY",
    "DEFAULT_LISTING_FRACTION",
    "DEFAULT_QUALITY_WEIGHTS",
    "DEFAULT_REVIEW_FRACTION",
    "DEFAULT_REVIEW_NOISE",
    "DEFAULT_REVIEW_QUALITY_WEIGHTS",
    "DEFAULT_TEXT_FRACTION",
    "DIFFICULTIES",
    "FAMILIES",
    "Task",
    "WORLD_VERSION",
    "get_family",
    "inject_errors",
    "join",
    "judgment",
    "justify",
    "make_task",
    "noisy_score",
    "oracle_details",
    "oracle_score",
    "parse_prompt",
    "sample_tasks",
    "split_task_list",
    "task_from_spec",
    "task_uid",
    "tokenize",
    "vocabulary",
    "web_corpus",
    "write_response",
]
