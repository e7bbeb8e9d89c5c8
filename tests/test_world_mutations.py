"""World mutations for eva: harder tasks of the same family, related tasks of other families, chains."""

import random

import pytest

from repro import world
from repro.world import mutations as mu


@pytest.fixture(scope="module")
def parents():
    rng = random.Random(0)
    return [world.make_task(f, rng, difficulty=d) for f in world.FAMILIES for d in (1, 3, 5)]


def test_in_depth_is_harder_and_of_the_same_family(parents):
    rng = random.Random(1)
    for task in parents:
        child = mu.in_depth(task, rng)
        assert child.family == task.family and mu.valid(child)
        assert child.difficulty == min(task.difficulty + 1, 5)


def test_in_breadth_changes_family_at_the_same_difficulty(parents):
    rng = random.Random(2)
    for task in parents:
        child = mu.in_breadth(task, rng)
        assert child.family != task.family and child.difficulty == task.difficulty and mu.valid(child)


def test_evolve_chains_new_valid_prompts_with_their_lineage(parents):
    records = mu.evolve(parents, evolutions=4, seed=0)
    assert records == mu.evolve(parents, evolutions=4, seed=0)  # deterministic per seed
    prompts = [r["task"].prompt for r in records]
    assert len(prompts) == len(set(prompts)) and not set(prompts) & {p.prompt for p in parents}
    assert all(mu.valid(r["task"]) for r in records)
    assert len(records) > 3 * len(parents)  # nearly every parent yields its 4 evolutions
    by_parent = {}
    for r in records:
        by_parent.setdefault(r["parent"], []).append(r["step"])
    assert all(steps == sorted(steps) and steps[0] >= 1 and steps[-1] <= 4 for steps in by_parent.values())
    depth_only = mu.evolve(parents[:3], evolutions=2, operators=("in_depth",), seed=1)
    assert {r["operator"] for r in depth_only} == {"in_depth"}
    assert all(r["task"].family == parents[0].family for r in depth_only)


def test_bad_evolve_arguments_are_refused(parents):
    with pytest.raises(ValueError, match="operators"):
        mu.evolve(parents, operators=("sideways",))
    with pytest.raises(ValueError, match="evolutions"):
        mu.evolve(parents, evolutions=0)


def test_a_tampered_task_is_not_valid(parents):
    task = parents[0]
    assert mu.valid(task)
    assert not mu.valid(world.Task(task.family, task.prompt, "wrong answer .", task.spec, task.uid))
