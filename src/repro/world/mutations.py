"""Mutations of world tasks, eva's evolve step in the world (issue 5 groundwork).

- **In depth** (`in_depth`): a harder task of the same family. The difficulty goes up by one level
  (up to the hardest) and the task is sampled again under the harder knobs, in the same phrasing
  template when that template exists at the new level.
- **In breadth** (`in_breadth`): a related new task of the same difficulty, from another family.

`evolve` chains mutations from each parent: every step mutates the previous result, with in-depth or
in-breadth drawn at random. Every evolved prompt is *valid* (the world's parser reads it back as the
same task: `parse_prompt`), *new* (not a parent and not seen before in the batch), and keeps its
lineage (the parent's uid, the operator, the step).
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from .families import DIFFICULTIES, FAMILIES
from .parse import parse_prompt
from .tasks import DEFAULT_DIFFICULTY, Task, make_task

OPERATORS = ("in_depth", "in_breadth")


def _difficulty(task: Task) -> int:
    return task.difficulty if task.difficulty in DIFFICULTIES else DEFAULT_DIFFICULTY


def _sample(family: str, rng: random.Random, difficulty: int, template) -> Task:
    if template is not None:
        try:
            return make_task(family, rng, difficulty=difficulty, template=template)
        except ValueError:  # that phrasing does not exist for the new knobs
            pass
    return make_task(family, rng, difficulty=difficulty)


def in_depth(task: Task, rng: random.Random) -> Task:
    """A harder task of the same family (see the module docstring)."""
    harder = min(_difficulty(task) + 1, max(DIFFICULTIES))
    return _sample(task.family, rng, harder, task.spec.get("template"))


def in_breadth(task: Task, rng: random.Random) -> Task:
    """A task of another family at the same difficulty."""
    family = rng.choice([f for f in FAMILIES if f != task.family])
    return _sample(family, rng, _difficulty(task), None)


def valid(task: Task) -> bool:
    """The world reads the prompt back as this very task."""
    parsed = parse_prompt(task.prompt)
    return parsed is not None and parsed.prompt == task.prompt and parsed.answer == task.answer


def evolve(parents: Iterable[Task], *, evolutions: int = 4, operators: tuple[str, ...] = OPERATORS,
           seed: int = 0, tries: int = 5) -> list[dict]:
    """``evolutions`` chained mutations of every parent, as records ``{"task", "parent", "operator",
    "step"}``. A mutation that is invalid or repeats a prompt already present is drawn again (up to
    ``tries`` times) and otherwise skipped, so a parent may yield fewer than ``evolutions`` prompts."""
    unknown = set(operators) - set(OPERATORS)
    if unknown or not operators:
        raise ValueError(f"operators must be some of {', '.join(OPERATORS)}, got {operators!r}")
    if evolutions < 1:
        raise ValueError(f"evolutions must be at least 1, got {evolutions}")
    mutate = {"in_depth": in_depth, "in_breadth": in_breadth}
    rng = random.Random(seed)
    parents = list(parents)
    seen = {p.prompt for p in parents}
    out = []
    for parent in parents:
        current = parent
        for step in range(1, evolutions + 1):
            for _ in range(tries):
                operator = rng.choice(operators)
                child = mutate[operator](current, rng)
                if child.prompt not in seen and valid(child):
                    break
            else:
                continue
            seen.add(child.prompt)
            out.append({"task": child, "parent": parent.uid, "operator": operator, "step": step})
            current = child
    return out


__all__ = ["OPERATORS", "evolve", "in_breadth", "in_depth", "valid"]
