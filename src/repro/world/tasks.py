"""Instruction tasks: the `Task` record, and sampling tasks from the families.

    >>> import random
    >>> task = make_task("sort", random.Random(0), difficulty=1)
    >>> task.prompt, task.answer          # e.g. ('sort these numbers ... : 12 7 30 15 .', '7 12 15 30 .')

`make_task` draws knobs for a difficulty (a caller may override any of them), draws content for the
knobs and renders the prompt; `task_from_spec` renders a task from a complete spec, which is how an
edited spec (a mutation) becomes a task again. `sample_tasks` draws a balanced, seeded batch.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from .families import DIFFICULTIES, FAMILIES, get_family
from .text import join

#: Difficulty `make_task` uses when none is given.
DEFAULT_DIFFICULTY = 2


@dataclass(frozen=True)
class Task:
    """One instruction task with a checkable answer.

    Attributes:
        family: the task family (one of `FAMILIES`).
        prompt: the instruction, in world text.
        answer: the ideal concise response, e.g. ``'7 12 30 .'``.
        spec: knobs, content and template index; renders back to this task (treat as read-only).
        uid: stable hash of family, spec and prompt.
    """

    family: str
    prompt: str
    answer: str
    spec: dict[str, Any] = field(repr=False)
    uid: str = ""

    def __hash__(self) -> int:
        return hash(self.uid)

    @property
    def difficulty(self) -> int | None:
        return self.spec.get("difficulty")

    def to_record(self) -> dict[str, Any]:
        """A flat dict of strings and ints (the spec as a JSON string), for parquet or JSON."""
        return {
            "uid": self.uid,
            "family": self.family,
            "difficulty": self.difficulty,
            "prompt": self.prompt,
            "answer": self.answer,
            "spec": json.dumps(self.spec, sort_keys=True),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Task":
        """Inverse of `to_record` (also accepts ``spec`` as a dict)."""
        missing = [k for k in ("family", "prompt", "answer", "spec") if k not in record]
        if missing:
            raise ValueError(f"task record is missing {missing}; got keys {sorted(record)}")
        spec = record["spec"]
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"task record {record.get('uid', '?')}: spec is not valid JSON ({err})") from None
        if not isinstance(spec, dict):
            raise ValueError(f"task record {record.get('uid', '?')}: spec must be a dict, "
                             f"got {type(spec).__name__}")
        uid = record.get("uid") or task_uid(record["family"], spec, record["prompt"])
        return cls(family=record["family"], prompt=record["prompt"], answer=record["answer"],
                   spec=spec, uid=uid)


def task_uid(family: str, spec: dict[str, Any], prompt: str) -> str:
    """Stable 16-hex-digit id of a task (independent of Python's hash seed)."""
    blob = json.dumps({"family": family, "spec": spec, "prompt": prompt}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def task_from_spec(family: str, spec: dict[str, Any]) -> Task:
    """Render the task a complete spec describes (knobs + content + ``template``)."""
    fam = get_family(family)
    spec = json.loads(json.dumps(spec))  # a private, JSON-clean copy
    prompt = fam.render(spec)
    answer = join(fam.solve(spec) + ["."])
    return Task(family=family, prompt=prompt, answer=answer, spec=spec, uid=task_uid(family, spec, prompt))


def _check_difficulty(difficulty: Any) -> int:
    if difficulty not in DIFFICULTIES or isinstance(difficulty, bool):
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    return int(difficulty)


def make_task(family: str, rng: random.Random, difficulty: int = DEFAULT_DIFFICULTY, **knobs: Any) -> Task:
    """Sample one task of a family.

    Args:
        family: one of `FAMILIES`.
        rng: the source of randomness (the task is a function of its state).
        difficulty: 1 (easiest) .. 5; sets the default knobs (see each family's docstring).
        **knobs: overrides of the family's knobs, and ``template`` to fix the phrasing.

    Raises:
        ValueError: unknown family, difficulty or knob, or a knob value that cannot make a task.
    """
    fam = get_family(family)
    difficulty = _check_difficulty(difficulty)
    unknown = sorted(set(knobs) - set(fam.knobs) - {"template"})
    if unknown:
        raise ValueError(f"{family}: unknown knob(s) {unknown}; knobs are {list(fam.knobs) + ['template']}")
    template = knobs.pop("template", None)
    chosen = fam.default_knobs(difficulty, rng)
    chosen.update(knobs)
    fam.check_knobs(chosen)
    spec: dict[str, Any] = {"difficulty": difficulty, **chosen}
    spec.update(fam.sample_content(rng, chosen))
    n_templates = len(fam.templates(spec))
    if template is None:
        template = rng.randrange(n_templates)
    elif not isinstance(template, int) or not 0 <= template < n_templates:
        raise ValueError(f"{family}: template must be an integer in 0..{n_templates - 1}, got {template!r}")
    spec["template"] = template
    return task_from_spec(family, spec)


def difficulty_sampler(difficulty: int | tuple[int, int] | None):
    """A function rng -> difficulty, for a fixed level, an inclusive (low, high) range, or None (1..5)."""
    if difficulty is None:
        difficulty = (DIFFICULTIES[0], DIFFICULTIES[-1])
    if isinstance(difficulty, (tuple, list)):
        if len(difficulty) != 2:
            raise ValueError(f"difficulty range must be (low, high), got {difficulty!r}")
        low, high = (_check_difficulty(d) for d in difficulty)
        if low > high:
            raise ValueError(f"difficulty range must have low <= high, got {difficulty!r}")
        return lambda rng: rng.randint(low, high)
    fixed = _check_difficulty(difficulty)
    return lambda rng: fixed


def resolve_families(families: Any) -> tuple[str, ...]:
    if families is None:
        return FAMILIES
    if isinstance(families, str):
        families = (families,)
    families = tuple(families)
    if not families:
        raise ValueError("families must not be empty")
    for name in families:
        get_family(name)
    return families


def sample_tasks(
    n: int,
    seed: int,
    families: list[str] | tuple[str, ...] | None = None,
    difficulty: int | tuple[int, int] | None = None,
) -> list[Task]:
    """A seeded batch of ``n`` tasks, families balanced (counts differ by at most one), in random order.

    Args:
        n: number of tasks.
        seed: the same seed gives the same tasks.
        families: families to draw from (default: all of `FAMILIES`).
        difficulty: a fixed level, an inclusive ``(low, high)`` range drawn uniformly per task, or
            ``None`` for the whole range 1..5.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    families = resolve_families(families)
    draw_difficulty = difficulty_sampler(difficulty)
    rng = random.Random(seed)
    order = [families[i % len(families)] for i in range(n)]
    rng.shuffle(order)
    return [make_task(family, rng, draw_difficulty(rng)) for family in order]
